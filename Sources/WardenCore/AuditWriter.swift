import Foundation
import Logging
import SQLKit
import Synchronization
import WardenStore

/// The gateway's audit rows, group-committed: every row queued while a commit runs goes into the next
/// commit, so load costs one transaction per batch rather than one per call.
///
/// A caller either waits until its row is durable (`append`: calls that act on a venue account, before
/// they are sent) or only queues it (`record`: reads, LLM calls and refusals, as they end), so such a
/// call never waits for the disk. `commit` also runs the caller's own writes in the batch's transaction
/// (a live order's reservation), so they and the row they make commit together, many to one sync.
/// When a commit fails, waiting callers are told (their calls are not made), queued rows stay in order
/// at the head of the queue and are retried, and `healthy` turns false until a commit succeeds again:
/// the gateway makes no call it could not record meanwhile. A store that is merely slow counts as
/// failing too: once the oldest row not yet committed is older than `maxLag`, or more than `admitDepth`
/// rows wait, `healthy` is false until the store catches up.
///
/// Refusals made while the writer is unhealthy are counted rather than queued (a flood of them would
/// fill memory), and the count goes into the chain as one `audit.gap` row with the first commit that
/// succeeds, with any rows dropped because the queue reached its hard bound.
public final class AuditWriter: Sendable {
    /// Writes made in a batch's transaction; the row they return (if any) joins the batch.
    public typealias Work = @Sendable (any SQLDatabase) async throws -> AuditEntry?

    fileprivate struct Pending: Sendable {
        var entry: AuditEntry
        var work: Work?
        var ticket: UInt64
        var waiter: CheckedContinuation<Void, any Error>?
        /// When it was queued (monotonic nanoseconds).
        var since: UInt64
    }

