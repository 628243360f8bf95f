import Foundation
import WardenCrypto
import WardenStore

/// Secrets of the server's own (an alarm channel's webhook URL or password, single sign-on's client
/// secret), sealed by the KEK under the server's identity and named; never in the TOML file.
public struct ServerSecrets: Sendable {
    let database: Database
    let vault: Vault
    let audit: AuditLog

    public init(database: Database, vault: Vault, audit: AuditLog) {
        self.database = database
        self.vault = vault
        self.audit = audit
    }

    /// The opened secret `name`, or nil when none is set.
    func open(_ name: String) async throws -> String? {
        guard let sealed = try await ServerSecretRepository(database).find(name: name) else { return nil }
        let opened = try vault.open(SealedSecret(sealed), identity: Vault.serverIdentity(name))
        return opened.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// Seals `secret` as `name` (replacing any) and records `entry` in the same transaction.
    func seal(_ secret: String, as name: String, recording entry: AuditEntry) async throws {
        let sealed = try vault.seal(SecretBytes(copying: Array(secret.utf8)), identity: Vault.serverIdentity(name))
        try await database.transaction { [audit] db in
            try await ServerSecretRepository.put(name: name, sealed: SealedColumns(sealed), on: db)
            try await audit.append(entry, on: db)
        }
    }
}
