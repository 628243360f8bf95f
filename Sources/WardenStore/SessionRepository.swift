import SQLKit

public struct SessionRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var createdAt: Int64
    public var expiresAt: Int64
    public var revokedAt: Int64?

    public init(id: String, userID: String, createdAt: Int64, expiresAt: Int64, revokedAt: Int64? = nil) {
        self.id = id
        self.userID = userID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }
}

/// Server-side login sessions: a JWT is only good while its session row is live.
public struct SessionRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ s: SessionRecord) async throws {
        try await database.withConnection { db in
            try await db.raw(
                """
                INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at)
                VALUES (\(bind: s.id), \(bind: s.userID), \(bind: s.createdAt), \(bind: s.expiresAt), \(bind: s.revokedAt))
                """
            ).run()
        }
    }

    public func find(id: String) async throws -> SessionRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM sessions WHERE id = \(bind: id)").first().map { row in
                SessionRecord(
                    id: try row.decode(column: "id", as: String.self),
                    userID: try row.decode(column: "user_id", as: String.self),
                    createdAt: try row.decode(column: "created_at", as: Int64.self),
                    expiresAt: try row.decode(column: "expires_at", as: Int64.self),
                    revokedAt: try row.decode(column: "revoked_at", as: Int64?.self))
            }
        }
    }

    /// Moves a live session's end later (never earlier: another server may have moved it further).
    public func extend(id: String, to expiresAt: Int64) async throws {
        try await database.withConnection { db in
            try await db.raw(
                """
                UPDATE sessions SET expires_at = \(bind: expiresAt)
                WHERE id = \(bind: id) AND revoked_at IS NULL AND expires_at < \(bind: expiresAt)
                """
            ).run()
        }
    }

    public func revoke(id: String, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE sessions SET revoked_at = \(bind: Clock.nowMillis()) WHERE id = \(bind: id) AND revoked_at IS NULL").run()
    }

    /// Revokes every live session of a user, optionally keeping one (the caller's own), every device
    /// login approved but not yet collected (a session to be) and every personal access token.
    public func revokeAll(userID: String, except keep: String? = nil, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE device_grants SET status = 'denied' WHERE user_id = \(bind: userID) AND status = 'approved'").run()
        try await db.raw(
            "UPDATE access_tokens SET revoked_at = \(bind: Clock.nowMillis()) WHERE user_id = \(bind: userID) AND revoked_at IS NULL"
        ).run()
        try await db.raw(
            """
            UPDATE sessions SET revoked_at = \(bind: Clock.nowMillis())
            WHERE user_id = \(bind: userID) AND revoked_at IS NULL AND id <> \(bind: keep ?? "")
            """
        ).run()
    }

    /// Deletes sessions that expired or were revoked more than a day ago.
    public func sweep(now: Int64) async throws {
        let cutoff = now - 86_400_000
        try await database.withConnection { db in
            try await db.raw("DELETE FROM sessions WHERE expires_at < \(bind: now) OR revoked_at < \(bind: cutoff)").run()
        }
    }
}
