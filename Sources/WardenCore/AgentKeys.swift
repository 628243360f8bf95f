import Crypto
import Foundation
import SQLKit
import WardenCrypto
import WardenStore

/// Keys that agents present instead of real credentials. A key is shown once; only its keyed hash is kept.
public struct AgentKeys: Sendable {
    let database: Database
    let audit: AuditLog
    let credentials: Credentials
    /// Keyed once and copied for each hash (keying costs as much as hashing a key).
    let keyedHash: HMAC<SHA256>
    let repository: AgentKeyRepository

    public init(database: Database, vault: Vault, audit: AuditLog, credentials: Credentials) {
        self.database = database
        self.audit = audit
        self.credentials = credentials
        self.keyedHash = HMAC<SHA256>(key: vault.stableKey("agent-key-hash"))
        self.repository = AgentKeyRepository(database)
    }

    /// Creates a key bound to credentials the caller owns or holds a grant for; a trade key needs
    /// ownership or a trade grant on each. Returns the record and the key itself (to show once).
    public func create(
        _ p: Principal, name: String, credentialIDs: [String], access: String, expiresInDays: Int?,
        dailyBudgetUSD: Decimal? = nil
    ) async throws -> (AgentKeyRecord, String) {
        let budget = try dailyBudgetUSD.map { value throws(WardenError) -> USD in
            guard let usd = USD(limit: value), usd <= USD(dollars: 1_000_000) else {
                throw WardenError.invalid("daily_budget_usd", "must be between 0 and 1000000")
            }
            return usd
        }
        guard (1...100).contains(name.count) else { throw WardenError.invalid("name", "must be 1 to 100 characters") }
        try Credentials.validate(label: name)
        let access = try Access.parse(access)
        guard !credentialIDs.isEmpty else { throw WardenError.invalid("credential_ids", "must name at least one credential") }
        if let days = expiresInDays, !(1...3650).contains(days) {
            throw WardenError.invalid("expires_in_days", "must be between 1 and 3650")
        }
        var bindings: [String: String] = [:]
        for id in credentialIDs {
            let (record, level) = try await credentials.visible(p, id: id)
            if case .shared(let grant) = level, !access.fits(grant) {
                throw WardenError(
                    .forbidden, code: "grant_too_narrow",
                    "credential \(id) is shared with you read-only; a trade key cannot use it", field: "access")
            }
            if let other = bindings[record.venue], other != id {
                throw WardenError.invalid("credential_ids", "at most one credential per venue (two for \(record.venue))")
            }
            bindings[record.venue] = id
        }
        let key = Self.generateKey()
        let now = Clock.nowMillis()
        let record = AgentKeyRecord(
            id: UUID().uuidString.lowercased(), ownerID: p.user.id, name: name, keyHash: hash(key),
            keyPrefix: String(key.prefix(8)), access: access, createdAt: now,
            expiresAt: expiresInDays.map { now + Int64($0) * 86_400_000 }, credentials: bindings, dailyBudgetUSD: budget)
        try await database.transaction { db in
            try await repository.insert(record, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "agent_key.create", target: record.id,
                    detail: ["access": access.rawValue, "venues": record.credentials.keys.sorted().joined(separator: ",")]), on: db)
        }
        return (record, key)
    }

    public func list(_ p: Principal) async throws -> [AgentKeyRecord] {
        try await repository.list(ownerID: p.user.id)
    }

    /// Revokes the key and every key minted from it (see `revokeFamily`).
    public func revoke(_ p: Principal, id: String) async throws {
        guard let record = try await repository.find(id: id), record.ownerID == p.user.id else {
            throw WardenError.notFound("agent key")
        }
        try await revokeFamily(record, actor: p.user.id, detail: [:])
    }

    /// Revokes `record` and, in the same transaction, every key below it, so none of them acts again on
    /// any server: the write moves the store revision, which empties every server's key cache. The
    /// gateway also checks each key's ancestry, so a key minted in a race with this is refused too.
    func revokeFamily(_ record: AgentKeyRecord, actor: String, detail: [String: String]) async throws {
        try await database.transaction { db in
            try await repository.lockFamily(rootID: record.rootID, on: db)
            let descendants = try await repository.revokeWithDescendants(id: record.id, at: Clock.nowMillis(), on: db)
            var detail = detail
            if !descendants.isEmpty { detail["descendants_revoked"] = String(descendants.count) }
            try await audit.append(
                AuditEntry(
                    actor: actor, owner: record.ownerID, action: "agent_key.revoke", target: record.id,
                    detail: detail), on: db)
        }
    }

    /// The live key record for a presented key, or nil (unknown; revoked or expired, itself or a key above
    /// it; or its owner disabled).
    public func lookup(_ key: String) async throws -> AgentKeyRecord? {
        guard key.hasPrefix("wdn_"), key.utf8.count < 200, let found = try await repository.findWithStanding(hash: hash(key)),
            found.standing.isLive(at: Clock.nowMillis())
        else { return nil }
        return found.key
    }

    /// The live key record for a presented key, or the reason it may not act. `frozen`: a frozen key is
    /// let through (only to revoke itself: giving up a key is never stopped by the kill switch).
    public func authenticate(_ key: String, frozen: Bool = false) async throws -> AgentKeyRecord {
        guard key.hasPrefix("wdn_"), key.utf8.count < 200, let found = try await repository.findWithStanding(hash: hash(key)) else {
            throw Self.notLive
        }
        var standing = found.standing
        if frozen { standing.frozen = false }
        try Self.requireLive(standing, at: Clock.nowMillis())
        return found.key
    }

    static let notLive = WardenError(
        .unauthorized, code: "unauthenticated",
        "unknown, revoked or expired agent key (or a key it was minted from is revoked or expired)")

    static func requireLive(_ standing: KeyStanding, at now: Int64) throws {
        guard standing.isCurrent(at: now) else { throw notLive }
        guard !standing.ownerDisabled else {
            throw WardenError(.unauthorized, code: "owner_disabled", "the owner of this agent key is disabled")
        }
        guard !standing.frozen else {
            throw WardenError(.forbidden, code: "frozen", "this agent key is frozen by Warden's kill switch; a person must lift the freeze")
        }
    }

    func hash(_ key: String) -> String {
        var hmac = keyedHash
        var key = key
        key.withUTF8 { hmac.update(data: UnsafeRawBufferPointer($0)) }
        return hmac.finalize().withUnsafeBytes { Hex.encode($0) }
    }

    /// `wdn_` and 32 random bytes in URL-safe base64 (256 bits).
    static func generateKey() -> String {
        var bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        defer { Wipe.array(&bytes) }
        return "wdn_" + Base64URL.encode(Data(bytes))
    }
}

