import SQLKit

/// A decoy: a key that looks live but only ever raises an alarm. Only its keyed hash is stored.
public struct HoneyTokenRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var label: String
    /// What it looks like: `agent_key` (a `wdn_` key) or a venue's own key (`openai`, `anthropic`, `binance`).
    public var kind: String
    public var tokenHash: String
    public var createdAt: Int64
    public var lastUsedAt: Int64?

    public init(id: String, ownerID: String, label: String, kind: String, tokenHash: String, createdAt: Int64, lastUsedAt: Int64? = nil) {
        self.id = id
        self.ownerID = ownerID
        self.label = label
        self.kind = kind
        self.tokenHash = tokenHash
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

public struct HoneyTokenRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ t: HoneyTokenRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO honey_tokens (id, owner_id, label, kind, token_hash, created_at)
            VALUES (\(bind: t.id), \(bind: t.ownerID), \(bind: t.label), \(bind: t.kind), \(bind: t.tokenHash), \(bind: t.createdAt))
            """
        ).run()
    }

    public func find(hash: String) async throws -> HoneyTokenRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM honey_tokens WHERE token_hash = \(bind: hash)").first().map(Self.decode)
        }
    }

    public func list(ownerID: String) async throws -> [HoneyTokenRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM honey_tokens WHERE owner_id = \(bind: ownerID) ORDER BY created_at, id").all().map(Self.decode)
        }
    }

    /// Deletes the owner's token in the caller's transaction; false when they have none with that id.
    public func delete(id: String, ownerID: String, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("DELETE FROM honey_tokens WHERE id = \(bind: id) AND owner_id = \(bind: ownerID) RETURNING id").first() != nil
    }

    public func markUsed(id: String, at time: Int64, on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE honey_tokens SET last_used_at = \(bind: time) WHERE id = \(bind: id)").run()
    }

    static func decode(_ row: any SQLRow) throws -> HoneyTokenRecord {
        HoneyTokenRecord(
            id: try row.decode(column: "id", as: String.self), ownerID: try row.decode(column: "owner_id", as: String.self),
            label: try row.decode(column: "label", as: String.self), kind: try row.decode(column: "kind", as: String.self),
            tokenHash: try row.decode(column: "token_hash", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self))
    }
}