    fileprivate struct State: Sendable {
        var queue: [Pending] = []
        var draining = false
        var failure: String?
        var nextTicket: UInt64 = 1
        /// Every row with a ticket up to this one is committed, or was dropped with its caller told.
        var settledThrough: UInt64 = 0
        var flushers: [(ticket: UInt64, waiter: CheckedContinuation<Void, Never>)] = []
        var lastAt: Int64 = 0
        var dropped = 0
        /// Refusals not queued because the writer was unhealthy, since `gapSince` (wall milliseconds).
        var unrecorded = 0
        var gapSince: Int64?
        /// When the oldest row of the batch being committed was queued, and how many rows it holds.
        var inFlightSince: UInt64?
        var inFlight = 0
        /// Queued rows whose caller waits for them.
        var waiting = 0
        /// The drain's wait for more rows; a caller who waits for its row cuts it short.
        var gathering: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let log: AuditLog
    private let database: Database
    private let logger: Logger
    static let maxBatch = 1024
    /// The queue's hard bound: rows past it are dropped and counted (in the log and the next `audit.gap` row).
    /// The gateway stops admitting calls long before (`admitDepth`, `maxLag`), so only calls already
    /// under way when the store stalled can add rows; it takes tens of thousands of them to reach it.
    static let maxQueue = 100_000
    /// More rows waiting than this and the gateway admits no new call.
    static let admitDepth = 10_000
    /// How old the oldest uncommitted row may be before the gateway admits no new call.
    public static let maxLag = Duration.seconds(1)
    static let retryDelay = Duration.milliseconds(250)
    /// How long rows nobody waits for gather before a commit, so light load does not cost a commit per
    /// few rows (each costs five store round trips and a sync to disk).
    static let gatherDelay = Duration.milliseconds(10)

    public init(log: AuditLog, database: Database, logger: Logger = Logger(label: "warden.audit")) {
        self.log = log
        self.database = database
        self.logger = logger
    }

    /// Whether the last commit succeeded and the store keeps up: no uncommitted row older than
    /// `maxLag`, no more than `admitDepth` waiting.
    public var healthy: Bool {
        let now = Self.now()
        return state.withLock { $0.admits(now: now) }
    }

    /// The writer's state, for health checks.
    public struct Status: Sendable {
        public let healthy: Bool
        /// Rows not yet committed: waiting, or in the commit under way.
        public let queued: Int
        /// How long the oldest uncommitted row has waited, in milliseconds.
        public let lagMillis: Int
        public let failure: String?
    }

    public var status: Status {
        let now = Self.now()
        return state.withLock { s in
            Status(
                healthy: s.admits(now: now), queued: s.queue.count + s.inFlight, lagMillis: Int(s.lag(now: now) / 1_000_000),
                failure: s.failure)
        }
    }

    /// Rows queued and not yet committed.
    public var depth: Int { state.withLock { $0.queue.count } }

    /// Counts a refusal made because the writer is unhealthy instead of queueing its row.
    public func countUnrecorded() {
        let now = Clock.nowMillis()
        state.withLock { s in
            if s.gapSince == nil { s.gapSince = now }
            s.unrecorded += 1
        }
    }

    static let maxLagNanos = maxLag.nanoseconds

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Queues a row; it is committed with the next batch. Never waits.
    public func record(_ entry: AuditEntry) {
        let start = state.withLock { s -> Bool in
            guard s.queue.count < Self.maxQueue else {
                if s.gapSince == nil { s.gapSince = Clock.nowMillis() }
                s.dropped += 1
                return false
            }
            s.push(entry, work: nil, waiter: nil)
            return s.claimDrain()
        }
        if start { startDrain() }
    }

    /// Queues a row and returns once it is committed; throws if it could not be.
    public func append(_ entry: AuditEntry) async throws {
        try await enqueue(entry, work: nil)
    }

    /// Runs `work` in the next batch's transaction, behind a savepoint, and appends the row it returns
    /// with the batch: its writes and its row are durable together once this returns, or neither is
    /// kept. Throws `work`'s own error (the rest of the batch still commits) or the commit's.
    ///
    /// On PostgreSQL the work and its row commit in a transaction of their own: work takes row locks
    /// (an owner's trading day), and two servers' batches taking several owners' locks in different
    /// orders would deadlock. SQLite has one writer at a time and no row locks.
    public func commit<T: Sendable>(_ work: @escaping @Sendable (any SQLDatabase) async throws -> (T, AuditEntry?)) async throws -> T {
        if database.dialect == .postgres {
            return try await database.transaction { [log] db in
                let (value, entry) = try await work(db)
                if let entry { try await log.append(entry, on: db) }
                return value
            }
        }
        let outcome = Mutex<T?>(nil)
        // The queued entry only holds the row's place and time; the work makes the row itself.
        try await enqueue(
            AuditEntry(actor: nil, owner: nil, action: ""),
            work: { db in
                let (value, entry) = try await work(db)
                outcome.withLock { $0 = value }
                return entry
            })
        return outcome.withLock { $0! }
    }

    private func enqueue(_ entry: AuditEntry, work: Work?) async throws {
        try await withCheckedThrowingContinuation { (waiter: CheckedContinuation<Void, any Error>) in
            let start = state.withLock { s -> Bool in
                s.push(entry, work: work, waiter: waiter)
                return s.claimDrain()
            }
            if start { startDrain() }
        }
    }

    /// Returns once every row queued before the call is committed (or at once while commits fail),
    /// so a reader of the audit sees the calls that came before its request.
    public func flush() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                let target = s.nextTicket - 1
                guard target > s.settledThrough, s.failure == nil else { return true }
                s.flushers.append((target, waiter))
                s.gathering?.cancel()
                return false
            }
            if ready { waiter.resume() }
        }
    }

    /// For a stop: waits until every queued row is committed, or `limit` has passed (the store is failing);
    /// returns how many rows were left unwritten.
    public func flush(waitingAtMost limit: Duration) async -> Int {
        let deadline = ContinuousClock.now + limit
        while true {
            await flush()
            let left = state.withLock { $0.queue.count + $0.inFlight }
            if left == 0 || ContinuousClock.now >= deadline { return left }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The drain runs where the store's write transactions run (on SQLite, the writer's own thread), so a
    /// batch costs no hop there and back.
    private func startDrain() {
        Task(executorPreference: database.writeExecutor) { await self.drain() }
    }

    private func drain() async {
        while true {
            await gather()
            guard let batch = state.withLock({ $0.takeBatch(Self.maxBatch) }) else { return }
            let log = self.log
            do {
                let refused = try await database.transaction { db in try await Self.write(batch, log: log, on: db) }
                for pending in batch {
                    if let error = refused[pending.ticket] { pending.waiter?.resume(throwing: error) } else { pending.waiter?.resume() }
                }
                let (flushers, gap) = state.withLock { s -> ([CheckedContinuation<Void, Never>], (Int, Int)?) in
                    // The store keeps up again: what was not recorded meanwhile is said in the chain, in order.
                    var gap: (Int, Int)?
                    if let since = s.gapSince {
                        gap = (s.unrecorded, s.dropped)
                        s.push(
                            .gap(since: since, until: Clock.nowMillis(), refused: s.unrecorded, dropped: s.dropped), work: nil, waiter: nil)
                        (s.gapSince, s.unrecorded, s.dropped) = (nil, 0, 0)
                    }
                    return (s.settle(through: batch.last?.ticket ?? s.settledThrough, failure: nil), gap)
                }
                resumeFlushers(flushers)
                if let (refused, dropped) = gap {
                    logger.error(
                        "the audit store kept up again; calls refused meanwhile were counted, not recorded one by one",
                        metadata: ["refused": "\(refused)", "dropped": "\(dropped)"])
                }
            } catch {
                // Waiting callers refuse their calls; rows of calls already made go back to the front.
                let kept = batch.filter { $0.waiter == nil }
                for pending in batch { pending.waiter?.resume(throwing: error) }
                let (flushers, queued) = state.withLock { s in
                    s.queue.insert(contentsOf: kept, at: 0)
                    let through = kept.first.map { $0.ticket - 1 } ?? batch.last?.ticket ?? s.settledThrough
                    return (s.settle(through: through, failure: String(describing: error)), s.queue.count)
                }
                resumeFlushers(flushers)
                logger.error(
                    "audit rows could not be committed; the gateway refuses calls until they are",
                    metadata: ["queued": "\(queued)", "error": "\(error)"])
                // A closed store takes nothing more: the probe stops (a stop has already flushed what it could).
                if database.isClosed, queued == 0 { state.withLock { $0.draining = false }; return }
                try? await Task.sleep(for: Self.retryDelay)
            }
        }
    }

    /// Runs the batch's work, each behind a savepoint so one that fails is undone alone, then appends the
    /// rows. Returns the failed work's errors by ticket.
    private static func write(_ batch: [Pending], log: AuditLog, on db: any SQLDatabase) async throws -> [UInt64: any Error] {
        var entries: [AuditEntry] = []
        entries.reserveCapacity(batch.count)
        var refused: [UInt64: any Error] = [:]
        for pending in batch {
            guard let work = pending.work else { entries.append(pending.entry); continue }
            try await db.raw("SAVEPOINT work").run()
            do {
                if var entry = try await work(db) {
                    entry.at = pending.entry.at  // its place in the queue, so times never run backwards along the chain
                    entries.append(entry)
                }
                try await db.raw("RELEASE work").run()
            } catch {
                try await db.raw("ROLLBACK TO work").run()
                try await db.raw("RELEASE work").run()
                refused[pending.ticket] = error
            }
        }
        try await log.append(entries, on: db)
        return refused
    }

    /// While nobody waits for a row and the batch is not full, lets rows gather for `gatherDelay`.
    private func gather() async {
        let nap = Task { _ = try? await Task.sleep(for: Self.gatherDelay) }
        let needed = state.withLock { s in
            guard s.waiting == 0 && s.queue.count < Self.maxBatch else { return false }
            s.gathering = nap
            return true
        }
        if !needed { nap.cancel() }
        await nap.value
        state.withLock { $0.gathering = nil }
    }

    private func resumeFlushers(_ flushers: [CheckedContinuation<Void, Never>]) {
        for flusher in flushers { flusher.resume() }
    }
}

