import Foundation

/// Token buckets per (agent key, service): `capacity` calls, refilled evenly over `window`. A burst gets
/// at most `capacity` through; a refused call learns how long until the next token. In memory, per process.
public actor RateLimiter {
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
