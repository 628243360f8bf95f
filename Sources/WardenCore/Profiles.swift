import SQLKit
import WardenStore

/// Risk settings and simulator defaults, validated before they are stored.
public struct Profiles: Sendable {
    let database: Database
    let audit: AuditLog

    public init(database: Database, audit: AuditLog) {
        self.database = database
        self.audit = audit
    }

    public static let defaults = ProfileRecord(
        minNetEdgeCents: 1, maxLegUSD: USD(dollars: 100), dailyCapUSD: USD(dollars: 500), allowLiveTrading: false,
        startingBalanceUSD: 10_000, feeBps: 10, slippageBps: 5)

    public func get(userID: String) async throws -> ProfileRecord {
        try await ProfileRepository(database).find(userID: userID) ?? Self.defaults
    }

    /// Stores validated settings. Turning live trading on is refused here: it goes through the go-live checks.
    public func update(_ principal: Principal, to new: ProfileRecord) async throws -> ProfileRecord {
        try Self.validate(new)
        let current = try await get(userID: principal.user.id)
        if new.allowLiveTrading && !current.allowLiveTrading {
            throw WardenError(
                .forbidden, code: "go_live_required",
                "allow_live_trading is turned on only by POST /api/v1/profile/go-live, after its checks pass",
                field: "risk.allow_live_trading")
        }
        var adjusted = new
        adjusted.liveVenues = new.allowLiveTrading ? current.liveVenues : []  // only go-live adds venues
        let new = adjusted
        let changed = Self.changedFields(current, new)
        try await database.transaction { db in
            try await ProfileRepository(database).upsert(userID: principal.user.id, new, on: db)
            try await audit.append(
                AuditEntry(
                    actor: principal.user.id, owner: principal.user.id, action: "profile.update",
                    detail: ["changed": changed.joined(separator: ",")]), on: db)
        }
        return new
    }

    /// Marks `venue` live after its go-live checks passed, and audits it.
    public func goLive(_ principal: Principal, venue: String, checks: String) async throws -> ProfileRecord {
        var profile = try await get(userID: principal.user.id)
        if !profile.liveVenues.contains(venue) { profile.liveVenues.append(venue) }
        profile.allowLiveTrading = true
        try await database.transaction { [profile] db in
            try await ProfileRepository(database).upsert(userID: principal.user.id, profile, on: db)
            try await audit.append(
                AuditEntry(
                    actor: principal.user.id, owner: principal.user.id, action: "profile.go_live",
                    target: venue, outcome: .allowed, detail: ["checks": checks, "alarm": AlarmEvent.goLivePassed.rawValue]), on: db)
        }
        return profile
    }

    static func validate(_ p: ProfileRecord) throws(WardenError) {
        let limits: [(String, Double, ClosedRange<Double>)] = [
            ("risk.min_net_edge_cents", p.minNetEdgeCents, 0...10_000),
            ("simulator.starting_balance_usd", p.startingBalanceUSD, 0...1_000_000_000),
            ("simulator.fee_bps", p.feeBps, 0...1_000),
            ("simulator.slippage_bps", p.slippageBps, 0...1_000),
        ]
        for (field, value, range) in limits {
            guard value.isFinite else { throw .invalid(field, "must be a finite number") }
            guard range.contains(value) else {
                throw .invalid(field, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound))")
            }
        }
        for (field, value, most) in [("risk.max_leg_usd", p.maxLegUSD, 10_000_000), ("risk.daily_cap_usd", p.dailyCapUSD, 100_000_000)]
        where value > USD(dollars: most) {
            throw .invalid(field, "must be between 0 and \(most)")
        }
        guard Self.leverage.contains(p.maxLeverage) else {
            throw .invalid("risk.max_leverage", "must be a whole number from \(Self.leverage.lowerBound) to \(Self.leverage.upperBound)")
        }
        guard p.maxLegUSD <= p.dailyCapUSD else {
            throw .invalid("risk.max_leg_usd", "must not exceed risk.daily_cap_usd")
        }
    }

    /// Leverage a profile may allow: 1 (none) up to the most any supported venue offers.
    public static let leverage = 1...125

    static func changedFields(_ a: ProfileRecord, _ b: ProfileRecord) -> [String] {
        var out: [String] = []
        if a.minNetEdgeCents != b.minNetEdgeCents { out.append("min_net_edge_cents") }
        if a.maxLegUSD != b.maxLegUSD { out.append("max_leg_usd") }
        if a.dailyCapUSD != b.dailyCapUSD { out.append("daily_cap_usd") }
        if a.allowLiveTrading != b.allowLiveTrading { out.append("allow_live_trading") }
        if a.liveVenues != b.liveVenues { out.append("live_venues") }
        if a.startingBalanceUSD != b.startingBalanceUSD { out.append("starting_balance_usd") }
        if a.feeBps != b.feeBps { out.append("fee_bps") }
        if a.slippageBps != b.slippageBps { out.append("slippage_bps") }
        if a.breakers != b.breakers { out.append("breakers") }
        if a.approveAboveUSD != b.approveAboveUSD { out.append("approve_above_usd") }
        if a.maxLeverage != b.maxLeverage { out.append("max_leverage") }
        return out
    }

    private static func format(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(v) }
}
