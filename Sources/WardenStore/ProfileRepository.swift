import SQLKit

/// A user's risk settings and simulator defaults.
public struct ProfileRecord: Sendable, Equatable, Codable {
    public var minNetEdgeCents: Double
    public var maxLegUSD: USD
    public var dailyCapUSD: USD
    public var allowLiveTrading: Bool
    public var startingBalanceUSD: Double
    public var feeBps: Double
    public var slippageBps: Double
    /// Venues whose go-live checks passed; orders elsewhere stay in the simulator.
    public var liveVenues: [String]
    /// Circuit breakers per key family (nil: off).
    public var breakers = BreakerLimits()
    /// Live orders above this notional wait for the owner's approval (nil: none do).
    public var approveAboveUSD: USD?
    /// The most leverage an agent may set on a derivatives venue (1: none).
    public var maxLeverage = 1

    public init(
        minNetEdgeCents: Double, maxLegUSD: USD, dailyCapUSD: USD, allowLiveTrading: Bool,
        startingBalanceUSD: Double, feeBps: Double, slippageBps: Double, liveVenues: [String] = []
    ) {
        self.minNetEdgeCents = minNetEdgeCents
        self.maxLegUSD = maxLegUSD
        self.dailyCapUSD = dailyCapUSD
        self.allowLiveTrading = allowLiveTrading
        self.startingBalanceUSD = startingBalanceUSD
        self.feeBps = feeBps
        self.slippageBps = slippageBps
        self.liveVenues = liveVenues
    }

    /// Whether orders at `venue` go to the venue (rather than the simulator).
    public func isLive(_ venue: String) -> Bool { allowLiveTrading && liveVenues.contains(venue) }
}

/// A key family's circuit breakers: past one of these in its window, the family is frozen.
public struct BreakerLimits: Sendable, Equatable, Codable {
    public var ordersPerMinute: Int?
    public var refusalsPerMinute: Int?
    public var llmUSDPerHour: USD?
    public var notionalUSDPerHour: USD?

    public init(ordersPerMinute: Int? = nil, refusalsPerMinute: Int? = nil, llmUSDPerHour: USD? = nil, notionalUSDPerHour: USD? = nil) {
        self.ordersPerMinute = ordersPerMinute
        self.refusalsPerMinute = refusalsPerMinute
        self.llmUSDPerHour = llmUSDPerHour
        self.notionalUSDPerHour = notionalUSDPerHour
    }

    /// Each breaker at the lower of the two settings (one that is off takes the other's).
    public func strictest(_ other: BreakerLimits) -> BreakerLimits {
        func lower<T: Comparable>(_ a: T?, _ b: T?) -> T? { [a, b].compactMap { $0 }.min() }
        return BreakerLimits(
            ordersPerMinute: lower(ordersPerMinute, other.ordersPerMinute),
            refusalsPerMinute: lower(refusalsPerMinute, other.refusalsPerMinute),
            llmUSDPerHour: lower(llmUSDPerHour, other.llmUSDPerHour),
            notionalUSDPerHour: lower(notionalUSDPerHour, other.notionalUSDPerHour))
    }
}

public struct ProfileRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func find(userID: String) async throws -> ProfileRecord? {
        try await database.withConnection { db in try await find(userID: userID, on: db) }
    }

    /// The same inside the caller's transaction.
    public func find(userID: String, on db: any SQLDatabase) async throws -> ProfileRecord? {
        try await db.raw("SELECT * FROM profiles WHERE user_id = \(bind: userID)").first().map { row in
            var profile = ProfileRecord(
                minNetEdgeCents: try row.decode(column: "min_net_edge_cents", as: Double.self),
                maxLegUSD: USD(micros: try row.decode(column: "max_leg_micros", as: Int64.self)) ?? .zero,
                dailyCapUSD: USD(micros: try row.decode(column: "daily_cap_micros", as: Int64.self)) ?? .zero,
                allowLiveTrading: try row.decode(column: "allow_live_trading", as: Bool.self),
                startingBalanceUSD: try row.decode(column: "starting_balance_usd", as: Double.self),
                feeBps: try row.decode(column: "fee_bps", as: Double.self),
                slippageBps: try row.decode(column: "slippage_bps", as: Double.self),
                liveVenues: try row.decode(column: "live_venues", as: String.self).split(separator: ",").map(String.init))
            profile.breakers = BreakerLimits(
                ordersPerMinute: try row.decode(column: "breaker_orders_per_minute", as: Int?.self),
                refusalsPerMinute: try row.decode(column: "breaker_refusals_per_minute", as: Int?.self),
                llmUSDPerHour: try row.decode(column: "breaker_llm_micros_per_hour", as: Int64?.self).flatMap(USD.init(micros:)),
                notionalUSDPerHour: try row.decode(column: "breaker_notional_micros_per_hour", as: Int64?.self).flatMap(USD.init(micros:)))
            profile.approveAboveUSD = try row.decode(column: "approve_above_micros", as: Int64?.self).flatMap(USD.init(micros:))
            profile.maxLeverage = try row.decode(column: "max_leverage", as: Int.self)
            return profile
        }
    }

    public func upsert(userID: String, _ p: ProfileRecord, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM profiles WHERE user_id = \(bind: userID)").run()
        try await db.raw(
            """
            INSERT INTO profiles (user_id, min_net_edge_cents, max_leg_micros, daily_cap_micros, allow_live_trading,
                starting_balance_usd, fee_bps, slippage_bps, live_venues, updated_at, breaker_orders_per_minute,
                breaker_refusals_per_minute, breaker_llm_micros_per_hour, breaker_notional_micros_per_hour, approve_above_micros,
                max_leverage)
            VALUES (\(bind: userID), \(bind: p.minNetEdgeCents), \(bind: p.maxLegUSD.micros), \(bind: p.dailyCapUSD.micros),
                \(bind: p.allowLiveTrading), \(bind: p.startingBalanceUSD), \(bind: p.feeBps), \(bind: p.slippageBps),
                \(bind: p.liveVenues.joined(separator: ",")), \(bind: Clock.nowMillis()), \(bind: p.breakers.ordersPerMinute),
                \(bind: p.breakers.refusalsPerMinute), \(bind: p.breakers.llmUSDPerHour?.micros), \(bind: p.breakers.notionalUSDPerHour?.micros),
                \(bind: p.approveAboveUSD?.micros), \(bind: p.maxLeverage))
            """
        ).run()
    }
}
