import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `GET|PUT /profile`: risk settings and simulator defaults. PUT may send any subset of the fields.
struct ProfileController {
    let profiles: Profiles
    let goLive: GoLive
    let bodyLimit: Int

    /// `live_venues` is read-only: only the go-live checks add a venue.
    struct Risk: Codable {
        var minNetEdgeCents: Double?, allowLiveTrading: Bool?, liveVenues: [String]?
        /// Exact decimals: a limit is never a binary fraction.
        var maxLegUSD: Decimal?, dailyCapUSD: Decimal?
        /// Live orders above it wait for the owner's approval; 0 turns it off.
        var approveAboveUSD: Decimal?
        /// The most leverage an agent may set on a derivatives venue (1: none); read as a decimal so that
        /// a fraction is named as this field's error.
        var maxLeverage: Decimal?
        enum CodingKeys: String, CodingKey {
            case minNetEdgeCents = "min_net_edge_cents", maxLegUSD = "max_leg_usd", dailyCapUSD = "daily_cap_usd"
            case allowLiveTrading = "allow_live_trading", liveVenues = "live_venues", approveAboveUSD = "approve_above_usd"
            case maxLeverage = "max_leverage"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(minNetEdgeCents, forKey: .minNetEdgeCents); try c.encode(maxLegUSD, forKey: .maxLegUSD)
            try c.encode(dailyCapUSD, forKey: .dailyCapUSD); try c.encode(allowLiveTrading, forKey: .allowLiveTrading)
            try c.encode(liveVenues, forKey: .liveVenues); try c.encode(approveAboveUSD, forKey: .approveAboveUSD)
            try c.encode(maxLeverage, forKey: .maxLeverage)
        }
    }
    struct Simulator: Codable {
        var startingBalanceUSD: Double?, feeBps: Double?, slippageBps: Double?
        enum CodingKeys: String, CodingKey {
            case startingBalanceUSD = "starting_balance_usd", feeBps = "fee_bps", slippageBps = "slippage_bps"
        }
    }
    /// Circuit breakers per key family; 0 turns one off (a missing field leaves it as it is).
    struct Breakers: Codable {
        var ordersPerMinute: Int?, refusalsPerMinute: Int?
        var llmUSDPerHour: Decimal?, notionalUSDPerHour: Decimal?
        enum CodingKeys: String, CodingKey {
            case ordersPerMinute = "orders_per_minute", refusalsPerMinute = "refusals_per_minute"
            case llmUSDPerHour = "llm_usd_per_hour", notionalUSDPerHour = "notional_usd_per_hour"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ordersPerMinute, forKey: .ordersPerMinute); try c.encode(refusalsPerMinute, forKey: .refusalsPerMinute)
            try c.encode(llmUSDPerHour, forKey: .llmUSDPerHour); try c.encode(notionalUSDPerHour, forKey: .notionalUSDPerHour)
        }
    }
    struct Body: Codable { var risk: Risk?; var simulator: Simulator?; var breakers: Breakers? }

    static func body(_ p: ProfileRecord) -> Body {
        Body(
            risk: Risk(
                minNetEdgeCents: p.minNetEdgeCents, allowLiveTrading: p.allowLiveTrading, liveVenues: p.liveVenues,
                maxLegUSD: p.maxLegUSD.decimal, dailyCapUSD: p.dailyCapUSD.decimal, approveAboveUSD: p.approveAboveUSD?.decimal,
                maxLeverage: Decimal(p.maxLeverage)),
            simulator: Simulator(startingBalanceUSD: p.startingBalanceUSD, feeBps: p.feeBps, slippageBps: p.slippageBps),
            breakers: Breakers(
                ordersPerMinute: p.breakers.ordersPerMinute, refusalsPerMinute: p.breakers.refusalsPerMinute,
                llmUSDPerHour: p.breakers.llmUSDPerHour?.decimal, notionalUSDPerHour: p.breakers.notionalUSDPerHour?.decimal))
    }

    /// A breaker's setting: 0 is off.
    static func breaker(_ value: Decimal, _ field: String) throws -> USD? {
        let usd = try limit(value, field)
        return usd == .zero ? nil : usd
    }

    static func breaker(_ value: Int, _ field: String) throws -> Int? {
        guard (0...1_000_000).contains(value) else { throw WardenError.invalid(field, "must be between 0 (off) and 1000000") }
        return value == 0 ? nil : value
    }

    static func leverage(_ value: Decimal) throws -> Int {
        var rounded = Decimal(), source = value
        NSDecimalRound(&rounded, &source, 0, .plain)
        guard rounded == value, Decimal(Profiles.leverage.lowerBound)...Decimal(Profiles.leverage.upperBound) ~= value else {
            throw WardenError.invalid(
                "risk.max_leverage", "must be a whole number from \(Profiles.leverage.lowerBound) to \(Profiles.leverage.upperBound)")
        }
        return NSDecimalNumber(decimal: value).intValue
    }

    static func limit(_ value: Decimal, _ field: String) throws -> USD {
        guard let usd = USD(limit: value) else { throw WardenError.invalid(field, "must be a number of USD from 0 up") }
        return usd
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("profile") { _, context in
            try Response.json(Self.body(try await profiles.get(userID: try context.requirePrincipal().user.id)))
        }
        api.put("profile") { request, context in
            let principal = try context.requirePrincipal()
            let update = try await JSONBody.decode(Body.self, from: request, limit: bodyLimit)
            var p = try await profiles.get(userID: principal.user.id)
            if let r = update.risk {
                p.minNetEdgeCents = r.minNetEdgeCents ?? p.minNetEdgeCents
                p.maxLegUSD = try r.maxLegUSD.map { try Self.limit($0, "risk.max_leg_usd") } ?? p.maxLegUSD
                p.dailyCapUSD = try r.dailyCapUSD.map { try Self.limit($0, "risk.daily_cap_usd") } ?? p.dailyCapUSD
                p.allowLiveTrading = r.allowLiveTrading ?? p.allowLiveTrading
                if let v = r.approveAboveUSD { p.approveAboveUSD = try Self.breaker(v, "risk.approve_above_usd") }
                p.maxLeverage = try r.maxLeverage.map { try Self.leverage($0) } ?? p.maxLeverage
            }
            if let s = update.simulator {
                p.startingBalanceUSD = s.startingBalanceUSD ?? p.startingBalanceUSD
                p.feeBps = s.feeBps ?? p.feeBps
                p.slippageBps = s.slippageBps ?? p.slippageBps
            }
            if let b = update.breakers {
                if let v = b.ordersPerMinute { p.breakers.ordersPerMinute = try Self.breaker(v, "breakers.orders_per_minute") }
                if let v = b.refusalsPerMinute { p.breakers.refusalsPerMinute = try Self.breaker(v, "breakers.refusals_per_minute") }
                if let v = b.llmUSDPerHour { p.breakers.llmUSDPerHour = try Self.breaker(v, "breakers.llm_usd_per_hour") }
                if let v = b.notionalUSDPerHour { p.breakers.notionalUSDPerHour = try Self.breaker(v, "breakers.notional_usd_per_hour") }
            }
            return try Response.json(Self.body(try await profiles.update(principal, to: p)))
        }
        api.post("profile/go-live") { request, context in
            let principal = try context.requirePrincipal()
            let venue = try await JSONBody.decode(GoLiveRequest.self, from: request, limit: bodyLimit).venue
            let result = try await goLive.run(principal, venue: venue)
            return try Response.json(
                GoLiveAnswer(venue: result.venue, live: result.live, checks: result.checks),
                status: result.live ? .ok : .unprocessableContent)
        }
    }

    struct GoLiveRequest: Decodable { let venue: String }
    struct GoLiveAnswer: Encodable { let venue: String; let live: Bool; let checks: [GoLiveCheck] }
}
