import Foundation
import SQLKit

/// A stored venue credential: metadata in the clear, the secret only as an envelope.
public struct CredentialRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var venue: String
    public var label: String
    public var fingerprint: String
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]
    public var wrappedDEK: [UInt8]
    public var kekVersion: Int
    public var createdAt: Int64
    public var updatedAt: Int64
    public var lastUsedAt: Int64?

    public init(
        id: String, ownerID: String, venue: String, label: String, fingerprint: String,
        nonce: [UInt8], ciphertext: [UInt8], wrappedDEK: [UInt8], kekVersion: Int,
        createdAt: Int64, updatedAt: Int64, lastUsedAt: Int64? = nil
    ) {
        self.id = id
        self.ownerID = ownerID
        self.venue = venue
        self.label = label
        self.fingerprint = fingerprint
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.wrappedDEK = wrappedDEK
        self.kekVersion = kekVersion
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.lastUsedAt = lastUsedAt
    }
}

public struct CredentialRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ c: CredentialRecord) async throws {
        try await database.withConnection { db in try await insert(c, on: db) }
    }

    public func find(id: String) async throws -> CredentialRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM credentials WHERE id = \(bind: id)").first().map(Self.decode)
        }
    }

    public func list(ownerID: String) async throws -> [CredentialRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM credentials WHERE owner_id = \(bind: ownerID) ORDER BY created_at, id")
                .all().map(Self.decode)
        }
    }

    /// Returns whether a row was deleted.
    public func delete(id: String) async throws -> Bool {
        try await database.transaction { db in
            guard try await db.raw("SELECT id FROM credentials WHERE id = \(bind: id)").first() != nil else { return false }
            try await db.raw("DELETE FROM credentials WHERE id = \(bind: id)").run()
            return true
        }
    }

    static func decode(_ row: any SQLRow) throws -> CredentialRecord {
        CredentialRecord(
            id: try row.decode(column: "id", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            venue: try row.decode(column: "venue", as: String.self),
            label: try row.decode(column: "label", as: String.self),
            fingerprint: try row.decode(column: "fingerprint", as: String.self),
            nonce: Array(try row.decode(column: "nonce", as: Data.self)),
            ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self)),
            wrappedDEK: Array(try row.decode(column: "wrapped_dek", as: Data.self)),
            kekVersion: try row.decode(column: "kek_version", as: Int.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self))
    }
}

extension CredentialRepository {
    public func insert(_ c: CredentialRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO credentials (id, owner_id, venue, label, fingerprint, nonce, ciphertext, wrapped_dek,
                kek_version, created_at, updated_at, last_used_at)
            VALUES (\(bind: c.id), \(bind: c.ownerID), \(bind: c.venue), \(bind: c.label), \(bind: c.fingerprint),
                \(bind: Data(c.nonce)), \(bind: Data(c.ciphertext)), \(bind: Data(c.wrappedDEK)), \(bind: c.kekVersion),
                \(bind: c.createdAt), \(bind: c.updatedAt), \(bind: c.lastUsedAt))
            """
        ).run()
    }

    /// Replaces the label and/or the sealed secret (rotation).
    public func update(_ c: CredentialRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            UPDATE credentials SET label = \(bind: c.label), fingerprint = \(bind: c.fingerprint),
                nonce = \(bind: Data(c.nonce)), ciphertext = \(bind: Data(c.ciphertext)),
                wrapped_dek = \(bind: Data(c.wrappedDEK)), kek_version = \(bind: c.kekVersion),
                updated_at = \(bind: c.updatedAt)
            WHERE id = \(bind: c.id)
            """
        ).run()
    }

    public func delete(id: String, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM credentials WHERE id = \(bind: id)").run()
    }

    /// Credentials shared with `userID`, with the grant's access level.
    public func listGranted(to userID: String) async throws -> [(CredentialRecord, Access)] {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT c.*, g.access AS grant_access FROM credentials c JOIN grants g ON g.credential_id = c.id
                WHERE g.grantee_id = \(bind: userID) ORDER BY c.created_at, c.id
                """
            ).all().map { (try Self.decode($0), Access(stored: try $0.decode(column: "grant_access", as: String.self))) }
        }
    }
}
