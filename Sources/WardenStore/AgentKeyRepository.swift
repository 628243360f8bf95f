import Foundation
import SQLKit

/// An agent key: only a keyed hash of the key is stored, with the credentials it may use (one per venue).
public struct AgentKeyRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var name: String
    public var keyHash: String
    public var keyPrefix: String
    public var access: Access
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    public var lastUsedAt: Int64?
    /// venue → credential id
    public var credentials: [String: String]
    /// LLM spend allowed per UTC day, in USD (nil: no budget).
    public var dailyBudgetUSD: USD?
    /// The key this one was minted from (`warden run`), nil for a key made by its owner.
    public var parentID: String?
    /// The top key of this key's family (itself for a key made by its owner): the family shares one
    /// LLM budget and one rate-limit bucket per service, and its minting is limited as a whole.
    public var rootID: String

    public init(
        id: String, ownerID: String, name: String, keyHash: String, keyPrefix: String, access: Access,
        createdAt: Int64, expiresAt: Int64?, revokedAt: Int64? = nil, lastUsedAt: Int64? = nil,
        credentials: [String: String], dailyBudgetUSD: USD? = nil, parentID: String? = nil, rootID: String? = nil
    ) {
        self.id = id
        self.ownerID = ownerID
        self.name = name
        self.keyHash = keyHash
        self.keyPrefix = keyPrefix
        self.access = access
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
        self.credentials = credentials
        self.dailyBudgetUSD = dailyBudgetUSD
        self.parentID = parentID
        // A key made by its owner is its own root; a child of such a key has its parent as root.
        self.rootID = rootID ?? parentID ?? id
    }
}

