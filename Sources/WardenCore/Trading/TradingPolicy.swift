import Foundation
import NIOPosix
import HTTPTypes
import WardenStore
import WardenVenues

/// Exchange calls through the owner's risk policy (docs/exchanges.md): fund movement never; unknown
/// endpoints only when the operator allows them; read keys never trade; each order priced in USD,
/// held under `max_leg_usd`, reserved against `daily_cap_usd`, and simulated while the venue is not live.
public struct TradingPolicy: Sendable {
    let config: WardenConfig
    let database: Database
    let profiles: Profiles
    let prices: PriceFeed
    let credentials: Credentials
    let audit: AuditWriter
    let keys: KeyCache
    let allowed: [String: [EndpointPattern]]
    let breakers: Breakers

    init(
        config: WardenConfig, database: Database, profiles: Profiles, keys: KeyCache, prices: PriceFeed, credentials: Credentials,
        audit: AuditWriter, breakers: Breakers
    ) {
        self.breakers = breakers
        self.audit = audit
        self.keys = keys
        self.config = config
        self.database = database
        self.profiles = profiles
        self.prices = prices
        self.credentials = credentials
        allowed = config.venues.mapValues { $0.allowEndpoints.map(EndpointPattern.init) }
    }

    public func plan(
        _ admission: Admission, venue: any ExchangeVenue, method: String, query: String, body: Data,
        headers: HTTPFields
    ) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        let call = ExchangeCall(method: method, path: admission.path.description, query: query, body: body)
        let base = base(venue, path: call.path)
        var outgoing = UpstreamRequest(
            method: call.method, path: base.prefix + admission.path.encoded, query: query,
            headers: headers, body: body)
        outgoing.authority = base.authority
        func forward(_ kind: CallKind, signed: Bool) async throws(GatewayRefusal) -> TradePlan {
            TradePlan(route: try await sign(outgoing, venue, admission, base, signed: signed), kind: kind)
        }
        switch venue.classify(call) {
        case .fundMovement:
            var refusal = GatewayRefusal(
                .forbidden, .permission,
                "fund movement (withdrawals and transfers) is never allowed through Warden: \(call.method) \(call.path)", key: key)
            refusal.alarm = .fundMovementAttempted
            throw refusal
        case .invalid(let reason):
            throw GatewayRefusal(.badRequest, .invalidRequest, "refused: \(reason)", key: key)
        case .publicRead:
            return try await forward(.publicRead, signed: false)
        case .privateRead:
            guard venue.echoesCredential(call) else { return try await forward(.privateRead, signed: true) }
            guard case .forward(let request, let url) = try await sign(outgoing, venue, admission, base, signed: true) else {
                throw GatewayRefusal(.serviceUnavailable, .unavailable, "the call could not be signed", key: key)
            }
            return TradePlan(route: .redacted(request: request, url: url), kind: .privateRead)
        case .unknown:
            guard allowed[venue.name]?.contains(where: { $0.matches(method: call.method, path: admission.path) }) == true else {
                throw GatewayRefusal(
                    .forbidden, .permission,
                    "\(call.method) \(call.path) is not allowed: it is not on Warden's list of \(venue.name) endpoints (an operator can open it with allow_endpoints in [venues.\(venue.name)])",
                    key: key)
            }
            if !call.isRead {
                try requireTrade(key)
                guard try await limits(admission, venue: venue.name).live else {
                    throw GatewayRefusal(
                        .forbidden, .permission,
                        "live trading is off for \(venue.name): \(call.method) \(call.path) is only sent once go-live passes", key: key)
                }
            }
            return try await forward(.allowedByConfig, signed: true)
        case .cancel:
            try requireTrade(key)
            guard try await limits(admission, venue: venue.name).live else {
                let answer = venue.simulatedCancel()
                return TradePlan(
                    route: .answer(status: answer.status, body: answer.body), kind: .cancel, audit: ["mode": TradeMode.paper.rawValue])
            }
            return try await forward(.cancel, signed: true)
        case .order(let order):
            try requireTrade(key)
            return try await plan(order: order, outgoing, venue, admission, base)
        case .orders(let orders):
            try requireTrade(key)
            return try await plan(batch: orders, outgoing, venue, admission, base)
        case .walletAuth:
            try requireTrade(key)
            return try walletAuth(outgoing, venue, admission, base)
        case .leverage(let change):
            try requireTrade(key)
            let limits = try await limits(admission, venue: venue.name)
            if let reason = Self.refusal(of: change, under: limits.owners(key.ownerID)) {
                throw GatewayRefusal(.forbidden, .permission, reason, key: key)
            }
            guard limits.live else {
                let answer = venue.simulatedLeverage(change)
                return TradePlan(
                    route: .answer(status: answer.status, body: answer.body), kind: .leverage, audit: Self.audit(of: change, .paper))
            }
            return TradePlan(
                route: try await sign(outgoing, venue, admission, base, signed: true), kind: .leverage, audit: Self.audit(of: change, .live)
            )
        }
    }

    /// A call made without an agent key: only public market data passes, with no credential attached.
    public func publicCall(
        venue: any ExchangeVenue, method: String, path: CanonicalPath, query: String, body: Data,
        headers: HTTPFields
    ) throws(GatewayRefusal) -> (UpstreamRequest, url: String) {
        guard venue.classify(ExchangeCall(method: method, path: path.description, query: query, body: body)) == .publicRead else {
            throw GatewayRefusal(
                .unauthorized, .authentication, "no Warden agent key: send it where the SDK sends its API key, or in X-Warden-Key")
        }
        let base = base(venue, path: path.description)
        let request = UpstreamRequest(
            method: method.uppercased(), path: base.prefix + path.encoded, query: query, headers: headers, body: body)
        return (request, base.url(request))
    }

    /// The base a call to `path` goes to: the venue's market data host for its market data, else its base URL.
    func base(_ venue: any ExchangeVenue, path: String) -> UpstreamBase {
        if let data = venue.defaultMarketDataURL, venue.isMarketData(path) {
            return UpstreamBase(config.marketDataURL(venue: venue.name, default: data))
        }
        return UpstreamBase(config.baseURL(venue: venue.name, default: venue.defaultBaseURL))
    }

    /// Where `venue`'s prices are read for an order signed with `secret`; `base` is the order's own.
    func marketSource(_ venue: any ExchangeVenue, _ base: UpstreamBase, secret: [String: String]) -> MarketSource {
        var headers: HTTPFields = [:]
        if venue.pricesNeedCredential { venue.authorize(&headers, secret: secret) }
        guard let data = venue.defaultMarketDataURL else { return MarketSource(base: base, headers: headers) }
        return MarketSource(base: UpstreamBase(config.marketDataURL(venue: venue.name, default: data)), headers: headers)
    }

    /// The venue refused a live order: its notional goes back to the days it was counted on.
    public func release(_ reservation: String) async throws { try await TradeRepository(database).release(id: reservation) }

    // MARK: checks and signing

    func requireTrade(_ key: AgentKeyRecord) throws(GatewayRefusal) {
        guard key.access == .trade else {
            throw GatewayRefusal(.forbidden, .permission, "this agent key is read-only: it cannot place or cancel orders", key: key)
        }
    }

    func profile(_ key: AgentKeyRecord) async throws(GatewayRefusal) -> ProfileRecord {
        do { return try await profile(userID: key.ownerID) } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the risk settings cannot be read", key: key)
        }
    }

    /// A user's risk settings, kept by the key cache at the store's revision (see `KeyCache`).
    func profile(userID: String) async throws -> ProfileRecord {
        let profiles = profiles
        return try await keys.profile(userID: userID) { try await profiles.get(userID: userID) }
    }

    func sign(
        _ request: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission, _ base: UpstreamBase,
        signed: Bool
    ) async throws(GatewayRefusal) -> TradePlan.Route {
        let secret = admission.secret
        var nonce: Int64?
        if signed, let scope = venue.nonceScope(secret) {
            do { nonce = try await NonceRepository(database).next(key: scope, atLeast: Nonces.floor(for: venue)) } catch {
                throw GatewayRefusal(
                    .serviceUnavailable, .unavailable, "the call's nonce could not be read from the store", key: admission.key)
            }
        }
        let signing = { @Sendable [nonce] () throws(VenueError) -> UpstreamRequest in
            var request = request
            if let nonce {
                try venue.sign(&request, secret: secret, nonce: nonce)
            } else {
                try venue.sign(&request, secret: secret, signed: signed, now: Date())
            }
            return request
        }
        let outgoing: UpstreamRequest
        do {
            // Tasks run on the event loops: an RSA signature would hold up every connection of its loop.
            outgoing = venue.signsSlowly ? try await NIOThreadPool.singleton.runIfActive { try signing() } : try signing()
        } catch let error as VenueError {
            throw GatewayRefusal(.badRequest, .invalidRequest, error.description, key: admission.key)
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the call could not be signed", key: admission.key)
        }
        return .forward(request: outgoing, url: base.url(outgoing))
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
