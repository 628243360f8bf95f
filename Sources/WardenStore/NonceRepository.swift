import SQLKit

/// Nonces for venues that want each API key's nonces to rise strictly (Kraken), kept in the store so that
/// they keep rising across restarts and across every server sharing it. A key is named by a hash of its
/// API key, never the key itself.
public struct NonceRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// The next nonce of `key`: `atLeast` (the clock, in microseconds) or one above the last one handed out,
    /// whichever is larger. One statement, atomic on either engine, so no two calls get the same nonce.
    public func next(key: String, atLeast: Int64) async throws -> Int64 {
        try await database.withConnection { db in
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
    }
}
