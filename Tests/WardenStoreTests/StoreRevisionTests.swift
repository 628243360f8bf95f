import Foundation
import Logging
import SQLKit
import Testing
import WardenStore

/// The store revision moves with every change the gateway decides on, on every engine, and not with
/// the `last_used_at` writes every call causes (else the gateway's key cache would never hold).
@Suite struct StoreRevisionTests {
    let logger = Logger(label: "test")

    @Test(arguments: Backend.enabled)
    func movesWithDecisionsNotWithUse(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        var last = try await StoreRevision.read(database)
        func expectMoved(_ what: String, _ change: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
            try await database.transaction { db in try await change(db) }
            let now = try await StoreRevision.read(database)
            #expect(now > last, "\(what) did not move the revision")
            last = now
        }

        let owner = UserRecord(
            id: "u1", email: "a@example.com", passwordHash: "$argon2id$fake", isAdmin: false, disabled: false,
            mustChangePassword: false, createdAt: 1, updatedAt: 1)
        let grantee = UserRecord(
            id: "u2", email: "b@example.com", passwordHash: "$argon2id$fake", isAdmin: false, disabled: false,
            mustChangePassword: false, createdAt: 1, updatedAt: 1)
        var credential = CredentialRecord(
            id: "c1", ownerID: "u1", venue: "openai", label: "main", fingerprint: "ab",
            nonce: Array(repeating: 1, count: 12), ciphertext: [1, 2, 3], wrappedDEK: [4, 5, 6],
            kekVersion: 1, createdAt: 1, updatedAt: 1)
        let key = AgentKeyRecord(
            id: "k1", ownerID: "u1", name: "k", keyHash: "h1", keyPrefix: "wdn_abcd", access: .trade,
            createdAt: 1, expiresAt: nil, credentials: ["openai": "c1"])
        try await expectMoved("a new user") { try await UserRepository(database).insert(owner, on: $0) }
        try await UserRepository(database).insert(grantee)
        last = try await StoreRevision.read(database)
        try await expectMoved("a new credential") { [credential] db in try await CredentialRepository(database).insert(credential, on: db) }
        try await expectMoved("a new key and its binding") { try await AgentKeyRepository(database).insert(key, on: $0) }
        try await expectMoved("a grant") {
            try await GrantRepository(database).insert(
                GrantRecord(id: "g1", credentialID: "c1", granteeID: "u2", access: .read, createdAt: 1), on: $0)
        }
        credential.ciphertext = [7, 8, 9]
        try await expectMoved("a rotated secret") { [credential] db in try await CredentialRepository(database).update(credential, on: db) }
        try await expectMoved("a revoked key") { try await AgentKeyRepository(database).revoke(id: "k1", at: 5, on: $0) }
        try await expectMoved("a disabled owner") { try await UserRepository(database).setDisabled(userID: "u1", true, on: $0) }
        try await expectMoved("a deleted grant") { _ = try await GrantRepository(database).delete(id: "g1", credentialID: "c1", on: $0) }

        try await AgentKeyRepository(database).touch(keys: ["k1": 99], credentials: ["c1": 99])
        #expect(try await StoreRevision.read(database) == last, "last_used_at writes moved the revision")
        try await database.close()
    }
}
