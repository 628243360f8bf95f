import Foundation
import Logging
import SQLKit
import Testing
import WardenStore

/// Key families in the store, on every engine: a key's standing follows its whole ancestry, a revocation
/// reaches every descendant in its transaction, and a family's minting activity is counted as one.
@Suite struct KeyFamilyStoreTests {
    let logger = Logger(label: "test")

    /// owner u1: root → child → grandchild, and root → sibling.
    func family(_ database: Database, expiries: [String: Int64] = [:]) async throws -> AgentKeyRepository {
        let repository = AgentKeyRepository(database)
        try await UserRepository(database).insert(
            UserRecord(
                id: "u1", email: "f@example.com", passwordHash: "$argon2id$fake", isAdmin: false,
                disabled: false, mustChangePassword: false, createdAt: 1, updatedAt: 1))
        for (id, parent, created) in [("root", nil, 1), ("child", "root", 2), ("grandchild", "child", 3), ("sibling", "root", 4)]
            as [(String, String?, Int64)]
        {
            let key = AgentKeyRecord(
                id: id, ownerID: "u1", name: id, keyHash: "h-\(id)", keyPrefix: "wdn_abcd", access: .trade,
                createdAt: created, expiresAt: expiries[id], credentials: [:], parentID: parent,
                rootID: parent == nil ? nil : "root")
            try await database.transaction { db in try await repository.insert(key, on: db) }
        }
        return repository
    }

    func standing(_ repository: AgentKeyRepository, _ database: Database, _ id: String) async throws -> KeyStanding {
        try #require(try await database.withConnection { db in try await repository.findWithStanding(id: id, on: db) }).standing
    }

    @Test(arguments: Backend.enabled)
    func revocationReachesEveryDescendantAndOnlyThem(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let repository = try await family(database)
        #expect(try await standing(repository, database, "grandchild") == KeyStanding(revoked: false, expiresAt: nil, ownerDisabled: false))
        #expect(try await repository.find(id: "grandchild")?.rootID == "root")

        let before = try await StoreRevision.read(database)
        let revoked = try await database.transaction { db in
            try await repository.lockFamily(rootID: "root", on: db)
            return try await repository.revokeWithDescendants(id: "child", at: 50, on: db)
        }
        #expect(revoked == ["grandchild"])
        #expect(try await StoreRevision.read(database) > before, "the revocation did not move the store revision")
        #expect(try await repository.find(id: "child")?.revokedAt == 50)
        #expect(try await repository.find(id: "grandchild")?.revokedAt == 50)
        #expect(try await repository.find(id: "root")?.revokedAt == nil)
        #expect(try await repository.find(id: "sibling")?.revokedAt == nil)
        #expect(try await standing(repository, database, "sibling").isLive(at: 100))

        // A key that joined below the revoked one after the revocation (its row unrevoked) is still not live,
        // read by id or by hash, as the gateway reads it.
        let late = AgentKeyRecord(
            id: "late", ownerID: "u1", name: "late", keyHash: "h-late", keyPrefix: "wdn_abcd", access: .trade,
            createdAt: 60, expiresAt: nil, credentials: [:], parentID: "grandchild", rootID: "root")
        try await database.transaction { db in try await repository.insert(late, on: db) }
        #expect(try await standing(repository, database, "late").revoked)
        #expect(try await repository.findWithStanding(hash: "h-late")?.standing.isLive(at: 100) == false)
        #expect(try await repository.resolve(hash: "h-late", venue: "openai").key?.standing.revoked == true)
        #expect(try await repository.resolve(hash: "h-sibling", venue: "openai").key?.standing.revoked == false)
        try await database.close()
    }

    @Test(arguments: Backend.enabled)
    func standingTakesTheEarliestExpiryAndTheOwner(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let repository = try await family(database, expiries: ["child": 1000, "grandchild": 5000])
        let grandchild = try await standing(repository, database, "grandchild")
        #expect(grandchild.expiresAt == 1000 && grandchild.isLive(at: 999) && !grandchild.isLive(at: 1000))
        #expect(try await standing(repository, database, "sibling").expiresAt == nil)
        try await database.transaction { db in try await UserRepository(database).setDisabled(userID: "u1", true, on: db) }
        let disabled = try await standing(repository, database, "sibling")
        #expect(disabled.ownerDisabled && disabled.isCurrent(at: 0) && !disabled.isLive(at: 0))
        #expect(try await repository.resolve(hash: "h-sibling", venue: "openai").key?.standing.ownerDisabled == true)
        try await database.close()
    }

    @Test(arguments: Backend.enabled)
    func activityCountsTheWholeFamily(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let repository = try await family(database, expiries: ["sibling": 10])
        let activity = try await database.withConnection { db in
            try await repository.familyActivity(rootID: "root", now: 5, since: 2, on: db)
        }
        // child, grandchild and sibling are live at 5; grandchild (3) and sibling (4) were minted after 2.
        #expect(activity == FamilyActivity(liveChildren: 3, recentMints: 2, oldestRecentMint: 3))
        let later = try await database.withConnection { db in
            try await repository.familyActivity(rootID: "root", now: 10, since: 10, on: db)
        }
        #expect(later == FamilyActivity(liveChildren: 2, recentMints: 0, oldestRecentMint: nil))
        try await database.close()
    }
}
