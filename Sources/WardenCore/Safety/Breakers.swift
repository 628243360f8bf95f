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
    }

    private let counters = Mutex<[Slot: Counter]>([:])
    let killSwitch: KillSwitch
    /// This server's key cache, synced right after a trip so the freeze holds here for the very next call.
    let keys: KeyCache
    static let capacity = 10_000

    public init(killSwitch: KillSwitch, keys: KeyCache) {
        self.killSwitch = killSwitch
        self.keys = keys
    }

    /// Adds `amount` to the family's metric and returns the window's total.
    func add(_ metric: Metric, root: String, amount: Int64, now: UInt64 = DispatchTime.now().uptimeNanoseconds) -> Int64 {
        let slice = Int64(now / (metric.windowNanos / 12))
        return counters.withLock { counters in
            if counters.count >= Self.capacity { counters.removeAll(keepingCapacity: true) }
            var counter = counters[Slot(root: root, metric: metric)] ?? Counter()
            let index = Int(slice % 12)
            if counter.slices[index] != slice {
                counter.slices[index] = slice
                counter.sums[index] = 0
            }
            counter.sums[index] &+= amount
            counters[Slot(root: root, metric: metric)] = counter
            var total: Int64 = 0
            for i in 0..<12 where counter.slices[i] > slice - 12 { total &+= counter.sums[i] }
            return total
        }
    }

    /// Counts `amount` for the key's family. When that takes it past the owner's limit, the family is frozen
    /// and its counts start again; the answer is the refusal of the call that tripped it.
    func count(_ metric: Metric, key: AgentKeyRecord, amount: Int64, limits: BreakerLimits) async -> GatewayRefusal? {
        guard let limit = metric.limit(limits), amount > 0 else { return nil }
        guard add(metric, root: key.rootID, amount: amount) > limit else { return nil }
        counters.withLock { counters in
            for metric in Metric.allCases { counters[Slot(root: key.rootID, metric: metric)] = nil }
        }
        let reason = "circuit breaker: \(metric.describe(limit)) for this key's family"
        _ = try? await killSwitch.freeze(.family(key.rootID), reason: reason, by: .breaker(metric.rawValue), alarm: .breakerTripped)
        await keys.sync()
        var refusal = GatewayRefusal(.forbidden, .permission, reason + "; the family is frozen until a person lifts it", key: key)
        refusal.byKillSwitch = true
        return refusal
    }
}
