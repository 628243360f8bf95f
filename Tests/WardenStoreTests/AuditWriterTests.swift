import Foundation
import Logging
import SQLKit
import Testing
import WardenCore
import WardenCrypto
import WardenStore

/// The gateway's group-committed audit: queued rows all land in one intact chain, and rows queued while
/// commits fail are kept and committed once the store takes writes again.
@Suite struct AuditWriterTests {
    let logger = Logger(label: "test")

    private func writer(_ backend: Backend) async throws -> (TestStore, AuditLog, AuditWriter) {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let vault = try await Vault.unseal(database: store.database, source: .masterKey(.generate()), logger: logger)
        let log = AuditLog(database: store.database, vault: vault)
        return (store, log, AuditWriter(log: log, database: store.database, logger: logger))
    }

    @Test(arguments: Backend.enabled)
    func queuedAndAwaitedRowsFormOneChain(backend: Backend) async throws {
        let (store, log, writer) = try await writer(backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    for i in 0..<50 {
                        let entry = AuditEntry(actor: "w\(worker)", owner: nil, action: "load", target: "\(i)", detail: ["n": "\(i)"])
                        if i % 10 == 0 { try await writer.append(entry) } else { writer.record(entry) }
                    }
                }
            }
            try await group.waitForAll()
        }
        await writer.flush()
        #expect(writer.depth == 0)
        #expect(try await log.verify() == .intact(rows: 800))
        try await store.database.close()
    }

    struct WorkFailed: Error {}

    /// Writes made through `commit` (a live order's reservation) land with their row: work that fails is
    /// undone alone while the rest of its batch commits, and a batch that cannot commit keeps neither.
    @Test(arguments: Backend.enabled)
    func workCommitsWithItsRowOrNotAtAll(backend: Backend) async throws {
        let (store, log, writer) = try await writer(backend)
        try await store.database.withConnection { try await $0.raw("CREATE TABLE marks (what TEXT NOT NULL)").run() }
        func marks() async throws -> [String] {
            try await store.database.withConnection {
                try await $0.raw("SELECT what FROM marks ORDER BY what").all(decodingColumn: "what", as: String.self)
            }
        }
        func targets() async throws -> [String] {
            try await store.database.withConnection {
                try await $0.raw("SELECT target FROM audit WHERE action = 'gateway.forward' ORDER BY target").all(
                    decodingColumn: "target", as: String.self)
            }
        }
        let mark = { @Sendable (what: String, fails: Bool) -> @Sendable (any SQLDatabase) async throws -> (String, AuditEntry?) in
            { db in
                try await db.raw("INSERT INTO marks (what) VALUES (\(bind: what))").run()
                if fails { throw WorkFailed() }
                return (what, AuditEntry(actor: "k", owner: nil, action: "gateway.forward", target: what))
            }
        }
        // Run side by side, with queued rows between them, so they share batches.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask {
                    if i % 5 == 0 {
                        await #expect(throws: WorkFailed.self) { try await writer.commit(mark("bad-\(i)", true)) }
                    } else {
                        let value = try await writer.commit(mark("ok-\(i)", false))
                        #expect(value == "ok-\(i)")
                    }
                    writer.record(AuditEntry(actor: "k", owner: nil, action: "gateway.result", target: "\(i)"))
                }
            }
            try await group.waitForAll()
        }
        await writer.flush()
        let kept = (0..<20).filter { $0 % 5 != 0 }.map { "ok-\($0)" }.sorted()
        #expect(try await marks() == kept)
        #expect(try await targets() == kept)
        #expect(try await log.verify() == .intact(rows: 36))

        if backend == .sqlite {
            try await store.database.withConnection { db in
                try await db.raw("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'disk full'); END").run()
            }
            await #expect(throws: (any Error).self) { try await writer.commit(mark("lost", false)) }
            #expect(try await marks() == kept, "work outlived the row it was committed with")
            try await store.database.withConnection { db in try await db.raw("DROP TRIGGER refuse_audit").run() }
        }
        try await store.database.close()
    }

    @Test func rowsQueuedWhileCommitsFailAreKeptAndCommittedLater() async throws {
        let (store, log, writer) = try await writer(.sqlite)
        try await store.database.withConnection { db in
            try await db.raw("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'disk full'); END").run()
        }
        for i in 0..<20 { writer.record(AuditEntry(actor: "k", owner: nil, action: "gateway.result", target: "\(i)")) }
        await #expect(throws: (any Error).self) {
            try await writer.append(AuditEntry(actor: "k", owner: nil, action: "gateway.forward", target: "refused"))
        }
        #expect(!writer.healthy)
        try await store.database.withConnection { db in try await db.raw("DROP TRIGGER refuse_audit").run() }
        let deadline = ContinuousClock.now + .seconds(5)
        while !writer.healthy || writer.depth > 0 {
            #expect(ContinuousClock.now < deadline, "the writer did not recover")
            try await Task.sleep(for: .milliseconds(50))
        }
        // The 20 queued rows, in order; the awaited row was refused to its caller and not kept.
        #expect(try await log.verify() == .intact(rows: 20))
        let targets = try await store.database.withConnection { db in
            try await db.raw("SELECT target FROM audit ORDER BY seq").all(decodingColumn: "target", as: String.self)
        }
        #expect(targets == (0..<20).map(String.init))
        try await store.database.close()
    }

    /// A store that is merely slow (another process holds the write lock) makes the writer unhealthy once
    /// its oldest row waits past `maxLag`; refusals counted meanwhile land as one `audit.gap` row, after
    /// the rows queued before it, once the store keeps up again.
    @Test func aStalledStoreTurnsTheWriterUnhealthyAndTheGapIsRecorded() async throws {
        let (store, log, writer) = try await writer(.sqlite)
        let other = try Database.open(store.database.location, logger: logger)
        let holding = Task {
            try await other.transaction { db in
                try await db.raw("UPDATE store_probe SET checked_at = 1").run()
                try await Task.sleep(for: .milliseconds(2500))
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        for i in 0..<5 { writer.record(AuditEntry(actor: "k", owner: nil, action: "gateway.result", target: "\(i)")) }
        #expect(writer.healthy)
        try await Task.sleep(for: AuditWriter.maxLag + .milliseconds(300))
        #expect(!writer.healthy, "a row waited past maxLag and the writer still admits calls")
        #expect(writer.status.lagMillis >= 1000)
        for _ in 0..<3 { writer.countUnrecorded() }
        try await holding.value
        let deadline = ContinuousClock.now + .seconds(10)
        while !writer.healthy || writer.depth > 0 {
            #expect(ContinuousClock.now < deadline, "the writer did not recover")
            try await Task.sleep(for: .milliseconds(50))
        }
        await writer.flush()
        #expect(try await log.verify() == .intact(rows: 6))
        let rows = try await store.database.withConnection { db in
            try await db.raw("SELECT action, detail FROM audit ORDER BY seq").all()
        }
        #expect(
            try rows.map { try $0.decode(column: "action", as: String.self) } == Array(repeating: "gateway.result", count: 5) + [
                "audit.gap"
            ])
        let gap = try rows.last!.decode(column: "detail", as: String.self)
        #expect(gap.contains("\"refused_unrecorded\":\"3\""), "\(gap)")
        try await other.close()
        try await store.database.close()
    }
}
