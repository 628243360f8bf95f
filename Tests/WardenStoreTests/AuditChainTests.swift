import Crypto
import Foundation
import Logging
import SQLKit
import Testing
import WardenCore
import WardenCrypto
import WardenStore

/// The audit chain on every engine: concurrent appends never fork it, and any edit, deletion or
/// reordering made directly in the database is found by verification.
@Suite struct AuditChainTests {
    let logger = Logger(label: "test")

    private func chain(_ backend: Backend) async throws -> (TestStore, AuditLog) {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let vault = try await Vault.unseal(database: store.database, source: .masterKey(.generate()), logger: logger)
        return (store, AuditLog(database: store.database, vault: vault))
    }

    private func fill(_ log: AuditLog, _ count: Int) async throws {
        for i in 0..<count {
            try await log.append(
                AuditEntry(
                    actor: "u\(i % 3)", owner: "u\(i % 3)", action: "test.event", target: "t\(i)",
                    detail: ["n": String(i)]))
        }
    }

    @Test(arguments: Backend.enabled)
    func concurrentAppendsFormOneChain(backend: Backend) async throws {
        let (store, log) = try await chain(backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for i in 0..<25 { try await log.append(AuditEntry(actor: "w\(worker)", owner: nil, action: "load", target: "\(i)")) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await log.verify() == .intact(rows: 200))
        try await store.database.close()
    }

    /// A group commit larger than one insert statement (SQLite binds its values directly): every field comes
    /// back as it went in, nil stays NULL, and the chain verifies across the statement boundaries.
    @Test(arguments: Backend.enabled)
    func aLargeBatchIsStoredFieldForField(backend: Backend) async throws {
        let (store, log) = try await chain(backend)
        let entries = (0..<600).map { i in
            AuditEntry(
                actor: i % 5 == 0 ? nil : "key:\(i)", owner: i % 7 == 0 ? nil : "owner-é-\(i % 3)", action: "gateway.result",
                target: i % 11 == 0 ? nil : "openai", outcome: i % 2 == 0 ? .forwarded : .refused,
                detail: i % 13 == 0 ? [:] : ["n": String(i), "path": "/v1/\"q\"\n\u{1}🔑"])
        }
        try await store.database.transaction { db in try await log.append(entries, on: db) }
        let rows = try await AuditRepository(store.database).rows(after: 0, limit: 1000)
        #expect(try await log.verify() == .intact(rows: 600))
        try await store.database.close()
        #expect(rows.map(\.seq) == Array(1...600))
        for (row, entry) in zip(rows, entries) {
            #expect(row.actorID == entry.actorID && row.ownerID == entry.ownerID && row.target == entry.target)
            #expect(row.action == entry.action && row.outcome == entry.outcome.rawValue && row.mac.count == 32)
            let detail = try row.detail.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
            #expect(detail == (entry.detail.isEmpty ? nil : entry.detail))
        }
    }

    @Test(arguments: Backend.enabled)
    func tamperingIsDetected(backend: Backend) async throws {
        let tampers: [(String, [SQLQueryString], Int64)] = [
            ("edit an outcome", ["UPDATE audit SET outcome = 'failed' WHERE seq = 4"], 4),
            ("edit a detail", ["UPDATE audit SET detail = '{}' WHERE seq = 2"], 2),
            ("delete a middle row", ["DELETE FROM audit WHERE seq = 5"], 5),
            ("delete the first row", ["DELETE FROM audit WHERE seq = 1"], 1),
            (
                "reorder two rows",
                [
                    "UPDATE audit SET seq = -3 WHERE seq = 3", "UPDATE audit SET seq = 3 WHERE seq = 6",
                    "UPDATE audit SET seq = 6 WHERE seq = -3",
                ], 3
            ),
            ("delete the last row", ["DELETE FROM audit WHERE seq = 8"], 8),
        ]
        for (name, statement, firstBad) in tampers {
            let (store, log) = try await chain(backend)
            try await fill(log, 8)
            #expect(try await log.verify() == .intact(rows: 8))
            try await store.database.withConnection { db in
                for sql in statement { try await db.raw(sql).run() }
            }
            let result = try await log.verify()
            try await store.database.close()
            guard case .broken(let seq, _) = result else { Issue.record("\(name) not detected: \(result)"); continue }
            #expect(seq == firstBad, "\(name): reported row \(seq)")
        }
    }

    @Test(arguments: Backend.enabled)
    func cuttingTheTailAndRewritingTheHeadIsDetected(backend: Backend) async throws {
        let (store, log) = try await chain(backend)
        try await fill(log, 5)
        try await store.database.withConnection { db in
            try await db.raw("DELETE FROM audit WHERE seq = 5").run()
            try await db.raw("UPDATE audit_head SET seq = 4, mac = (SELECT mac FROM audit WHERE seq = 4)").run()
        }
        let result = try await log.verify()
        try await store.database.close()
        guard case .broken = result else { Issue.record("truncation not detected"); return }
    }

    @Test func aChainNeedsTheRightKey() async throws {
        let (store, log) = try await chain(.sqlite)
        try await fill(log, 3)
        let otherStore = try await Database.open(.sqlite(path: store.sqlitePath! + ".other"), logger: logger).migrated(logger)
        let otherVault = try await Vault.unseal(database: otherStore, source: .masterKey(.generate()), logger: logger)
        let result = try await AuditLog(database: store.database, vault: otherVault).verify()
        try await otherStore.close()
        try await store.database.close()
        #expect(result == .broken(seq: 1, reason: "row 1 was altered, or a row before it was"))
    }

    /// The MAC layout is part of what is stored: rows written by an earlier Warden must still verify.
    /// Recomputed here field by field, as the format is documented, rather than with `AuditLog`'s code.
    @Test func rowMACsFollowTheStoredLayout() async throws {
        let store = try await TestStore.make(.sqlite)
        try await Migrator.migrate(store.database, logger: logger)
        let vault = try await Vault.unseal(database: store.database, source: .masterKey(.generate()), logger: logger)
        let log = AuditLog(database: store.database, vault: vault)
        try await log.append(AuditEntry(actor: "u1", owner: nil, action: "test.event", target: "t", detail: ["b": "2", "a": "é\"\n"]))
        try await log.append(AuditEntry(actor: nil, owner: "u2", action: "test.other"))
        let rows = try await AuditRepository(store.database).rows(after: 0, limit: 10)
        try await store.database.close()
        #expect(rows.count == 2)
        #expect(rows[0].detail == #"{"a":"é\"\n","b":"2"}"#)

        func expected(_ row: AuditRecord, previous: [UInt8]) -> [UInt8] {
            var hmac = HMAC<SHA256>(key: vault.kek.derivedKey(label: "audit-chain"))
            hmac.update(data: Array("warden.audit.v1".utf8))
            let fields: [String?] = [
                String(row.seq), String(row.at), row.actorID, row.ownerID, row.action, row.target, row.outcome, row.detail,
            ]
            for field in fields {
                guard let field else { hmac.update(data: [0xff, 0xff, 0xff, 0xff]); continue }
                withUnsafeBytes(of: UInt32(field.utf8.count).bigEndian) { hmac.update(data: Array($0)) }
                hmac.update(data: Array(field.utf8))
            }
            hmac.update(data: previous)
            return Array(hmac.finalize())
        }
        #expect(rows[0].mac == expected(rows[0], previous: []))
        #expect(rows[1].mac == expected(rows[1], previous: rows[0].mac))
    }
}

extension Database {
    func migrated(_ logger: Logger) async throws -> Database {
        try await Migrator.migrate(self, logger: logger)
        return self
    }
}
