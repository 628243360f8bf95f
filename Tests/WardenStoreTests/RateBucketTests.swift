import Foundation
import Logging
import Testing
import WardenStore

/// Rate limits in the store: one bucket however many servers draw from it, exact under a concurrent burst.
@Suite struct RateBucketTests {
    let logger = Logger(label: "test")

    @Test(arguments: Backend.enabled)
    func aBurstGetsExactlyTheCapacityThroughAndTheBucketRefillsEvenly(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        let database = store.database
        try await Migrator.migrate(database, logger: logger)
        let buckets = RateBucketRepository(database)
        let now: Int64 = 1_800_000_000_000
        // 20 per minute; 60 concurrent takes at one instant, as if from several servers.
        let results = try await withThrowingTaskGroup(of: Int64?.self) { group in
            for _ in 0..<60 {
                group.addTask { try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: now) }
            }
            return try await group.reduce(into: [Int64?]()) { $0.append($1) }
        }
        #expect(results.filter { $0 == nil }.count == 20)
        // Empty: the next token is 3 s away (60 s / 20).
        #expect(results.compactMap { $0 }.allSatisfy { $0 == 3000 })
        #expect(try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: now + 2_999) == 1)
        #expect(try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: now + 3_000) == nil)
        #expect(try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: now + 3_000) != nil)
        // A clock behind the bucket's (another server's) refills nothing.
        #expect(try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: now - 60_000) != nil)
        // A whole window later it is full again, never fuller.
        let later = now + 10 * 60_000
        var passed = 0
        for _ in 0..<25 where try await buckets.take(bucket: "root|svc", capacity: 20, windowMillis: 60_000, now: later) == nil {
            passed += 1
        }
        #expect(passed == 20)
        // Another bucket is apart; a limit too large for millisecond ticks still holds exactly.
        #expect(try await buckets.take(bucket: "other|svc", capacity: 20, windowMillis: 60_000, now: now) == nil)
        var huge = 0
        for _ in 0..<5 where try await buckets.take(bucket: "big|svc", capacity: 3, windowMillis: 31_536_000_000, now: now) == nil {
            huge += 1
        }
        #expect(huge == 3)
        let giant = try await buckets.take(bucket: "giant|svc", capacity: 1_000_000_000, windowMillis: 31_536_000_000, now: now)
        #expect(giant == nil)
        try await database.close()
    }
}