/// Who asks for a child key: a logged-in user, or an agent key (which can only narrow itself).
public enum KeyMinter: Sendable {
    case session(Principal)
    case agentKey(AgentKeyRecord)
}

extension AgentKeys {
    public static let maxChildTTLSeconds = 30 * 86_400
    /// Live (unrevoked, unexpired) keys a family may hold below its root at once. `warden run` revokes its
    /// key when its command exits, so only runs in progress (or killed ones, until their TTL) count.
    public static let maxLiveChildKeys = 32
    /// Keys that may be minted into one family per `mintWindowSeconds`, live or not.
    public static let maxMintsPerWindow = 10
    public static let mintWindowSeconds = 60

    /// Mints a short-lived key for `warden run`: the venues asked for (or all the caller may use), never
    /// more access, credentials or lifetime than the caller has. A key minted from a session starts a
    /// family of its own; one minted from a key joins that key's family, whose members share its budget
    /// and rate limits, and only while the minting key and every key above it are live.
    public func mintChild(_ minter: KeyMinter, venues: [String]?, ttlSeconds: Int, name: String) async throws -> (AgentKeyRecord, String) {
        guard (5...Self.maxChildTTLSeconds).contains(ttlSeconds) else {
            throw WardenError.invalid("ttl_seconds", "must be between 5 and \(Self.maxChildTTLSeconds)")
        }
        let now = Clock.nowMillis()
        var expiresAt = now + Int64(ttlSeconds) * 1000
        let ownerID: String, access: Access, available: [String: String]
        var parentID: String?, rootID: String?, budget: USD?
        switch minter {
        case .session(let principal):
            ownerID = principal.user.id
            access = .trade
            // The newest credential the user owns for each venue.
            var newest: [String: CredentialRecord] = [:]
            for credential in try await CredentialRepository(database).list(ownerID: ownerID)
            where (newest[credential.venue]?.updatedAt ?? .min) <= credential.updatedAt {
                newest[credential.venue] = credential
            }
            available = newest.mapValues(\.id)
        case .agentKey(let parent):
            ownerID = parent.ownerID
            access = parent.access
            available = parent.credentials
            parentID = parent.id
            rootID = parent.rootID
            budget = parent.dailyBudgetUSD
            if let parentExpiry = parent.expiresAt { expiresAt = min(expiresAt, parentExpiry) }
        }
        var bindings: [String: String] = [:]
        for venue in venues ?? available.keys.sorted() {
            guard let credentialID = available[venue] else {
                throw WardenError(.forbidden, code: "outside_scope", "the caller has no \(venue) credential to delegate", field: "venues")
            }
            bindings[venue] = credentialID
        }
        guard !bindings.isEmpty else {
            throw WardenError(.badRequest, code: "nothing_to_delegate", "the caller has no credential to delegate")
        }
        let key = Self.generateKey()
        let record = AgentKeyRecord(
            id: UUID().uuidString.lowercased(), ownerID: ownerID, name: String(name.prefix(100)), keyHash: hash(key),
            keyPrefix: String(key.prefix(8)), access: access, createdAt: now, expiresAt: expiresAt,
            credentials: bindings, dailyBudgetUSD: budget, parentID: parentID, rootID: rootID)
        let entry = AuditEntry(
            actor: parentID.map { "key:\($0)" } ?? ownerID, owner: ownerID, action: "agent_key.mint_child",
            target: record.id,
            detail: [
                "venues": bindings.keys.sorted().joined(separator: ","),
                "ttl_seconds": String(ttlSeconds),
            ])
        try await database.transaction { db in
            if let parentID = record.parentID {
                try await checkFamily(parentID: parentID, rootID: record.rootID, now: now, on: db)
            }
            try await repository.insert(record, on: db)
            try await audit.append(entry, on: db)
        }
        return (record, key)
    }

