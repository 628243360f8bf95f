import SQLKit

/// One freeze of the kill switch: every agent key in `scope` is stopped until a person lifts it.
public struct FreezeRecord: Sendable, Equatable {
    /// `all`, `user:<id>` (a user's keys) or `family:<root key id>` (a key and every key minted from it).
    public var scope: String
    public var reason: String
    /// Who set it: a user id, `cli` (the host's operator) or `honey:<token id>`.
    public var frozenBy: String
    public var frozenAt: Int64

    public init(scope: String, reason: String, frozenBy: String, frozenAt: Int64) {
        self.scope = scope
        self.reason = reason
        self.frozenBy = frozenBy
        self.frozenAt = frozenAt
    }
}

/// The `freezes` table. Writes move the store revision (a trigger), so every server's key cache drops
/// its entries and the next call of any key reads its standing again, frozen or not.
public struct FreezeRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Adds the freeze in the caller's transaction; false when that scope was already frozen (kept as it was).
    public func insert(_ record: FreezeRecord, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw(
            """
            INSERT INTO freezes (scope, reason, frozen_by, frozen_at)
            VALUES (\(bind: record.scope), \(bind: record.reason), \(bind: record.frozenBy), \(bind: record.frozenAt))
            ON CONFLICT (scope) DO NOTHING RETURNING scope
            """
        ).first() != nil
    }

    /// Removes the freeze of `scope` in the caller's transaction, returning it (nil when there was none).
    public func delete(scope: String, on db: any SQLDatabase) async throws -> FreezeRecord? {
        try await db.raw("DELETE FROM freezes WHERE scope = \(bind: scope) RETURNING *").first().map(Self.decode)
    }

    /// The freeze of `scope` becomes `frozenBy`'s, with its reason (the time it started stays).
    public func take(scope: String, by frozenBy: String, reason: String, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE freezes SET frozen_by = \(bind: frozenBy), reason = \(bind: reason) WHERE scope = \(bind: scope)").run()
    }

    public func find(scope: String, on db: any SQLDatabase) async throws -> FreezeRecord? {
        try await db.raw("SELECT * FROM freezes WHERE scope = \(bind: scope)").first().map(Self.decode)
    }

    public func all() async throws -> [FreezeRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM freezes ORDER BY frozen_at, scope").all().map(Self.decode)
        }
    }

    static func decode(_ row: any SQLRow) throws -> FreezeRecord {
        FreezeRecord(
            scope: try row.decode(column: "scope", as: String.self), reason: try row.decode(column: "reason", as: String.self),
            frozenBy: try row.decode(column: "frozen_by", as: String.self), frozenAt: try row.decode(column: "frozen_at", as: Int64.self))
    }

    /// A key's `frozen` column: 1 or more when a freeze covers it (all keys, its owner's, or its family's). Reads `k`.
    static let frozenColumn: SQLQueryString = """
        (SELECT COUNT(*) FROM freezes f WHERE f.scope = 'all' OR f.scope = 'user:' || k.owner_id
            OR f.scope = 'family:' || k.root_id) AS frozen
        """
}
