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
}
