import SQLKit

/// Nonces for venues that want each key's nonces to rise strictly (Kraken, Hyperliquid), kept in the store so
/// that they keep rising across restarts and across every server sharing it. A key is named by a hash of its
/// API key (Kraken) or by its wallet's public address (Hyperliquid), never by a secret.
public struct NonceRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// The next nonce of `key`: `atLeast` (the clock, in the venue's unit) or one above the last one handed out,
    /// whichever is larger. One statement, atomic on either engine, so no two calls get the same nonce.
    public func next(key: String, atLeast: Int64) async throws -> Int64 {
        let statement = { @Sendable (db: any SQLDatabase) async throws -> Int64 in
            let row = try await db.raw(
                """
                INSERT INTO venue_nonces (key_hash, nonce) VALUES (\(bind: key), \(bind: atLeast))
                ON CONFLICT (key_hash) DO UPDATE SET
                    nonce = CASE WHEN venue_nonces.nonce >= \(bind: atLeast) THEN venue_nonces.nonce + 1 ELSE \(bind: atLeast) END
                RETURNING nonce
                """
            ).first()
            guard let row else { throw StoreError.unusable("the nonce of a venue key could not be read") }
            return try row.decode(column: "nonce", as: Int64.self)
        }
        // SQLite: on the writer's own connection and thread (no pool hop, the statement prepared once), where
        // every write goes; PostgreSQL takes the one statement as it is.
        return try await database.dialect == .sqlite ? database.transaction(statement) : database.withConnection(statement)
    }
}
