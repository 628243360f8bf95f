import Foundation
import Logging
import SQLKit
import Testing
import WardenCore
import WardenStore

/// The kill switch, honey tokens and the alarms' outbox in the store, on every engine.
@Suite struct SafetyStoreTests {
    let logger = Logger(label: "test")

    @Test(arguments: Backend.enabled)
    func aFreezeCoversItsScopeInEveryKeysStandingAndMovesTheRevision(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let repository = try await KeyFamilyStoreTests().family(database)
        let freezes = FreezeRepository(database)
        func frozen(_ hash: String) async throws -> Bool {
            try #require(try await repository.resolve(hash: hash, venue: "openai").key).standing.frozen
        }
        #expect(try await !frozen("h-grandchild"))
        for scope in ["family:root", "user:u1", "all"] {
            let before = try await StoreRevision.read(database)
            let record = FreezeRecord(scope: scope, reason: "drill", frozenBy: "cli", frozenAt: 1)
            #expect(try await database.transaction { db in try await freezes.insert(record, on: db) })
            #expect(try await !database.transaction { db in try await freezes.insert(record, on: db) }, "frozen once")
            #expect(try await StoreRevision.read(database) > before, "a freeze must empty every server's key cache")
            #expect(try await frozen("h-grandchild"))
            #expect(try await frozen("h-sibling"))
            #expect(try await database.transaction { db in try await freezes.delete(scope: scope, on: db) } == record)
            #expect(try await !frozen("h-grandchild"))
        }
        // Another family's freeze leaves this one alone.
        _ = try await database.transaction { db in
            try await freezes.insert(FreezeRecord(scope: "family:other", reason: "x", frozenBy: "cli", frozenAt: 1), on: db)
        }
        #expect(try await !frozen("h-child"))

        // A honey token's hash resolves to no key but to the decoy.
        try await database.transaction { db in
            try await HoneyTokenRepository(database).insert(
                HoneyTokenRecord(id: "t1", ownerID: "u1", label: "decoy", kind: "openai", tokenHash: "h-honey", createdAt: 1), on: db)
        }
        let decoy = try await repository.resolve(hash: "h-honey", venue: "openai")
        #expect(decoy.key == nil && decoy.honey?.id == "t1" && decoy.honey?.ownerID == "u1")
        #expect(try await repository.resolve(hash: "h-nothing", venue: "openai").honey == nil)
        try await database.close()
    }

    @Test(arguments: Backend.enabled)
    func theOutboxRaisesEachAlarmOnceAndLeasesEachDeliveryToOneServer(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let vault = try await Vault.unseal(database: database, source: .masterKey(.generate()), logger: logger)
        let log = AuditLog(database: database, vault: vault)
        try await log.append(AuditEntry(actor: nil, owner: nil, action: "test.quiet"))
        for i in 0..<3 {
            try await log.append(AuditEntry(actor: "key:k\(i % 2)", owner: nil, action: "gateway.refuse", detail: ["alarm": "cap_reached"]))
        }
        var channel = NotifyChannel(name: "ops", kind: .slack)
        channel.minSeverity = .info
        let servers = (0..<2).map { _ in Alarms(database: database, vault: vault, audit: log, channels: ["ops": channel]) }
        // Two servers raising at once: each row is raised once, the same key's cap once a day.
        async let a = servers[0].raisePending()
        async let b = servers[1].raisePending()
        let raised = try await a.raised + b.raised
        #expect(raised == 2)
        let recent = try await AlarmRepository(database).recent(limit: 10)
        #expect(recent.count == 2 && recent.allSatisfy { $0.1.count == 1 && $0.1[0].state == .pending })

        let id = recent[0].0.id
        let now = Clock.nowMillis()
        async let first = AlarmRepository(database).lease(alarmID: id, channel: "ops", now: now, until: now + 60_000)
        async let second = AlarmRepository(database).lease(alarmID: id, channel: "ops", now: now, until: now + 60_000)
        let leases = try await [first, second]
        #expect(leases.filter { $0 }.count == 1, "both servers took the same delivery")
        try await database.close()
    }
}
