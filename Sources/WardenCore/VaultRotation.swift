import Crypto
import Logging
import SQLKit
import WardenCrypto
import WardenStore

/// Moves the vault to a new KEK: every sealed value's DEK is re-wrapped (bodies stay as they are), the
/// audit chain's current key is kept sealed under the new KEK so older rows still verify, the vault's
/// record takes the new key's version, sentinel and derivation parameters, and the rotation itself is an
/// audit row of the new epoch.
///
/// All of it is one transaction: a process killed at any moment leaves the store as it was (the old key
/// opens it) or rotated (the new key opens it), never in between, and running the rotation again with
/// the same two keys finishes the job (or finds it done).
public enum VaultRotation {
    public struct Result: Sendable {
        public let fromVersion: Int
        public let toVersion: Int
        public let rewrapped: Int
        public let vault: Vault
    }

    public static func rotate(
        database: Database, from old: Vault, to source: KeySource, kdf: Argon2Parameters, actor: String? = nil, logger: Logger
    ) async throws -> Result {
        let fromVersion = old.kek.version
        let (kek, salt, parameters) = try await Vault.newKey(source, version: fromVersion + 1, kdf: kdf)
        guard !kek.sameKey(as: old.kek) else { throw VaultError.rotationRefused("the new key is the current one") }
        let vault = Vault(
            kek: kek, vaultID: old.vaultID, stable: Dictionary(uniqueKeysWithValues: Vault.stableLabels.map { ($0, old.stableKey($0)) }))
        let audit = AuditLog(database: database, vault: vault)
        let dialect = database.dialect
        // A large store may rightly take long; PostgreSQL serves readers meanwhile.
        let rewrapped = try await database.transaction(deadline: .seconds(3600)) { db -> Int in
            // The audit chain's lock first: no row is appended under the old key once this transaction holds it.
            _ = try await AuditRepository(database).lockHead(on: db, dialect: dialect)
            guard let record = try await VaultRepository.load(on: db, locking: dialect),
                record.kekVersion == fromVersion, VaultVerifier.matches(record.verifier, vaultID: record.vaultID, kek: old.kek)
            else { throw VaultError.rotationRefused("the vault's key changed since it was unsealed (another rotation ran)") }
            // The session-signing key is replaced, not re-wrapped: the old KEK and an old backup must not sign
            // sessions the new vault accepts. Every session ends.
            let values = try await VaultRepository.sealedValues(on: db).filter { !($0.place == .server && $0.id == Self.sessionKeyName) }
            for var value in values {
                let identity = identity(of: value)
                do {
                    value.columns = SealedColumns(
                        try Envelope.rewrap(SealedSecret(value.columns), identity: identity, from: old.kek, to: kek))
                } catch {
                    throw VaultError.rotationRefused(
                        "\(identity.kind) \(value.id) does not open with the current key (\(error)); nothing was changed")
                }
                try await VaultRepository.updateWrapping(value, on: db)
            }
            try await put(AuditLog.chainKey(old.kek), as: AuditLog.epochKeyName(fromVersion), in: vault, on: db)
            for label in Vault.stableLabels {
                try await put(old.stableKey(label), as: Vault.stableKeyName(label), in: vault, on: db)
            }
            try await put(SymmetricKey(size: .bits256), as: Self.sessionKeyName, in: vault, on: db)
            try await AuditArchive.resign(checkpointUnder: audit, on: db)
            try await StoreRevision.bump(on: db)
            var next = record
            next.kekSource = source.storedName
            next.kekVersion = kek.version
            next.kdfSalt = salt
            next.kdfMemoryKiB = Int64(parameters.memoryKiB)
            next.kdfIterations = Int64(parameters.iterations)
            next.kdfParallelism = Int64(parameters.parallelism)
            next.verifier = VaultVerifier.make(vaultID: record.vaultID, kek: kek)
            try await VaultRepository.replace(next, on: db)
            try await audit.append(
                AuditEntry(
                    actor: actor, owner: nil, action: "vault.rotated", target: record.vaultID,
                    detail: ["from_version": "\(fromVersion)", "to_version": "\(kek.version)", "rewrapped": "\(values.count)"]),
                on: db)
            return values.count
        }
        logger.notice("vault key rotated", metadata: ["from": "\(fromVersion)", "to": "\(kek.version)", "rewrapped": "\(rewrapped)"])
        return Result(fromVersion: fromVersion, toVersion: kek.version, rewrapped: rewrapped, vault: vault)
    }

    static let sessionKeyName = "jwt-signing-key"

    /// Seals `key` under the new vault as the server secret `name`.
    static func put(_ key: SymmetricKey, as name: String, in vault: Vault, on db: any SQLDatabase) async throws {
        let bytes = key.withUnsafeBytes { SecretBytes(copying: $0) }
        try await ServerSecretRepository.put(
            name: name, sealed: SealedColumns(try vault.seal(bytes, identity: Vault.serverIdentity(name))), on: db)
    }

    static func identity(of value: SealedValue) -> SecretIdentity {
        switch value.place {
        case .credential: SecretIdentity(kind: "credential", id: value.id, owner: value.owner, venue: value.venue)
        case .server: Vault.serverIdentity(value.id)
        }
    }
}
