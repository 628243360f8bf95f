import Dispatch
import Synchronization
import WardenStore

/// Circuit breakers per key family (a key and every key minted from it): orders per minute, refused calls
/// per minute, LLM spend per hour and order notional per hour, each against its owner's profile. Past one,
/// the family is frozen (the kill switch, scope `family:<root>`), the `breaker_tripped` alarm is raised,
/// and a person must lift the freeze. Counts are this server's, in twelve buckets per window (a window of
/// 55 to 60 s, or 55 to 60 minutes): a breaker is a tripwire for bursts; the exact limits are the caps and
/// budgets, held in the store. Several servers each count their own share.
public final class Breakers: Sendable {
    public enum Metric: String, Sendable, CaseIterable {
        case orders = "orders_per_minute", refusals = "refusals_per_minute"
        case llmSpend = "llm_usd_per_hour", notional = "notional_usd_per_hour"

        var windowNanos: UInt64 { self == .orders || self == .refusals ? 60_000_000_000 : 3_600_000_000_000 }

        /// The owner's limit in the metric's unit (micro-dollars for money), or nil when it is off.
        func limit(_ b: BreakerLimits) -> Int64? {
            switch self {
            case .orders: b.ordersPerMinute.map(Int64.init)
            case .refusals: b.refusalsPerMinute.map(Int64.init)
            case .llmSpend: b.llmUSDPerHour?.micros
            case .notional: b.notionalUSDPerHour?.micros
            }
        }

        func describe(_ limit: Int64) -> String {
            switch self {
            case .orders: "more than \(limit) orders in a minute"
            case .refusals: "more than \(limit) refused calls in a minute"
            case .llmSpend: "more than \(USD(micros: limit) ?? .zero) USD of LLM spend in an hour"
            case .notional: "more than \(USD(micros: limit) ?? .zero) USD of orders in an hour"
            }
        }
    }

    struct Slot: Hashable {
        let root: String
        let metric: Metric
    }

    /// Twelve buckets of a window: each holds the sum of its time slice and which slice that was.
    struct Counter {
        var slices = [Int64](repeating: -1, count: 12)
        var sums = [Int64](repeating: 0, count: 12)
        var owner = ""

        /// Whether every slice it holds has left the window that ends in `slice`.
        func isStale(at slice: Int64) -> Bool { slices.allSatisfy { $0 <= slice - 12 } }

        /// Adds `amount` in the slice of `now` and returns the window's total.
        mutating func add(_ amount: Int64, slice: Int64) -> Int64 {
            let index = Int(slice % 12)
            if slices[index] != slice {
                slices[index] = slice
                sums[index] = 0
            }
            sums[index] &+= amount
            var total: Int64 = 0
            for i in 0..<12 where slices[i] > slice - 12 { total &+= sums[i] }
            return total
        }
    }

    /// A family this server froze: every call admitted before the freeze took hold (its standing read at or
    /// before `revision`, the store's revision once the freeze committed) is refused here too, so calls
    /// already under way when the breaker tripped cannot slip past it.
    struct Trip {
        /// Nil while the freeze is being written.
        var revision: Int64?
        let at: UInt64
    }

    struct State {
        var counters: [Slot: Counter] = [:]
        /// How many counters each owner's families hold.
        var owned: [String: Int] = [:]
        var tripped: [String: Trip] = [:]

        mutating func forget(_ root: String) {
            for metric in Metric.allCases { remove(Slot(root: root, metric: metric)) }
        }

        mutating func remove(_ slot: Slot) {
            guard let counter = counters.removeValue(forKey: slot) else { return }
            owned[counter.owner, default: 1] -= 1
            if owned[counter.owner] == 0 { owned[counter.owner] = nil }
        }

        /// The family's counter of `metric`, made if there is room: never by dropping a counter still in its
        /// window (another family's counts cannot be wiped by making many keys), and at most `perOwner` per owner.
        mutating func counter(_ slot: Slot, owner: String, now: UInt64) -> Counter? {
            if let counter = counters[slot] { return counter }
            if counters.count >= Breakers.capacity || owned[owner, default: 0] >= Breakers.perOwner {
                for (stale, counter) in counters where counter.isStale(at: Int64(now / (stale.metric.windowNanos / 12))) { remove(stale) }
            }
            guard counters.count < Breakers.capacity, owned[owner, default: 0] < Breakers.perOwner else { return nil }
            owned[owner, default: 0] += 1
            var counter = Counter()
            counter.owner = owner
            return counter
        }
    }

