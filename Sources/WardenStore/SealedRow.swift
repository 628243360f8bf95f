import Foundation
import SQLKit

/// The envelope columns shared by every table that stores a secret.
public struct SealedColumns: Sendable, Equatable {
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]
    public var wrappedDEK: [UInt8]
    public var kekVersion: Int

    public init(nonce: [UInt8], ciphertext: [UInt8], wrappedDEK: [UInt8], kekVersion: Int) {
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.wrappedDEK = wrappedDEK
        self.kekVersion = kekVersion
    }

    static func decode(_ row: any SQLRow) throws -> SealedColumns {
        SealedColumns(
            nonce: Array(try row.decode(column: "nonce", as: Data.self)),
            ciphertext: Array(try row.decode(column: "ciphertext", as: Data.self)),
            wrappedDEK: Array(try row.decode(column: "wrapped_dek", as: Data.self)),
            kekVersion: try row.decode(column: "kek_version", as: Int.self))
    }
}

/// Secrets of the server itself (the JWT signing key), sealed like any other secret.
public struct ServerSecretRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Returns the stored value: `sealed` if this call stored it, or the one another process stored first.
    public func findOrInsert(name: String, sealed: SealedColumns) async throws -> SealedColumns {
        try await database.transaction { db in
            if let existing = try await db.raw("SELECT * FROM server_secrets WHERE name = \(bind: name)").first() {
                return try SealedColumns.decode(existing)
            }
            try await db.raw(
                """
                INSERT INTO server_secrets (name, nonce, ciphertext, wrapped_dek, kek_version, created_at)
                VALUES (\(bind: name), \(bind: Data(sealed.nonce)), \(bind: Data(sealed.ciphertext)),
                    \(bind: Data(sealed.wrappedDEK)), \(bind: sealed.kekVersion), \(bind: Clock.nowMillis()))
                """
            ).run()
            return sealed
        }
    }

    public func find(name: String) async throws -> SealedColumns? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM server_secrets WHERE name = \(bind: name)").first().map(SealedColumns.decode)
        }
    }

    /// Stores `sealed` under `name` in the caller's transaction, replacing any value there.
    public static func put(name: String, sealed: SealedColumns, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO server_secrets (name, nonce, ciphertext, wrapped_dek, kek_version, created_at)
            VALUES (\(bind: name), \(bind: Data(sealed.nonce)), \(bind: Data(sealed.ciphertext)),
                \(bind: Data(sealed.wrappedDEK)), \(bind: sealed.kekVersion), \(bind: Clock.nowMillis()))
            ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                wrapped_dek = excluded.wrapped_dek, kek_version = excluded.kek_version
            """
        ).run()
    }

    /// Every value whose name starts with `prefix`, by name.
    public func all(prefix: String) async throws -> [(name: String, sealed: SealedColumns)] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM server_secrets WHERE name LIKE \(bind: prefix + "%") ORDER BY name").all().map { row in
                (try row.decode(column: "name", as: String.self), try SealedColumns.decode(row))
            }
        }
    }
}
