import SQLKit

/// A credential shared with another user at `read` or `trade` level.
public struct GrantRecord: Sendable, Equatable {
    public var id: String
    public var credentialID: String
    public var granteeID: String
    public var access: Access
    public var createdAt: Int64

    public init(id: String, credentialID: String, granteeID: String, access: Access, createdAt: Int64) {
        self.id = id
        self.credentialID = credentialID
        self.granteeID = granteeID
        self.access = access
        self.createdAt = createdAt
    }
}

public struct GrantRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ g: GrantRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO grants (id, credential_id, grantee_id, access, created_at)
            VALUES (\(bind: g.id), \(bind: g.credentialID), \(bind: g.granteeID), \(bind: g.access.rawValue), \(bind: g.createdAt))
            """
        ).run()
    }

    public func list(credentialID: String) async throws -> [GrantRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM grants WHERE credential_id = \(bind: credentialID) ORDER BY created_at, id")
                .all().map(Self.decode)
        }
    }

    public func find(credentialID: String, granteeID: String) async throws -> GrantRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM grants WHERE credential_id = \(bind: credentialID) AND grantee_id = \(bind: granteeID)")
                .first().map(Self.decode)
        }
    }

    public func delete(id: String, credentialID: String, on db: any SQLDatabase) async throws -> Bool {
        guard try await db.raw("SELECT id FROM grants WHERE id = \(bind: id) AND credential_id = \(bind: credentialID)").first() != nil
        else { return false }
        try await db.raw("DELETE FROM grants WHERE id = \(bind: id)").run()
        return true
    }

    static func decode(_ row: any SQLRow) throws -> GrantRecord {
        GrantRecord(
            id: try row.decode(column: "id", as: String.self),
            credentialID: try row.decode(column: "credential_id", as: String.self),
            granteeID: try row.decode(column: "grantee_id", as: String.self),
            access: Access(stored: try row.decode(column: "access", as: String.self)),
            createdAt: try row.decode(column: "created_at", as: Int64.self))
    }
}
