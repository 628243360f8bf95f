import struct Crypto.SymmetricKey
import Foundation
import Logging
import NIOPosix
import WardenCrypto
import WardenStore

/// The unsealed vault: holds the KEK in memory and seals or opens secrets with it.
public final class Vault: Sendable {
    public let kek: MasterKey
    public let vaultID: String
    /// Keys that must outlive a rotation, once the vault was rotated: what they key is stored (agent keys'
    /// hashes, credentials' fingerprints) and would not match under a key derived from the new KEK.
    private let stable: [String: SymmetricKey]

    /// The purposes whose keys outlive rotations.
    static let stableLabels = ["agent-key-hash", "credential-fingerprint"]

    init(kek: MasterKey, vaultID: String, stable: [String: SymmetricKey] = [:]) {
        self.kek = kek
        self.vaultID = vaultID
        self.stable = stable
    }

    /// The key for a purpose whose results are stored: derived from the first KEK, and carried, sealed,
    /// through every rotation since.
    public func stableKey(_ label: String) -> SymmetricKey {
        stable[label] ?? kek.derivedKey(label: label)
    }

    static func stableKeyName(_ label: String) -> String { "stable-key-\(label)" }

    /// The same vault with the stable keys a rotation left sealed in the store.
    func loadingStableKeys(from database: Database) async throws -> Vault {
        var keys: [String: SymmetricKey] = [:]
        for label in Self.stableLabels {
            let name = Self.stableKeyName(label)
            guard let sealed = try await ServerSecretRepository(database).find(name: name) else { continue }
            guard let opened = try? open(SealedSecret(sealed), identity: Self.serverIdentity(name)) else {
                throw StoreError.unusable("the stored key \(name) does not open with this vault's key: the store is damaged")
            }
            keys[label] = opened.withUnsafeBytes { SymmetricKey(data: $0) }
        }
        return Vault(kek: kek, vaultID: vaultID, stable: keys)
    }

    /// Unseals the vault in `database`, creating it on first boot. A key that does not match the
    /// stored sentinel is refused; nothing is written in that case.
    public static func unseal(
        database: Database, source: KeySource, newVaultKDF: Argon2Parameters = .default, logger: Logger
    ) async throws -> Vault {
        let repository = VaultRepository(database)
        if let record = try await repository.load() {
            return try await open(record, source: source).loadingStableKeys(from: database)
        }
        // Accounts without a vault record: the store is damaged, and a new vault would orphan every secret.
        if try await repository.holdsAccounts() {
            throw StoreError.unusable("the store holds accounts but no vault record: it is damaged; restore it from a backup")
        }
        let created = try await create(source: source, kdf: newVaultKDF)
        if try await repository.insertIfAbsent(created.record) {
            logger.info("vault created", metadata: ["kek_source": "\(source.storedName)"])
            return created.vault
        }
        // Another process created the vault between our read and write: verify against its record.
        guard let record = try await repository.load() else { throw StoreError.unavailable("vault record vanished") }
        return try await open(record, source: source).loadingStableKeys(from: database)
    }

    /// The identity a secret of the server itself is sealed under (the JWT key, older audit epochs' keys).
    public static func serverIdentity(_ name: String) -> SecretIdentity {
        SecretIdentity(kind: "server", id: name, owner: "", venue: "")
    }

    public func seal(_ secret: SecretBytes, identity: SecretIdentity) throws(CryptoError) -> SealedSecret {
        try Envelope.seal(secret, identity: identity, kek: kek)
    }

    public func open(_ sealed: SealedSecret, identity: SecretIdentity) throws(CryptoError) -> SecretBytes {
        try Envelope.open(sealed, identity: identity, kek: kek)
    }

    // MARK: first boot and later boots

