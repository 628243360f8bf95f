import Foundation
import Logging
import Testing
import WardenCrypto
import WardenStore
@testable import WardenCore

@Suite struct VaultTests {
    let logger = Logger(label: "test")
    let fastKDF = Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1)

    private func freshDatabase() async throws -> Database {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("warden-vault-\(UUID()).db").path
        let db = try Database.open(.sqlite(path: path), logger: logger)
        try await Migrator.migrate(db, logger: logger)
        return db
    }

    private func passphrase(_ text: String) -> KeySource { .passphrase(SecretBytes(copying: Array(text.utf8))) }

    @Test func masterKeyVaultOpensOnlyWithItsKey() async throws {
        let db = try await freshDatabase()
        let key = MasterKey.generate()
        let first = try await Vault.unseal(database: db, source: .masterKey(key), logger: logger)
        let again = try await Vault.unseal(database: db, source: .masterKey(try MasterKey.parse(key.hexEncoded())), logger: logger)
        #expect(first.vaultID == again.vaultID)
        await #expect(throws: VaultError.wrongKey(createdWith: "master_key")) {
            try await Vault.unseal(database: db, source: .masterKey(.generate()), logger: logger)
        }
        await #expect(throws: VaultError.wrongKey(createdWith: "master_key")) {
            try await Vault.unseal(database: db, source: passphrase("a passphrase long enough"), newVaultKDF: fastKDF, logger: logger)
        }
        try await db.close()
    }

    @Test func passphraseVaultStoresItsParametersAndRefusesOthers() async throws {
        let db = try await freshDatabase()
        let vault = try await Vault.unseal(database: db, source: passphrase("correct horse battery"), newVaultKDF: fastKDF, logger: logger)
        let record = try #require(try await VaultRepository(db).load())
        #expect(record.kekSource == "passphrase")
        #expect(record.kdfMemoryKiB == 64 && record.kdfIterations == 1 && record.kdfParallelism == 1)
        #expect(record.kdfSalt.count == 16)
        // A later boot uses the stored parameters, whatever the defaults are now.
        let again = try await Vault.unseal(database: db, source: passphrase("correct horse battery"), newVaultKDF: .default, logger: logger)
        #expect(again.kek.hexEncoded() == vault.kek.hexEncoded())
        await #expect(throws: VaultError.wrongKey(createdWith: "passphrase")) {
            try await Vault.unseal(database: db, source: passphrase("correct horse batterY"), logger: logger)
        }
        try await db.close()
    }

    @Test func aNewVaultNeedsALongEnoughPassphrase() async throws {
        let db = try await freshDatabase()
        await #expect(throws: VaultError.weakPassphrase) {
            try await Vault.unseal(database: db, source: passphrase("short"), newVaultKDF: fastKDF, logger: logger)
        }
        #expect(try await VaultRepository(db).load() == nil, "nothing is written for a refused key")
        try await db.close()
    }

    @Test func keySourceFromTheEnvironment() throws {
        let hex = MasterKey.generate().hexEncoded()
        guard case .masterKey(let key) = try KeySource.resolve(environment: ["WARDEN_MASTER_KEY": hex], prompt: { nil }) else {
            Issue.record("expected a master key"); return
        }
        #expect(key.hexEncoded() == hex)
        guard case .passphrase = try KeySource.resolve(environment: ["WARDEN_PASSPHRASE": "p"], prompt: { nil }) else {
            Issue.record("expected a passphrase"); return
        }
        guard case .passphrase(let typed) = try KeySource.resolve(environment: [:], prompt: { SecretBytes(copying: [65]) }) else {
            Issue.record("expected the prompt's passphrase"); return
        }
        #expect(typed.count == 1)
        #expect(throws: VaultError.noKey) { try KeySource.resolve(environment: [:], prompt: { nil }) }
        #expect(throws: VaultError.emptyPassphrase) { try KeySource.resolve(environment: [:], prompt: { SecretBytes(copying: []) }) }
        #expect(throws: VaultError.ambiguousKeySource) {
            try KeySource.resolve(environment: ["WARDEN_MASTER_KEY": hex, "WARDEN_PASSPHRASE": "p"], prompt: { nil })
        }
        #expect(throws: VaultError.malformedMasterKey(CryptoError.malformedMasterKey.description)) {
            try KeySource.resolve(environment: ["WARDEN_MASTER_KEY": "xyz"], prompt: { nil })
        }
    }

    @Test func noKeyMessageExplainsBothOptions() {
        let message = VaultError.noKey.description
        #expect(message.contains("WARDEN_MASTER_KEY"))
        #expect(message.contains("WARDEN_PASSPHRASE"))
        #expect(!message.contains("\n"))
    }

    @Test func sealedSecretsOpenAfterReunsealing() async throws {
        let db = try await freshDatabase()
        let key = MasterKey.generate()
        let vault = try await Vault.unseal(database: db, source: .masterKey(key), logger: logger)
        let identity = SecretIdentity(kind: "credential", id: "1", owner: "u", venue: "openai")
        let sealed = try vault.seal(SecretBytes(copying: Array("sk-test".utf8)), identity: identity)
        let reopened = try await Vault.unseal(database: db, source: .masterKey(try MasterKey.parse(key.hexEncoded())), logger: logger)
        #expect(try reopened.open(sealed, identity: identity).withUnsafeBytes { Array($0) } == Array("sk-test".utf8))
        try await db.close()
    }
}
