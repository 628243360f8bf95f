import Foundation
import Logging
import Testing
import WardenCore
import WardenCrypto
import WardenStore

/// Plants a known secret through the vault and looks for it in every byte the store keeps.
@Suite struct SecretAtRestTests {
    @Test(arguments: Backend.enabled)
    func storedSecretLeavesNoTrace(backend: Backend) async throws {
        let logger = Logger(label: "test")
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let kek = MasterKey.generate()
        let vault = try await Vault.unseal(database: store.database, source: .masterKey(kek), logger: logger)

        let planted = "PLANTED-binance-secret-\(UUID().uuidString)"
        let owner = UserRecord(
            id: "u1", email: "owner@example.com", passwordHash: "$argon2id$x", isAdmin: false,
            disabled: false, mustChangePassword: false, createdAt: 1, updatedAt: 1)
        try await UserRepository(store.database).insert(owner)
        let identity = SecretIdentity(kind: "credential", id: "c1", owner: "u1", venue: "binance")
        let sealed = try vault.seal(SecretBytes(copying: Array(planted.utf8)), identity: identity)
        try await CredentialRepository(store.database).insert(
            CredentialRecord(
                id: "c1", ownerID: "u1", venue: "binance", label: "main", fingerprint: "00000000",
                nonce: sealed.nonce, ciphertext: sealed.ciphertext, wrappedDEK: sealed.wrappedKey,
                kekVersion: sealed.kekVersion, createdAt: 1, updatedAt: 1))

        // It opens again from what was stored...
        let row = try #require(try await CredentialRepository(store.database).find(id: "c1"))
        let reopened = try vault.open(
            SealedSecret(nonce: row.nonce, ciphertext: row.ciphertext, wrappedKey: row.wrappedDEK, kekVersion: row.kekVersion),
            identity: identity)
        #expect(reopened.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } == planted)

        // ...yet neither the secret nor the KEK is anywhere in the raw store.
        let raw = try store.rawContents()
        #expect(raw.count > 0)
        #expect(raw.range(of: Data(planted.utf8)) == nil)
        #expect(raw.range(of: Data("PLANTED".utf8)) == nil)
        #expect(raw.range(of: Data(kek.hexEncoded().utf8)) == nil)
        let kekBytes = Data(try #require(kek.hexEncoded().hexBytes))
        #expect(raw.range(of: kekBytes) == nil)
        // The check can fail: the metadata written beside the secret is found.
        #expect(raw.range(of: Data("owner@example.com".utf8)) != nil)
        try await store.database.close()
    }
}

extension String {
    var hexBytes: [UInt8]? {
        var out: [UInt8] = []
        var index = startIndex
        while index < endIndex {
            let next = self.index(index, offsetBy: 2)
            guard let byte = UInt8(self[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        return out
    }
}