    private static func create(source: KeySource, kdf: Argon2Parameters) async throws -> (vault: Vault, record: VaultRecord) {
        let vaultID = UUID().uuidString.lowercased()
        let salt = Argon2id.randomSalt()
        let kek: MasterKey
        switch source {
        case .masterKey(let key): kek = key
        case .passphrase(let passphrase):
            guard passphrase.count >= 12 else { throw VaultError.weakPassphrase }
            kek = try await derive(passphrase, salt: salt, parameters: kdf)
        case .recoveryShares: throw VaultError.recovery("there is no vault to recover in this store")
        }
        let record = VaultRecord(
            vaultID: vaultID, kekSource: source.storedName, kekVersion: kek.version, kdfSalt: salt,
            kdfMemoryKiB: Int64(kdf.memoryKiB), kdfIterations: Int64(kdf.iterations),
            kdfParallelism: Int64(kdf.parallelism),
            verifier: VaultVerifier.make(vaultID: vaultID, kek: kek), createdAt: Clock.nowMillis())
        return (Vault(kek: kek, vaultID: vaultID), record)
    }

    /// Opens the vault `record` describes with the key `source` gives: the record's KEK version is the key's.
    static func open(_ record: VaultRecord, source: KeySource) async throws -> Vault {
        let kek: MasterKey
        switch source {
        case .masterKey(let key): kek = key.versioned(record.kekVersion)
        case .passphrase(let passphrase):
            let parameters = Argon2Parameters(
                memoryKiB: UInt32(clamping: record.kdfMemoryKiB), iterations: UInt32(clamping: record.kdfIterations),
                parallelism: UInt32(clamping: record.kdfParallelism))
            kek = try await derive(passphrase, salt: record.kdfSalt, parameters: parameters, version: record.kekVersion)
        case .recoveryShares(let read):
            let shares = try read(record.vaultID)
            do { kek = try RecoveryShares.combine(shares, version: record.kekVersion) } catch {
                throw VaultError.recovery(error.description)
            }
            guard VaultVerifier.matches(record.verifier, vaultID: record.vaultID, kek: kek) else {
                throw VaultError.recovery(
                    "the shares rebuild a key that does not open this vault: one of them was altered, or they were split from an older key (shares made before a rotation no longer open the vault)"
                )
            }
        }
        guard VaultVerifier.matches(record.verifier, vaultID: record.vaultID, kek: kek) else {
            if record.kekVersion > 1 { throw VaultError.notCurrentKey(version: record.kekVersion) }
            throw VaultError.wrongKey(createdWith: record.kekSource)
        }
        return Vault(kek: kek, vaultID: record.vaultID)
    }

    /// The KEK a new key source gives for a vault whose next version is `version` (a rotation's target), with the
    /// derivation parameters to record. A passphrase gets a fresh salt.
    static func newKey(_ source: KeySource, version: Int, kdf: Argon2Parameters) async throws -> (
        MasterKey, salt: [UInt8], kdf: Argon2Parameters
    ) {
        let salt = Argon2id.randomSalt()
        switch source {
        case .masterKey(let key): return (key.versioned(version), salt, kdf)
        case .passphrase(let passphrase):
            guard passphrase.count >= 12 else { throw VaultError.weakPassphrase }
            return (try await derive(passphrase, salt: salt, parameters: kdf, version: version), salt, kdf)
        case .recoveryShares: throw VaultError.rotationRefused("the new key must be a master key or a passphrase")
        }
    }

    /// Argon2id blocks its thread for about a second: run it on the blocking thread pool.
    private static func derive(
        _ passphrase: SecretBytes, salt: [UInt8], parameters: Argon2Parameters, version: Int = 1
    ) async throws -> MasterKey {
        do {
            return try await NIOThreadPool.singleton.runIfActive {
                try MasterKey(bytes: try Argon2id.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters), version: version)
            }
        } catch let error as CryptoError {
            throw VaultError.kdf(error.description)
        }
    }
}

/// Between the envelope as the crypto layer makes it and the columns that store it.
extension SealedColumns {
    public init(_ sealed: SealedSecret) {
        self.init(nonce: sealed.nonce, ciphertext: sealed.ciphertext, wrappedDEK: sealed.wrappedKey, kekVersion: sealed.kekVersion)
    }
}

extension SealedSecret {
    public init(_ columns: SealedColumns) {
        self.init(nonce: columns.nonce, ciphertext: columns.ciphertext, wrappedKey: columns.wrappedDEK, kekVersion: columns.kekVersion)
    }
}
