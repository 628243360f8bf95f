import SQLKit

/// A personal access token for the management API: a user's script or CI job, scoped and expiring. The
/// token itself is never stored, only its SHA-256 hash.
public struct AccessTokenRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var name: String
    public var tokenHash: String
    public var scope: String
    public var createdAt: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?
    public var lastUsedAt: Int64?

    public init(
        id: String, userID: String, name: String, tokenHash: String, scope: String, createdAt: Int64, expiresAt: Int64,
        revokedAt: Int64? = nil, lastUsedAt: Int64? = nil
    ) {
        self.id = id
        self.userID = userID
        self.name = name
        self.tokenHash = tokenHash
        self.scope = scope
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

public struct AccessTokenRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Inserts the token unless its user already has `limit` live ones (one statement: on SQLite writes
    /// take turns, so the limit is exact). False when the user is at the limit.
    public func insert(_ t: AccessTokenRecord, limitPerUser limit: Int, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw(
            """
            INSERT INTO access_tokens (id, user_id, name, token_hash, scope, created_at, expires_at)
            SELECT \(bind: t.id), \(bind: t.userID), \(bind: t.name), \(bind: t.tokenHash), \(bind: t.scope),
                \(bind: t.createdAt), \(bind: t.expiresAt)
            WHERE (SELECT COUNT(*) FROM access_tokens WHERE user_id = \(bind: t.userID) AND revoked_at IS NULL
                AND expires_at > \(bind: t.createdAt)) < \(bind: limit)
            RETURNING id
            """
        ).first() != nil
    }

    public func find(hash: String) async throws -> AccessTokenRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM access_tokens WHERE token_hash = \(bind: hash)").first().map(Self.decode)
        }
    }

    /// The user's tokens that are live or ended in the last 30 days, newest first.
    public func list(userID: String, now: Int64) async throws -> [AccessTokenRecord] {
        let since = now - 30 * 86_400_000
        return try await database.withConnection { db in
            try await db.raw(
                """
                SELECT * FROM access_tokens WHERE user_id = \(bind: userID)
                AND COALESCE(revoked_at, expires_at) > \(bind: since) ORDER BY created_at DESC, id
                """
            ).all().map(Self.decode)
        }
    }

    /// Revokes one of the user's live tokens; false when the user has no such live token.
    public func revoke(id: String, userID: String, at time: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw(
            """
            UPDATE access_tokens SET revoked_at = \(bind: time)
            WHERE id = \(bind: id) AND user_id = \(bind: userID) AND revoked_at IS NULL RETURNING id
            """
        ).first() != nil
    }

    /// Notes a use, at most once a minute per token (a busy script costs no write per call).
    public func touch(id: String, now: Int64) async throws {
        try await database.withConnection { db in
            try await db.raw(
                """
                UPDATE access_tokens SET last_used_at = \(bind: now)
                WHERE id = \(bind: id) AND (last_used_at IS NULL OR last_used_at < \(bind: now - 60_000))
                """
            ).run()
        }
    }

    static func decode(_ row: any SQLRow) throws -> AccessTokenRecord {
        AccessTokenRecord(
            id: try row.decode(column: "id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            name: try row.decode(column: "name", as: String.self), tokenHash: try row.decode(column: "token_hash", as: String.self),
            scope: try row.decode(column: "scope", as: String.self), createdAt: try row.decode(column: "created_at", as: Int64.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64.self),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self))
    }
}