public struct AgentKeyRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ k: AgentKeyRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO agent_keys (id, owner_id, name, key_hash, key_prefix, access, created_at, expires_at, revoked_at,
                last_used_at, daily_budget_micros, parent_id, root_id)
            VALUES (\(bind: k.id), \(bind: k.ownerID), \(bind: k.name), \(bind: k.keyHash), \(bind: k.keyPrefix),
                \(bind: k.access.rawValue), \(bind: k.createdAt), \(bind: k.expiresAt), \(bind: k.revokedAt), \(bind: k.lastUsedAt),
                \(bind: k.dailyBudgetUSD?.micros), \(bind: k.parentID), \(bind: k.rootID))
            """
        ).run()
        for (venue, credentialID) in k.credentials.sorted(by: { $0.key < $1.key }) {
            try await db.raw(
                """
                INSERT INTO agent_key_credentials (agent_key_id, credential_id, venue)
                VALUES (\(bind: k.id), \(bind: credentialID), \(bind: venue))
                """
            ).run()
        }
    }

    public func list(ownerID: String) async throws -> [AgentKeyRecord] {
        try await database.withConnection { db in
            let rows = try await db.raw("SELECT * FROM agent_keys WHERE owner_id = \(bind: ownerID) ORDER BY created_at, id").all()
            var keys: [AgentKeyRecord] = []
            for row in rows { keys.append(try await Self.decode(row, db: db)) }
            return keys
        }
    }

    public func find(id: String) async throws -> AgentKeyRecord? {
        try await database.withConnection { db in
            guard let row = try await db.raw("SELECT * FROM agent_keys WHERE id = \(bind: id)").first() else { return nil }
            return try await Self.decode(row, db: db)
        }
    }

    public func find(hash: String) async throws -> AgentKeyRecord? {
        try await database.withConnection { db in
            guard let row = try await db.raw("SELECT * FROM agent_keys WHERE key_hash = \(bind: hash)").first() else { return nil }
            return try await Self.decode(row, db: db)
        }
    }

    public func revoke(id: String, at time: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE agent_keys SET revoked_at = \(bind: time) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
    }

    static func decode(_ row: any SQLRow, db: any SQLDatabase) async throws -> AgentKeyRecord {
        let id = try row.decode(column: "id", as: String.self)
        let bindings = try await db.raw("SELECT venue, credential_id FROM agent_key_credentials WHERE agent_key_id = \(bind: id)").all()
        var credentials: [String: String] = [:]
        for binding in bindings {
            credentials[try binding.decode(column: "venue", as: String.self)] = try binding.decode(column: "credential_id", as: String.self)
        }
        return try decodeKey(row, credentials: credentials)
    }

    /// The `agent_keys` columns of a row, with the bindings read separately.
    static func decodeKey(_ row: any SQLRow, credentials: [String: String]) throws -> AgentKeyRecord {
        AgentKeyRecord(
            id: try row.decode(column: "id", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            keyHash: try row.decode(column: "key_hash", as: String.self),
            keyPrefix: try row.decode(column: "key_prefix", as: String.self),
            access: Access(stored: try row.decode(column: "access", as: String.self)),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64?.self),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self),
            credentials: credentials,
            dailyBudgetUSD: try row.decode(column: "daily_budget_micros", as: Int64?.self).map { USD(micros: $0) ?? .zero },
            parentID: try row.decode(column: "parent_id", as: String?.self),
            rootID: try row.decode(column: "root_id", as: String?.self))
    }

    /// Records the latest use of keys and credentials (batched by the caller, one statement per id).
    public func touch(keys: [String: Int64], credentials: [String: Int64]) async throws {
        try await database.transaction { db in
            for (id, time) in keys {
                try await db.raw("UPDATE agent_keys SET last_used_at = \(bind: time) WHERE id = \(bind: id)").run()
            }
            for (id, time) in credentials {
                try await db.raw("UPDATE credentials SET last_used_at = \(bind: time) WHERE id = \(bind: id)").run()
            }
        }
    }
}

/// Everything the gateway needs to know about a presented key for one venue, read in one query.
public struct ResolvedKey: Sendable {
    public var key: AgentKeyRecord
    /// Whether the key, the keys it was minted from and its owner still let it act.
    public var standing: KeyStanding
    /// The credential the key is bound to for the venue, if any.
    public var credential: CredentialRecord?
    /// The owner's grant on that credential when someone else owns it.
    public var grantAccess: Access?
    /// The store revision this was read at (see `StoreRevision`).
    public var revision: Int64
}

extension AgentKeyRepository {
    /// The key with the given hash (nil when there is none), its standing (its ancestry and owner), its
    /// credential for `venue` and any grant behind it, with the store revision it was read at either way.
    /// A hash that is no key's may be a honey token's: it comes back as `honey`.
    public func resolve(hash: String, venue: String) async throws -> (key: ResolvedKey?, revision: Int64, honey: HoneyTokenRecord?) {
        try await database.withConnection { db in
            guard
                let row = try await db.raw(
                    Self.lineage(from: "key_hash = \(bind: hash)") + " " + """
                        SELECT r.value AS store_revision, k.*, u.disabled AS owner_disabled, b.credential_id AS bound_credential,
                            c.owner_id AS c_owner_id, c.venue AS c_venue, c.label AS c_label, c.fingerprint AS c_fingerprint,
                            c.nonce AS c_nonce, c.ciphertext AS c_ciphertext, c.wrapped_dek AS c_wrapped_dek,
                            c.kek_version AS c_kek_version, c.created_at AS c_created_at, c.updated_at AS c_updated_at,
                            g.access AS grant_access, \(Self.lineageColumns), \(FreezeRepository.frozenColumn),
                            h.id AS h_id, h.owner_id AS h_owner_id, h.label AS h_label, h.kind AS h_kind, h.created_at AS h_created_at
                        FROM store_revision r
                        LEFT JOIN honey_tokens h ON h.token_hash = \(bind: hash)
                        LEFT JOIN agent_keys k ON k.key_hash = \(bind: hash)
                        LEFT JOIN users u ON u.id = k.owner_id
                        LEFT JOIN agent_key_credentials b ON b.agent_key_id = k.id AND b.venue = \(bind: venue)
                        LEFT JOIN credentials c ON c.id = b.credential_id
                        LEFT JOIN grants g ON g.credential_id = c.id AND g.grantee_id = k.owner_id
                        WHERE r.id = 1
                        """
                ).first()
            else { throw StoreError.unavailable("the store revision row is missing") }
            let revision = try row.decode(column: "store_revision", as: Int64.self)
            guard try row.decode(column: "id", as: String?.self) != nil else {
                guard let honeyID = try row.decode(column: "h_id", as: String?.self) else { return (nil, revision, nil) }
                let honey = HoneyTokenRecord(
                    id: honeyID, ownerID: try row.decode(column: "h_owner_id", as: String.self),
                    label: try row.decode(column: "h_label", as: String.self), kind: try row.decode(column: "h_kind", as: String.self),
                    tokenHash: hash, createdAt: try row.decode(column: "h_created_at", as: Int64.self))
                return (nil, revision, honey)
            }
            let bound = try row.decode(column: "bound_credential", as: String?.self)
            var credential: CredentialRecord?
            if let bound, let owner = try row.decode(column: "c_owner_id", as: String?.self) {
                credential = CredentialRecord(
                    id: bound, ownerID: owner,
                    venue: try row.decode(column: "c_venue", as: String.self),
                    label: try row.decode(column: "c_label", as: String.self),
                    fingerprint: try row.decode(column: "c_fingerprint", as: String.self),
                    nonce: Array(try row.decode(column: "c_nonce", as: Data.self)),
                    ciphertext: Array(try row.decode(column: "c_ciphertext", as: Data.self)),
                    wrappedDEK: Array(try row.decode(column: "c_wrapped_dek", as: Data.self)),
                    kekVersion: try row.decode(column: "c_kek_version", as: Int.self),
                    createdAt: try row.decode(column: "c_created_at", as: Int64.self),
                    updatedAt: try row.decode(column: "c_updated_at", as: Int64.self))
            }
            let key = try Self.decodeKey(row, credentials: bound.map { [venue: $0] } ?? [:])
            let resolved = ResolvedKey(
                key: key, standing: try Self.decodeStanding(row),
                credential: credential, grantAccess: try row.decode(column: "grant_access", as: String?.self).map(Access.init(stored:)),
                revision: revision)
            return (resolved, revision, nil)
        }
    }
}

/// Whether a key may act, beyond its own row: a key is live only while it and every key above it (the
/// one it was minted from, and so on up to its family's root) are unrevoked and unexpired, and its owner
/// (the same for the whole family) is enabled.
public struct KeyStanding: Sendable, Equatable {
    /// The key or a key above it is revoked, or its ancestry could not be followed up to a root.
    public var revoked: Bool
    /// The earliest expiry of the key and the keys above it (nil: none of them expires).
    public var expiresAt: Int64?
    public var ownerDisabled: Bool
    /// The kill switch covers the key: all keys, its owner's or its family's are frozen.
    public var frozen: Bool

    public init(revoked: Bool, expiresAt: Int64?, ownerDisabled: Bool, frozen: Bool = false) {
        self.revoked = revoked
        self.expiresAt = expiresAt
        self.ownerDisabled = ownerDisabled
        self.frozen = frozen
    }

    /// Neither the key nor any key above it is revoked or expired at `now` (the owner aside).
    public func isCurrent(at now: Int64) -> Bool { !revoked && (expiresAt.map { $0 > now } ?? true) }

    public func isLive(at now: Int64) -> Bool { isCurrent(at: now) && !ownerDisabled && !frozen }
}

/// What limits minting into a family: its live children and its recent mints.
public struct FamilyActivity: Sendable, Equatable {
    /// Keys below the root that are neither revoked nor expired.
    public var liveChildren: Int
    /// Keys minted into the family since the time asked about, and when the oldest of them was.
    public var recentMints: Int
    public var oldestRecentMint: Int64?

    public init(liveChildren: Int, recentMints: Int, oldestRecentMint: Int64?) {
        self.liveChildren = liveChildren
        self.recentMints = recentMints
        self.oldestRecentMint = oldestRecentMint
    }
}

extension AgentKeyRepository {
    /// A bound on the ancestry walk. Families stay far shallower (every key above a live key is live,
    /// and a family has at most `AgentKeys.maxLiveChildKeys` live children); the bound only keeps a
    /// corrupt store from looping, and a walk cut short counts as not reaching a root, so not live.
    static let maxLineageDepth = 64

    /// `lineage`: the key matching `start` (depth 0) and every key above it, following `parent_id`.
    static func lineage(from start: SQLQueryString) -> SQLQueryString {
        """
        WITH RECURSIVE lineage (id, parent_id, revoked_at, expires_at, depth) AS (
            SELECT id, parent_id, revoked_at, expires_at, 0 FROM agent_keys WHERE \(start)
            UNION ALL
            SELECT a.id, a.parent_id, a.revoked_at, a.expires_at, lineage.depth + 1
            FROM agent_keys a JOIN lineage ON a.id = lineage.parent_id
            WHERE lineage.depth < \(literal: maxLineageDepth)
        )
        """
    }

    /// The standing's columns, read from `lineage`.
    static let lineageColumns: SQLQueryString = """
        (SELECT COUNT(*) FROM lineage WHERE lineage.revoked_at IS NOT NULL) AS lineage_revoked,
        (SELECT MIN(lineage.expires_at) FROM lineage) AS lineage_expires_at,
        (SELECT COUNT(*) FROM lineage WHERE lineage.parent_id IS NULL) AS lineage_rooted
        """

    static func decodeStanding(_ row: any SQLRow) throws -> KeyStanding {
        let revoked = try row.decode(column: "lineage_revoked", as: Int64.self) > 0
        let rooted = try row.decode(column: "lineage_rooted", as: Int64.self) > 0
        return KeyStanding(
            revoked: revoked || !rooted, expiresAt: try row.decode(column: "lineage_expires_at", as: Int64?.self),
            ownerDisabled: try row.decode(column: "owner_disabled", as: Bool.self),
            frozen: try row.decode(column: "frozen", as: Int64.self) > 0)
    }

    /// The key with the given hash and its standing (nil when there is none).
    public func findWithStanding(hash: String) async throws -> (key: AgentKeyRecord, standing: KeyStanding)? {
        try await database.withConnection { db in try await Self.findWithStanding("key_hash = \(bind: hash)", on: db) }
    }

    /// The key with the given id and its standing, read on `db` (in the caller's transaction).
    public func findWithStanding(id: String, on db: any SQLDatabase) async throws -> (key: AgentKeyRecord, standing: KeyStanding)? {
        try await Self.findWithStanding("id = \(bind: id)", on: db)
    }

    static func findWithStanding(_ start: SQLQueryString, on db: any SQLDatabase) async throws -> (
        key: AgentKeyRecord, standing: KeyStanding
    )? {
        guard
            let row = try await db.raw(
                lineage(from: start) + " " + """
                    SELECT k.*, u.disabled AS owner_disabled, \(lineageColumns), \(FreezeRepository.frozenColumn)
                    FROM lineage l JOIN agent_keys k ON k.id = l.id JOIN users u ON u.id = k.owner_id
                    WHERE l.depth = 0
                    """
            ).first()
        else { return nil }
        return (try await decode(row, db: db), try decodeStanding(row))
    }

    /// Serialises the changes to one family (minting into it, revoking in it) across processes, for the
    /// rest of the caller's transaction. On PostgreSQL this takes the root's row lock, and each later
    /// statement sees whatever was committed before it; on SQLite the write transaction (BEGIN
    /// IMMEDIATE) already shuts every other writer out.
    public func lockFamily(rootID: String, on db: any SQLDatabase) async throws {
        guard database.dialect == .postgres else { return }
        try await db.raw("SELECT id FROM agent_keys WHERE id = \(bind: rootID) FOR UPDATE").run()
    }

    /// Revokes the key and every key minted from it, at any depth (keys already revoked keep their time),
    /// and returns the ids of the descendants it revoked. Run it after `lockFamily`, in the same transaction,
    /// so no key can be minted below it unseen.
    public func revokeWithDescendants(id: String, at time: Int64, on db: any SQLDatabase) async throws -> [String] {
        try await revoke(id: id, at: time, on: db)
        let rows = try await db.raw(
            """
            WITH RECURSIVE descendants (id) AS (
                SELECT id FROM agent_keys WHERE parent_id = \(bind: id)
                UNION
                SELECT a.id FROM agent_keys a JOIN descendants d ON a.parent_id = d.id
            )
            UPDATE agent_keys SET revoked_at = \(bind: time)
            WHERE revoked_at IS NULL AND id IN (SELECT id FROM descendants)
            RETURNING id
            """
        ).all()
        return try rows.map { try $0.decode(column: "id", as: String.self) }.sorted()
    }

    /// The family's live children at `now`, and its mints after `since`.
    public func familyActivity(rootID: String, now: Int64, since: Int64, on db: any SQLDatabase) async throws -> FamilyActivity {
        guard
            let row = try await db.raw(
                """
                SELECT
                    COUNT(CASE WHEN revoked_at IS NULL AND (expires_at IS NULL OR expires_at > \(bind: now)) THEN 1 END) AS live,
                    COUNT(CASE WHEN created_at > \(bind: since) THEN 1 END) AS recent,
                    MIN(CASE WHEN created_at > \(bind: since) THEN created_at END) AS oldest_recent
                FROM agent_keys WHERE root_id = \(bind: rootID) AND id <> \(bind: rootID)
                """
            ).first()
        else { return FamilyActivity(liveChildren: 0, recentMints: 0, oldestRecentMint: nil) }  // aggregates always give a row
        return FamilyActivity(
            liveChildren: Int(try row.decode(column: "live", as: Int64.self)),
            recentMints: Int(try row.decode(column: "recent", as: Int64.self)),
            oldestRecentMint: try row.decode(column: "oldest_recent", as: Int64?.self))
    }
}
