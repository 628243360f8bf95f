import Foundation
import SQLKit

/// The vault's one row: how the KEK is obtained and the sentinel that recognises it.
public struct VaultRecord: Sendable, Equatable {
    public var vaultID: String
    /// `master_key` or `passphrase`: what unsealed the vault on first boot.
    public var kekSource: String
    public var kekVersion: Int
    public var kdfSalt: [UInt8]
    public var kdfMemoryKiB: Int64
    public var kdfIterations: Int64
    public var kdfParallelism: Int64
    public var verifier: [UInt8]
    public var createdAt: Int64

    public init(
        vaultID: String, kekSource: String, kekVersion: Int, kdfSalt: [UInt8], kdfMemoryKiB: Int64,
        kdfIterations: Int64, kdfParallelism: Int64, verifier: [UInt8], createdAt: Int64
    ) {
        self.vaultID = vaultID
        self.kekSource = kekSource
        self.kekVersion = kekVersion
        self.kdfSalt = kdfSalt
        self.kdfMemoryKiB = kdfMemoryKiB
        self.kdfIterations = kdfIterations
        self.kdfParallelism = kdfParallelism
        self.verifier = verifier
        self.createdAt = createdAt
    }
}

/// A sealed value wherever it is stored, with what its identity is made of.
public struct SealedValue: Sendable {
    public enum Place: Sendable { case credential, server }
    public var place: Place
    /// The credential's id or the server secret's name.
    public var id: String
    public var owner: String
    public var venue: String
    public var columns: SealedColumns
}

public struct VaultRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func load() async throws -> VaultRecord? {
        try await database.withConnection { db in try await Self.load(on: db) }
    }

    /// The record as the caller's transaction sees it; locked until it ends when `locking` is PostgreSQL
    /// (SQLite's write transaction already holds the whole file).
    public static func load(on db: any SQLDatabase, locking: SQLDialectKind? = nil) async throws -> VaultRecord? {
        let lock: SQLQueryString = locking == .postgres ? " FOR UPDATE" : ""
        guard let row = try await db.raw("SELECT * FROM vault WHERE id = 1" + lock).first() else { return nil }
        return VaultRecord(
            vaultID: try row.decode(column: "vault_id", as: String.self),
            kekSource: try row.decode(column: "kek_source", as: String.self),
            kekVersion: try row.decode(column: "kek_version", as: Int.self),
            kdfSalt: Array(try row.decode(column: "kdf_salt", as: Data.self)),
            kdfMemoryKiB: try row.decode(column: "kdf_memory_kib", as: Int64.self),
            kdfIterations: try row.decode(column: "kdf_iterations", as: Int64.self),
            kdfParallelism: try row.decode(column: "kdf_parallelism", as: Int64.self),
            verifier: Array(try row.decode(column: "verifier", as: Data.self)),
            createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    /// Records a new KEK: its source, version, derivation parameters and sentinel.
    public static func replace(_ record: VaultRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            UPDATE vault SET kek_source = \(bind: record.kekSource), kek_version = \(bind: record.kekVersion),
                kdf_salt = \(bind: Data(record.kdfSalt)), kdf_memory_kib = \(bind: record.kdfMemoryKiB),
                kdf_iterations = \(bind: record.kdfIterations), kdf_parallelism = \(bind: record.kdfParallelism),
                verifier = \(bind: Data(record.verifier))
            WHERE id = 1
            """
        ).run()
    }

    /// Every sealed value in the store, for a KEK rotation.
    public static func sealedValues(on db: any SQLDatabase) async throws -> [SealedValue] {
        let credentials = try await db.raw("SELECT id, owner_id, venue, nonce, ciphertext, wrapped_dek, kek_version FROM credentials")
            .all().map { row in
                SealedValue(
                    place: .credential, id: try row.decode(column: "id", as: String.self),
                    owner: try row.decode(column: "owner_id", as: String.self), venue: try row.decode(column: "venue", as: String.self),
                    columns: try SealedColumns.decode(row))
            }
        let server = try await db.raw("SELECT name, nonce, ciphertext, wrapped_dek, kek_version FROM server_secrets").all().map { row in
            SealedValue(
                place: .server, id: try row.decode(column: "name", as: String.self), owner: "", venue: "",
                columns: try SealedColumns.decode(row))
        }
        return credentials + server
    }

    /// Stores a value's re-wrapped DEK and its KEK version; the body is not touched.
    public static func updateWrapping(_ value: SealedValue, on db: any SQLDatabase) async throws {
        let table: SQLQueryString = value.place == .credential ? "credentials SET" : "server_secrets SET"
        let key: SQLQueryString = value.place == .credential ? " WHERE id = " : " WHERE name = "
        try await db.raw(
            "UPDATE " + table + " wrapped_dek = \(bind: Data(value.columns.wrappedDEK)), kek_version = \(bind: value.columns.kekVersion)"
                + key + "\(bind: value.id)"
        ).run()
    }

    /// Stores the first boot's record. Returns false if another process initialised the vault first.
    /// Whether any account exists (a store with accounts always has its vault record).
    public func holdsAccounts() async throws -> Bool {
        try await database.withConnection { db in
            try await db.raw("SELECT id FROM users LIMIT 1").first() != nil
        }
    }

    public func insertIfAbsent(_ record: VaultRecord) async throws -> Bool {
        try await database.transaction { db in
            if try await db.raw("SELECT id FROM vault WHERE id = 1").first() != nil { return false }
            try await db.raw(
                """
                INSERT INTO vault (id, vault_id, kek_source, kek_version, kdf_salt, kdf_memory_kib,
                    kdf_iterations, kdf_parallelism, verifier, created_at)
                VALUES (1, \(bind: record.vaultID), \(bind: record.kekSource), \(bind: record.kekVersion),
                    \(bind: Data(record.kdfSalt)), \(bind: record.kdfMemoryKiB), \(bind: record.kdfIterations),
                    \(bind: record.kdfParallelism), \(bind: Data(record.verifier)), \(bind: record.createdAt))
                """
            ).run()
            return true
        }
    }
}
