import Foundation
import Logging
import SQLKit
import Testing
import WardenStore

/// The same suite on every enabled engine.
@Suite struct StoreSuite {
    let logger = Logger(label: "test")

    private func user(_ email: String) -> UserRecord {
        UserRecord(
            id: UUID().uuidString.lowercased(), email: email, passwordHash: "$argon2id$fake", isAdmin: false,
            disabled: false, mustChangePassword: true, createdAt: 1, updatedAt: 1)
    }

    private func credential(owner: String, label: String = "main") -> CredentialRecord {
        CredentialRecord(
            id: UUID().uuidString.lowercased(), ownerID: owner, venue: "binance", label: label,
            fingerprint: "ab12cd34", nonce: Array(repeating: 1, count: 12), ciphertext: [9, 8, 7],
            wrappedDEK: [1, 2, 3], kekVersion: 1, createdAt: 5, updatedAt: 5)
    }

    @Test(arguments: Backend.enabled)
    func migrationsAreIdempotent(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        #expect(try await Migrator.migrate(store.database, logger: logger) == Migrator.versions)
        #expect(try await Migrator.migrate(store.database, logger: logger) == [])
        let versions = try await store.database.withConnection { db in
            try await db.raw("SELECT version FROM schema_migrations ORDER BY version").all(decodingColumn: "version", as: Int.self)
        }
        #expect(versions == Migrator.versions)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func concurrentStartupsMigrateOnce(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 { group.addTask { try await Migrator.migrate(store.database, logger: logger) } }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(applied == Migrator.versions)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func refusesASchemaNewerThanItKnows(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        try await store.database.withConnection { db in
            try await db.raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run()
        }
        await #expect(throws: StoreError.newerSchema(found: 999, known: Migrator.latestVersion)) {
            try await Migrator.migrate(store.database, logger: logger)
        }
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func vaultRecordIsWrittenOnce(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let repo = VaultRepository(store.database)
        #expect(try await repo.load() == nil)
        let record = VaultRecord(
            vaultID: "v1", kekSource: "master_key", kekVersion: 1, kdfSalt: [1, 2, 3],
            kdfMemoryKiB: 64, kdfIterations: 1, kdfParallelism: 1, verifier: [7, 7], createdAt: 9)
        #expect(try await repo.insertIfAbsent(record))
        var other = record
        other.vaultID = "v2"
        #expect(try await !repo.insertIfAbsent(other))
        #expect(try await repo.load() == record)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func usersAndCredentialsRoundTrip(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let users = UserRepository(store.database)
        let credentials = CredentialRepository(store.database)
        let alice = user("alice@example.com")
        try await users.insert(alice)
        #expect(try await users.find(email: "alice@example.com") == alice)
        await #expect(throws: StoreError.conflict("a user with this email exists")) { try await users.insert(user("alice@example.com")) }

        let c = credential(owner: alice.id)
        try await credentials.insert(c)
        #expect(try await credentials.find(id: c.id) == c)
        #expect(try await credentials.list(ownerID: alice.id) == [c])
        #expect(try await credentials.delete(id: c.id))
        #expect(try await !credentials.delete(id: c.id))
        #expect(try await credentials.find(id: c.id) == nil)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func aCredentialNeedsAnExistingOwner(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        await #expect(throws: (any Error).self) { try await CredentialRepository(store.database).insert(credential(owner: "nobody")) }
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func aFailedTransactionLeavesNothingBehind(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        struct Boom: Error {}
        let alice = user("rollback@example.com")
        await #expect(throws: Boom.self) {
            try await store.database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO users (id, email, password_hash, is_admin, disabled, must_change_password, created_at, updated_at)
                    VALUES (\(bind: alice.id), \(bind: alice.email), 'x', FALSE, FALSE, TRUE, 1, 1)
                    """
                ).run()
                throw Boom()
            }
        }
        #expect(try await UserRepository(store.database).find(email: alice.email) == nil)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func writeProbeSucceedsOnlyOnAStoreThatTakesWrites(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        try await store.database.probeWrite()
        try await store.database.close()
        await #expect(throws: (any Error).self) { try await store.database.probeWrite() }
    }

    /// A SQLite write lock held by another process for longer than the deadline fails a transaction
    /// within about the deadline, rather than making it wait for the lock.
    @Test func aTransactionGivesUpWithinTheDeadlineWhenAnotherProcessHoldsTheLock() async throws {
        let store = try await TestStore.make(.sqlite)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        let other = try Database.open(store.database.location, logger: TestStore.logger)
        let holding = Task {
            try await other.transaction { db in
                try await db.raw("UPDATE store_probe SET checked_at = 1").run()
                try await Task.sleep(for: .seconds(8))
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let began = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await store.database.probeWrite() }
        let waited = ContinuousClock.now - began
        #expect(waited < Database.deadline + .seconds(2), "waited \(waited)")
        _ = try? await holding.value
        try await store.database.probeWrite()
        try await other.close()
        try await store.database.close()
    }

    @Test func sqliteFileIsPrivate() async throws {
        let store = try await TestStore.make(.sqlite)
        try await Migrator.migrate(store.database, logger: logger)
        let attributes = try FileManager.default.attributesOfItem(atPath: try #require(store.sqlitePath))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try await store.database.close()
    }

    /// A store whose owner failed before closing it is dropped: the process goes on (a pool dropped
    /// open stops a debug build), and its connections are let go.
    @Test(arguments: Backend.enabled)
    func aStoreDroppedWithoutClosingLetsItsConnectionsGo(backend: Backend) async throws {
        var store: TestStore? = try await TestStore.make(backend)
        try await Migrator.migrate(try #require(store).database, logger: logger)
        let url = store?.postgresURL
        store = nil
        guard let url, let name = URLComponents(string: url)?.path.dropFirst() else { return }
        let observer = try Database.open(
            .postgres(url: try #require(ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"])), logger: logger)
        var open = -1
        for _ in 0..<50 {
            open = try await observer.withConnection { db in
                try await db.raw("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = \(bind: String(name))").first(
                    decodingColumn: "n", as: Int.self) ?? -1
            }
            if open == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await observer.close()
        #expect(open == 0, "connections left open by a dropped store: \(open)")
    }
}
