import Foundation
import WardenStore

/// Group commit for the gateway's audit rows: callers wait until their row is durable, and every row
/// queued while a commit runs goes into the next commit together, so load costs one transaction per
/// batch instead of one per request.
public actor AuditWriter {
    private let log: AuditLog
    private let database: Database
    private var queue: [(AuditEntry, CheckedContinuation<Void, any Error>)] = []
    private var flushing = false
    public private(set) var depth = 0
    static let maxBatch = 512

    public init(log: AuditLog, database: Database) {
        self.log = log
        self.database = database
    }

    /// Returns once the row is committed; throws if it could not be written.
    public func append(_ entry: AuditEntry) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            queue.append((entry, continuation))
            depth = queue.count
            if !flushing {
                flushing = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(Self.maxBatch))
            queue.removeFirst(batch.count)
            depth = queue.count
            let entries = batch.map(\.0)
            let log = self.log
            do {
                try await database.transaction { db in try await log.append(entries, on: db) }
                for (_, waiter) in batch { waiter.resume() }
            } catch {
                for (_, waiter) in batch { waiter.resume(throwing: error) }
            }
        }
        flushing = false
    }
}