    enum Decision { case pass, refuse, trip }

    private let state = Mutex(State())
    let killSwitch: KillSwitch
    /// This server's key cache, synced right after a trip so the freeze holds here for the very next call.
    let keys: KeyCache
    let database: Database
    /// Counters held at most (about 200 bytes each), and per owner: past them, an owner's new families'
    /// orders and calls are refused rather than left uncounted.
    static let capacity = 100_000
    static let perOwner = 2_000

    public init(killSwitch: KillSwitch, keys: KeyCache, database: Database) {
        self.killSwitch = killSwitch
        self.keys = keys
        self.database = database
    }

    /// Adds `amount` to the family's metric and returns the window's total (no limit applied).
    func add(_ metric: Metric, root: String, amount: Int64, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int64 {
        let slice = Int64(now / (metric.windowNanos / 12))
        return state.withLock { s in
            let slot = Slot(root: root, metric: metric)
            guard var counter = s.counter(slot, owner: "", now: now) else { return 0 }
            defer { s.counters[slot] = counter }
            return counter.add(amount, slice: slice)
        }
    }

    /// One event of `metric` for the key's family, its standing read at `revision` (nil when unknown: a
    /// refusal). Within one lock: a family tripped here refuses what was admitted before its freeze; else
    /// the amount is counted, and past the owner's limit the family trips (its counts start again).
    func decide(_ metric: Metric, root: String, owner: String, revision: Int64?, amount: Int64, limit: Int64, now: UInt64) -> Decision {
        let slice = Int64(now / (metric.windowNanos / 12))
        return state.withLock { s in
            if let trip = s.tripped[root] {
                // A call may have read its clock before the trip and reached the lock after it: its `now` is then
                // earlier than the trip's, which is no time passed at all (a wrapping difference read as a window).
                let lifted =
                    if let revision, let frozenAt = trip.revision {
                        revision > frozenAt
                    } else {
                        now > trip.at && now - trip.at > metric.windowNanos
                    }
                guard lifted else { return .refuse }
                s.tripped[root] = nil
                s.forget(root)
            }
            let slot = Slot(root: root, metric: metric)
            guard var counter = s.counter(slot, owner: owner, now: now) else { return .refuse }
            let total = counter.add(amount, slice: slice)
            s.counters[slot] = counter
            guard total > limit else { return .pass }
            s.forget(root)
            if s.tripped.count >= Self.capacity { s.tripped.removeAll(keepingCapacity: true) }
            s.tripped[root] = Trip(revision: nil, at: now)
            return .trip
        }
    }

    /// Counts `amount` for the key's family. When that takes it past the owner's limit, the family is frozen;
    /// the answer is the refusal of the call that tripped it, and of any call admitted before the freeze.
    func count(
        _ metric: Metric, key: AgentKeyRecord, revision: Int64?, amount: Int64, limits: BreakerLimits,
        now: UInt64 = DispatchTime.now().uptimeNanoseconds
    ) async -> GatewayRefusal? {
        guard let limit = metric.limit(limits), amount > 0 else { return nil }
        let reason = "circuit breaker: \(metric.describe(limit)) for this key's family"
        switch decide(metric, root: key.rootID, owner: key.ownerID, revision: revision, amount: amount, limit: limit, now: now) {
        case .pass: return nil
        case .refuse: break
        case .trip:
            _ = try? await killSwitch.freeze(.family(key.rootID), reason: reason, by: .breaker(metric.rawValue), alarm: .breakerTripped)
            let frozenAt = try? await StoreRevision.read(database)
            state.withLock { s in
                if s.tripped[key.rootID]?.at == now { s.tripped[key.rootID]?.revision = frozenAt }
            }
            await keys.sync()
        }
        var refusal = GatewayRefusal(.forbidden, .permission, reason + "; the family is frozen until a person lifts it", key: key)
        refusal.byKillSwitch = true
        return refusal
    }
}
