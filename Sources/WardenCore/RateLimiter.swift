import Foundation
import WardenStore

/// Where the gateway's rate limits are counted: `capacity` calls per `window` for each bucket (an agent
/// key's family on a service), a burst getting at most `capacity` through.
public protocol RateBuckets: Sendable {
    /// Takes a token, or returns the seconds to wait for one; throws when it cannot tell (the call is refused).
    func take(bucket: String, capacity: Int, window: TimeInterval) async throws -> Int?
}

/// The buckets in the store, shared by every server on it (PostgreSQL: see `Gateway.rateBuckets`).
public struct StoreRateBuckets: RateBuckets {
    let repository: RateBucketRepository

    public init(database: Database) { repository = RateBucketRepository(database) }

    public func take(bucket: String, capacity: Int, window: TimeInterval) async throws -> Int? {
        let wait = try await repository.take(
            bucket: bucket, capacity: capacity, windowMillis: Int64(window * 1000), now: Clock.nowMillis())
        return wait.map { Int(($0 + 999) / 1000) }
    }
}

/// Token buckets in memory, per process: `capacity` calls, refilled evenly over `window`; a refused call
/// learns how long until the next token.
public actor RateLimiter: RateBuckets {
    public func take(bucket: String, capacity: Int, window: TimeInterval) -> Int? {
        take(key: bucket, capacity: capacity, window: window)
    }

    private struct Bucket { var tokens: Double; var updated: Date }
    private var buckets: [String: Bucket] = [:]

    public init() {}

    /// Takes a token, or returns the seconds to wait for one.
    public func take(key: String, capacity: Int, window: TimeInterval, now: Date = Date()) -> Int? {
        let rate = Double(capacity) / window
        var bucket = buckets[key] ?? Bucket(tokens: Double(capacity), updated: now)
        bucket.tokens = min(Double(capacity), bucket.tokens + now.timeIntervalSince(bucket.updated) * rate)
        bucket.updated = now
        defer { buckets[key] = bucket }
        if bucket.tokens >= 1 {
            bucket.tokens -= 1
            return nil
        }
        return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up)))
    }
}
