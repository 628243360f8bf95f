import Crypto
import Foundation
import SQLKit
import WardenCrypto
import WardenStore
import WardenVenues

/// What the API shows of a credential: metadata only, never the secret.
public struct CredentialView: Sendable, Equatable {
    public var id: String
    public var venue: String
    public var label: String
    public var fingerprint: String
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastUsedAt: Int64?
    /// How the caller holds it: as its owner, or through a share at some access.
    public var holding: Holding
}

/// Venue credentials: sealed on the way in, only metadata on the way out, shared through grants.
public struct Credentials: Sendable {
    let database: Database
    let vault: Vault
    let audit: AuditLog
    let venues: VenueRegistry
    let repository: CredentialRepository
    let grants: GrantRepository

    public init(database: Database, vault: Vault, audit: AuditLog, venues: VenueRegistry) {
        self.database = database
        self.vault = vault
        self.audit = audit
        self.venues = venues
        self.repository = CredentialRepository(database)
        self.grants = GrantRepository(database)
    }

    public func create(_ p: Principal, venue: String, label: String, secret: [String: String]) async throws -> CredentialView {
        try VenueSecretSchema.validate(venue: venue, secret: secret, venues: venues)
        try Self.validate(label: label)
        let now = Clock.nowMillis()
        var record = CredentialRecord(
            id: UUID().uuidString.lowercased(), ownerID: p.user.id, venue: venue, label: label,
            fingerprint: "", nonce: [], ciphertext: [], wrappedDEK: [], kekVersion: 0,
            createdAt: now, updatedAt: now)
        try seal(secret, into: &record)
        try await database.transaction { [record] db in
            try await repository.insert(record, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "credential.create", target: record.id,
                    detail: ["venue": venue]), on: db)
        }
        return Self.view(record, holding: .owner)
    }

    public func list(_ p: Principal) async throws -> [CredentialView] {
        let own = try await repository.list(ownerID: p.user.id).map { Self.view($0, holding: .owner) }
        let shared = try await repository.listGranted(to: p.user.id).map { Self.view($0.0, holding: .shared($0.1)) }
        return own + shared
    }

    public func get(_ p: Principal, id: String) async throws -> CredentialView {
        let (record, holding) = try await visible(p, id: id)
        return Self.view(record, holding: holding)
    }

    /// Renames and/or rotates (replaces the secret). Owner only.
    public func update(_ p: Principal, id: String, label: String?, secret: [String: String]?) async throws -> CredentialView {
        var record = try await owned(p, id: id, action: "change")
        if let label { try Self.validate(label: label); record.label = label }
        if let secret {
            try VenueSecretSchema.validate(venue: record.venue, secret: secret, venues: venues)
            try seal(secret, into: &record)
        }
        record.updatedAt = Clock.nowMillis()
        try await database.transaction { [record] db in
            try await repository.update(record, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id,
                    action: secret == nil ? "credential.rename" : "credential.rotate",
                    target: record.id,
                    detail: secret == nil
                        ? ["venue": record.venue] : ["venue": record.venue, "alarm": AlarmEvent.credentialRotated.rawValue]), on: db)
        }
        return Self.view(record, holding: .owner)
    }

    /// Merges new secret fields into a credential on behalf of one of its owner's agent keys (Polymarket
    /// level-2 credentials minted through the gateway), so the values never pass through the agent.
    func merge(_ fields: [String: String], intoCredential id: String, byKey key: AgentKeyRecord) async throws {
        guard var record = try await repository.find(id: id), record.ownerID == key.ownerID,
            var secret = Self.open(record, vault: vault)
        else { throw WardenError.notFound("credential") }
        secret.merge(fields) { $1 }
        try VenueSecretSchema.validate(venue: record.venue, secret: secret, venues: venues)
        try seal(secret, into: &record)
        record.updatedAt = Clock.nowMillis()
        try await database.transaction { [record] db in
            try await repository.update(record, on: db)
            try await audit.append(
                AuditEntry(
                    actor: "key:\(key.id)", owner: key.ownerID, action: "credential.rotate", target: record.id,
                    detail: ["venue": record.venue, "via": "gateway", "fields": fields.keys.sorted().joined(separator: ",")]),
                on: db)
        }
    }

    public func delete(_ p: Principal, id: String) async throws {
        let record = try await owned(p, id: id, action: "delete")
        try await database.transaction { db in
            try await repository.delete(id: record.id, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "credential.delete", target: record.id,
                    detail: ["venue": record.venue, "alarm": AlarmEvent.credentialDeleted.rawValue]), on: db)
        }
    }

    // MARK: grants

    public func listGrants(_ p: Principal, credentialID: String) async throws -> [(GrantRecord, String)] {
        let record = try await owned(p, id: credentialID, action: "see the shares of")
        var out: [(GrantRecord, String)] = []
        for grant in try await grants.list(credentialID: record.id) {
            out.append((grant, try await UserRepository(database).find(id: grant.granteeID)?.email ?? ""))
        }
        return out
    }

    public func grant(_ p: Principal, credentialID: String, email: String, access: String) async throws -> (GrantRecord, String) {
        let record = try await owned(p, id: credentialID, action: "share")
        let access = try Access.parse(access)
        let normalized = try Accounts.normalize(email: email)
        guard let grantee = try await UserRepository(database).find(email: normalized), !grantee.disabled else {
            throw WardenError.invalid("email", "no active user has this email")
        }
        guard grantee.id != p.user.id else { throw WardenError.invalid("email", "you already own this credential") }
        if try await grants.find(credentialID: record.id, granteeID: grantee.id) != nil {
            throw WardenError(
                .conflict, code: "grant_exists",
                "this credential is already shared with \(normalized); revoke that share to change its level")
        }
        let grant = GrantRecord(
            id: UUID().uuidString.lowercased(), credentialID: record.id, granteeID: grantee.id,
            access: access, createdAt: Clock.nowMillis())
        try await database.transaction { db in
            try await grants.insert(grant, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "grant.create", target: grant.id,
                    detail: ["credential": record.id, "grantee": grantee.id, "access": access.rawValue]), on: db)
        }
        return (grant, normalized)
    }

    public func revokeGrant(_ p: Principal, credentialID: String, grantID: String) async throws {
        let record = try await owned(p, id: credentialID, action: "change the shares of")
        try await database.transaction { db in
            guard try await grants.delete(id: grantID, credentialID: record.id, on: db) else { throw WardenError.notFound("share") }
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "grant.revoke", target: grantID,
                    detail: ["credential": record.id]), on: db)
        }
    }

    // MARK: access

    /// The credential and the caller's access to it; 404 when the caller may not see it, so ids cannot be probed.
    func visible(_ p: Principal, id: String) async throws -> (CredentialRecord, Holding) {
        guard let record = try await repository.find(id: id) else { throw WardenError.notFound("credential") }
        if record.ownerID == p.user.id { return (record, .owner) }
        if let grant = try await grants.find(credentialID: id, granteeID: p.user.id) { return (record, .shared(grant.access)) }
        throw WardenError.notFound("credential")
    }

    func owned(_ p: Principal, id: String, action: String) async throws -> CredentialRecord {
        let (record, holding) = try await visible(p, id: id)
        guard holding == .owner else {
            throw WardenError(.forbidden, code: "not_owner", "only the credential's owner can \(action) it")
        }
        return record
    }

    // MARK: sealing

    private func seal(_ secret: [String: String], into record: inout CredentialRecord) throws {
        var plaintext = try Self.canonicalJSON(secret)
        defer { Wipe.array(&plaintext) }
        let sealed = try vault.seal(SecretBytes(copying: plaintext), identity: Self.identity(record))
        record.nonce = sealed.nonce
        record.ciphertext = sealed.ciphertext
        record.wrappedDEK = sealed.wrappedKey
        record.kekVersion = sealed.kekVersion
        record.fingerprint = fingerprint(plaintext)
    }

    /// A keyed hash of the secret, so equal secrets can be recognised without revealing anything.
    private func fingerprint(_ plaintext: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: plaintext, using: vault.stableKey("credential-fingerprint"))
        return Hex.encode(mac.prefix(6))
    }

    /// The secret fields of a stored credential, or nil when it does not open (wrong row, tampered blob).
    static func open(_ record: CredentialRecord, vault: Vault) -> [String: String]? {
        let sealed = SealedSecret(
            nonce: record.nonce, ciphertext: record.ciphertext,
            wrappedKey: record.wrappedDEK, kekVersion: record.kekVersion)
        guard let opened = try? vault.open(sealed, identity: identity(record)) else { return nil }
        return opened.withUnsafeBytes { try? JSONDecoder().decode([String: String].self, from: Data($0)) }
    }

    static func identity(_ record: CredentialRecord) -> SecretIdentity {
        SecretIdentity(kind: "credential", id: record.id, owner: record.ownerID, venue: record.venue)
    }

    static func canonicalJSON(_ secret: [String: String]) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(secret))
    }

    static func validate(label: String) throws(WardenError) {
        guard (1...100).contains(label.count) else { throw .invalid("label", "must be 1 to 100 characters") }
        for scalar in label.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator:
                throw .invalid(
                    "label", "contains an invisible or control character (U+\(String(scalar.value, radix: 16, uppercase: true)))")
            default: continue
            }
        }
    }

    static func view(_ r: CredentialRecord, holding: Holding) -> CredentialView {
        CredentialView(
            id: r.id, venue: r.venue, label: r.label, fingerprint: r.fingerprint, createdAt: r.createdAt,
            updatedAt: r.updatedAt, lastUsedAt: r.lastUsedAt, holding: holding)
    }
}
