import SQLKit

/// Token buckets in the store, so that every server sharing it draws from the same bucket. A bucket holds
/// up to `capacity` tokens and refills evenly over the window; it is counted in ticks (a millisecond, or a
/// second for limits whose figures would not fit in 64 bits that way, where the part of a second since the
/// last take is not refilled: the bucket errs towards fewer calls), one token being a window's worth of
/// ticks, so the refill is exact integer arithmetic. There is one bucket per agent-key family and service,
/// so they are as many as the store's keys allow.
public struct RateBucketRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Takes a token from `bucket`, or returns the milliseconds until one will be there. One statement: a
    /// new bucket starts full less the token taken; an existing one is refilled for the time since it
    /// was last touched and loses a token only when it holds one, atomically on either engine.
    public func take(bucket: String, capacity: Int, windowMillis: Int64, now: Int64) async throws -> Int64? {
        let cap = Int64(capacity)
        let (product, overflow) = cap.multipliedReportingOverflow(by: windowMillis)
        let tick: Int64 = overflow || product > 1 << 62 ? 1000 : 1
        let window = max(1, windowMillis / tick)
        let full = cap * window
        let elapsed: SQLQueryString = "((\(bind: now) - rate_buckets.updated_at) / \(bind: tick))"
        let filled: SQLQueryString = """
            CASE WHEN \(bind: now) <= rate_buckets.updated_at THEN rate_buckets.tokens
                WHEN \(elapsed) >= \(bind: window) THEN \(bind: full)
                WHEN rate_buckets.tokens + \(elapsed) * \(bind: cap) >= \(bind: full) THEN \(bind: full)
                ELSE rate_buckets.tokens + \(elapsed) * \(bind: cap) END
            """
        return try await database.withConnection { db in
            let taken = try await db.raw(
                """
                INSERT INTO rate_buckets (bucket, tokens, updated_at) VALUES (\(bind: bucket), \(bind: full - window), \(bind: now))
                ON CONFLICT (bucket) DO UPDATE SET
                    tokens = \(filled) - \(bind: window),
                    updated_at = CASE WHEN \(bind: now) > rate_buckets.updated_at THEN \(bind: now) ELSE rate_buckets.updated_at END
                WHERE \(filled) >= \(bind: window)
                RETURNING tokens
                """
            ).first()
            if taken != nil { return nil }
            guard let row = try await db.raw("SELECT tokens, updated_at FROM rate_buckets WHERE bucket = \(bind: bucket)").first() else {
                return windowMillis
            }
            let tokens = try row.decode(column: "tokens", as: Int64.self)
            let updated = try row.decode(column: "updated_at", as: Int64.self)
            let have = now <= updated ? tokens : min(full, tokens + min((now - updated) / tick, window) * cap)
            return max(1, (window - have + cap - 1) / cap) * tick
        }
    }
}