extension AuditWriter.State {
    mutating func push(_ entry: AuditEntry, work: AuditWriter.Work?, waiter: CheckedContinuation<Void, any Error>?) {
        var entry = entry
        // Stamped in queue order, so times never run backwards along the chain.
        lastAt = max(Clock.nowMillis(), lastAt)
        entry.at = lastAt
        queue.append(.init(entry: entry, work: work, ticket: nextTicket, waiter: waiter, since: AuditWriter.now()))
        nextTicket += 1
        if waiter != nil {
            waiting += 1
            gathering?.cancel()
        }
    }

    /// True when the caller must start the drain task.
    mutating func claimDrain() -> Bool {
        guard !draining else { return false }
        draining = true
        return true
    }

    /// Whether the gateway may admit a call: the last commit succeeded and the store keeps up.
    func admits(now: UInt64) -> Bool {
        failure == nil && queue.count <= AuditWriter.admitDepth && lag(now: now) <= AuditWriter.maxLagNanos
    }

    /// How long the oldest uncommitted row (in the batch being committed or in the queue) has waited.
    func lag(now: UInt64) -> UInt64 {
        guard let oldest = inFlightSince ?? queue.first?.since else { return 0 }
        return now > oldest ? now - oldest : 0
    }

    mutating func takeBatch(_ limit: Int) -> [AuditWriter.Pending]? {
        // After a failed commit with nothing left to write (its rows' callers were told), an empty commit
        // probes the store: the gateway opens again only once one succeeds.
        if queue.isEmpty, failure != nil { return [] }
        guard !queue.isEmpty else { draining = false; inFlightSince = nil; inFlight = 0; return nil }
        // Handing the whole queue over moves it; trimming a shared copy would copy every row.
        var batch: [AuditWriter.Pending] = []
        if queue.count <= limit {
            swap(&batch, &queue)
        } else {
            batch = Array(queue.prefix(limit))
            queue.removeFirst(limit)
        }
        waiting -= batch.count(where: { $0.waiter != nil })
        inFlightSince = batch.first?.since
        inFlight = batch.count
        return batch
    }

