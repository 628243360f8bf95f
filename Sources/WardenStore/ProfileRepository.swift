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

public struct ProfileRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func find(userID: String) async throws -> ProfileRecord? {
        try await database.withConnection { db in try await find(userID: userID, on: db) }
    }

    /// The same inside the caller's transaction.
    public func find(userID: String, on db: any SQLDatabase) async throws -> ProfileRecord? {
        try await db.raw("SELECT * FROM profiles WHERE user_id = \(bind: userID)").first().map { row in
            ProfileRecord(
                minNetEdgeCents: try row.decode(column: "min_net_edge_cents", as: Double.self),
                maxLegUSD: USD(micros: try row.decode(column: "max_leg_micros", as: Int64.self)) ?? .zero,
                dailyCapUSD: USD(micros: try row.decode(column: "daily_cap_micros", as: Int64.self)) ?? .zero,
                allowLiveTrading: try row.decode(column: "allow_live_trading", as: Bool.self),
                startingBalanceUSD: try row.decode(column: "starting_balance_usd", as: Double.self),
                feeBps: try row.decode(column: "fee_bps", as: Double.self),
                slippageBps: try row.decode(column: "slippage_bps", as: Double.self),
                liveVenues: try row.decode(column: "live_venues", as: String.self).split(separator: ",").map(String.init))
        }
    }

    public func upsert(userID: String, _ p: ProfileRecord, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM profiles WHERE user_id = \(bind: userID)").run()
        try await db.raw(
            """
            INSERT INTO profiles (user_id, min_net_edge_cents, max_leg_micros, daily_cap_micros, allow_live_trading,
                starting_balance_usd, fee_bps, slippage_bps, live_venues, updated_at)
            VALUES (\(bind: userID), \(bind: p.minNetEdgeCents), \(bind: p.maxLegUSD.micros), \(bind: p.dailyCapUSD.micros),
                \(bind: p.allowLiveTrading), \(bind: p.startingBalanceUSD), \(bind: p.feeBps), \(bind: p.slippageBps),
                \(bind: p.liveVenues.joined(separator: ",")), \(bind: Clock.nowMillis()))
            """
        ).run()
    }
}