    /// Inside the mint's transaction, with the family locked: the minting key must still be live (it may
    /// have been revoked since the request was authenticated), and the family within its limits.
    private func checkFamily(parentID: String, rootID: String, now: Int64, on db: any SQLDatabase) async throws {
        try await repository.lockFamily(rootID: rootID, on: db)
        guard let parent = try await repository.findWithStanding(id: parentID, on: db) else { throw Self.notLive }
        try Self.requireLive(parent.standing, at: now)
        let window = Int64(Self.mintWindowSeconds) * 1000
        let activity = try await repository.familyActivity(rootID: rootID, now: now, since: now - window, on: db)
        if activity.liveChildren >= Self.maxLiveChildKeys {
            throw WardenError(
                .tooManyRequests, code: "too_many_child_keys",
                "this key's family already has \(Self.maxLiveChildKeys) live keys minted from it; revoke some "
                    + "(DELETE /api/v1/agent-keys/self with each) or wait for them to expire")
        }
        if activity.recentMints >= Self.maxMintsPerWindow {
            // Until the oldest mint in the window leaves it, in whole seconds.
            let wait = Int(max(1, ((activity.oldestRecentMint ?? now) + window - now + 999) / 1000))
            throw WardenError(
                .tooManyRequests, code: "mint_rate_limited",
                "this key's family minted \(Self.maxMintsPerWindow) keys in the last \(Self.mintWindowSeconds) s; "
                    + "try again in \(wait) s", retryAfterSeconds: wait)
        }
    }

    /// Revokes the presented key itself and every key minted from it (how `warden run` ends its child key).
    public func revokeSelf(_ key: AgentKeyRecord) async throws {
        try await revokeFamily(key, actor: "key:\(key.id)", detail: ["via": "self"])
    }
}