    /// Records progress; returns the flushers it released (all of them while commits fail).
    mutating func settle(through ticket: UInt64, failure: String?) -> [CheckedContinuation<Void, Never>] {
        inFlightSince = nil
        inFlight = 0
        settledThrough = max(settledThrough, ticket)
        self.failure = failure
        let released = flushers.filter { failure != nil || $0.ticket <= settledThrough }
        flushers.removeAll { failure != nil || $0.ticket <= settledThrough }
        return released.map(\.waiter)
    }
}

extension AuditEntry {
    /// The row that says what the chain does not hold: refusals counted while the store could not keep
    /// up, and rows dropped at the queue's hard bound, between two times (milliseconds).
    static func gap(since: Int64, until: Int64, refused: Int, dropped: Int) -> AuditEntry {
        AuditEntry(
            actor: nil, owner: nil, action: "audit.gap", target: "gateway", outcome: .recorded,
            detail: [
                "from": String(since), "to": String(until), "refused_unrecorded": String(refused),
                "rows_dropped": String(dropped), "alarm": AlarmEvent.auditStoreRecovered.rawValue,
            ])
    }
}

extension Duration {
    /// A non-negative duration in whole nanoseconds, for comparisons against the monotonic clock.
    var nanoseconds: UInt64 { UInt64(components.seconds) * 1_000_000_000 + UInt64(components.attoseconds / 1_000_000_000) }
}
