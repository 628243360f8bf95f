import Foundation
import NIOPosix
import WardenCrypto
import HTTPTypes
import WardenStore
import WardenVenues

/// What the gateway does with an exchange call the policy let through.
public struct TradePlan: Sendable {
    public enum Route: Sendable {
        /// Sign and send: `request` is signed, `url` is where it goes.
        case forward(request: UpstreamRequest, url: String)
        /// Answer for the venue (the simulator), without calling it.
        case answer(status: HTTPResponse.Status, body: Data)
    }

    public let route: Route
    /// Recorded in the audit row: the class of call, and for orders instrument, side, notional, client order id, mode.
    public let audit: [String: String]
    /// The live orders' reservations, released when the venue refuses the call.
    public let reservations: [String]
    /// Whether the call's `gateway.forward` row is already durable (a live order's commits with its reservation).
    public var recorded = false
}

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

    init(config: WardenConfig, database: Database, profiles: Profiles, keys: KeyCache, prices: PriceFeed, credentials: Credentials,
         audit: AuditWriter) {
        self.audit = audit
        self.keys = keys
        self.config = config
        self.database = database
        self.profiles = profiles
        self.prices = prices
        self.credentials = credentials
        allowed = config.venues.mapValues { $0.allowEndpoints.map(EndpointPattern.init) }
    }

    /// `reasonNotToSend` says, just before a call Warden sends itself (a wallet call) goes out, why it must
    /// not any more (its client has gone, it waited past its deadline), as the gateway checks for the rest.
    public func plan(_ admission: Admission, venue: any ExchangeVenue, method: String, query: String, body: Data,
                     headers: HTTPFields, reasonNotToSend: @escaping @Sendable () -> String? = { nil }) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        let call = ExchangeCall(method: method, path: admission.path.description, query: query, body: body)
        let base = UpstreamBase(config.baseURL(venue: venue.name, default: venue.defaultBaseURL))
        let outgoing = UpstreamRequest(method: call.method, path: base.prefix + admission.path.encoded, query: query,
                                       headers: headers, body: body)
        func forward(_ label: String, signed: Bool) async throws(GatewayRefusal) -> TradePlan {
            TradePlan(route: try await sign(outgoing, venue, admission, base, signed: signed), audit: ["class": label], reservations: [])
        }
        switch venue.classify(call) {
        case .fundMovement:
            throw GatewayRefusal(.forbidden, .permission,
                                 "fund movement (withdrawals and transfers) is never allowed through Warden: \(call.method) \(call.path)", key: key)
        case .invalid(let reason):
            throw GatewayRefusal(.badRequest, .invalidRequest, "refused: \(reason)", key: key)
        case .publicRead:
            return try await forward("public_read", signed: false)
        case .privateRead:
            return try await forward("private_read", signed: true)
        case .unknown:
            guard allowed[venue.name]?.contains(where: { $0.matches(method: call.method, path: admission.path) }) == true else {
                throw GatewayRefusal(.forbidden, .permission,
                                     "\(call.method) \(call.path) is not allowed: it is not on Warden's list of \(venue.name) endpoints (an operator can open it with allow_endpoints in [venues.\(venue.name)])",
                                     key: key)
            }
            if call.method != "GET" && call.method != "HEAD" {
                try requireTrade(key)
                guard try await limits(admission, venue: venue.name).live else {
                    throw GatewayRefusal(.forbidden, .permission,
                                         "live trading is off for \(venue.name): \(call.method) \(call.path) is only sent once go-live passes", key: key)
                }
            }
            return try await forward("allowed_by_config", signed: true)
        case .cancel:
            try requireTrade(key)
            guard try await limits(admission, venue: venue.name).live else {
                let answer = venue.simulatedCancel()
                return TradePlan(route: .answer(status: answer.status, body: answer.body), audit: ["class": "cancel", "mode": "paper"], reservations: [])
            }
            return try await forward("cancel", signed: true)
        case .order(let order):
            try requireTrade(key)
            return try await plan(order: order, outgoing, venue, admission, base)
        case .orders(let orders):
            try requireTrade(key)
            return try await plan(batch: orders, outgoing, venue, admission, base)
        case .walletAuth:
            try requireTrade(key)
            return try await walletAuth(outgoing, venue, admission, base, reasonNotToSend: reasonNotToSend)
        }
    }

    /// Polymarket level 1: Warden signs with the stored wallet key, keeps the minted credentials in the
    /// vault, and tells the agent only that they are stored. Allowed in dry-run too: it trades nothing.
    func walletAuth(_ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
                    _ base: UpstreamBase, reasonNotToSend: @Sendable () -> String?) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        guard admission.ownsCredential else {
            throw GatewayRefusal(.forbidden, .permission, "only keys of the credential's owner may mint its level-2 credentials", key: key)
        }
        var request = outgoing
        do { try venue.signWalletAuth(&request, secret: admission.secret, now: Date()) } catch {
            throw GatewayRefusal(.forbidden, .permission, error.description, key: key)
        }
        do {
            try await audit.append(admission.auditEntry("gateway.forward", outcome: "allowed", method: request.method,
                                                        detail: ["class": "wallet_auth"]))
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made", key: key)
        }
        if let late = reasonNotToSend() { throw GatewayRefusal(.serviceUnavailable, .unavailable, late, key: key) }
        let answer: (status: Int, body: Data)
        do { answer = try await prices.caller.send(request, origin: base.origin) } catch {
            throw GatewayRefusal(.badGateway, .upstream, "the upstream could not be reached", key: key)
        }
        let status = HTTPResponse.Status(code: answer.status)
        // The answer may hold freshly minted level-2 secrets: it reaches the agent only when it cannot.
        guard (200..<300).contains(answer.status) else {
            guard !Self.mayHoldCredentials(answer.body) else {
                throw GatewayRefusal(.badGateway, .upstream,
                                     "the venue refused the level-1 call (\(answer.status)) with an answer naming credentials; it is not passed on",
                                     key: key)
            }
            return TradePlan(route: .answer(status: status, body: answer.body), audit: ["class": "wallet_auth"], reservations: [])
        }
        guard let fields = venue.walletAuthFields(answer.body) else {
            throw GatewayRefusal(.badGateway, .upstream,
                                 "the venue's level-1 answer has no readable apiKey, secret and passphrase; it is not passed on", key: key)
        }
        do { try await credentials.merge(fields, intoCredential: admission.credentialID, byKey: key) } catch {
            throw GatewayRefusal(.badGateway, .upstream, "the minted credentials could not be stored; the venue's answer is not passed on",
                                 key: key)
        }
        await keys.sync()  // the next call signs with the minted credentials
        // The SDK goes on with what it gets: its own agent key as the API key, placeholders for the rest.
        let stored = ["apiKey": admission.presentedKey, "secret": "stored-in-warden", "passphrase": "stored-in-warden"]
        return TradePlan(route: .answer(status: status, body: (try? JSONSerialization.data(withJSONObject: stored, options: [.sortedKeys])) ?? Data()),
                         audit: ["class": "wallet_auth", "stored": "true"], reservations: [])
    }

    /// Whether a level-1 answer might carry a credential: a member name at any depth (escapes decoded) or
    /// anything in its text containing `secret`, `passphrase`, `apikey`, `api_key` or `api-key`, in any case.
    static func mayHoldCredentials(_ body: Data) -> Bool {
        let words = ["secret", "passphrase", "apikey", "api_key", "api-key"]
        if let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) {
            func names(_ value: Any) -> Bool {
                if let object = value as? [String: Any] {
                    return object.contains { name, member in words.contains { name.lowercased().contains($0) } || names(member) }
                }
                if let array = value as? [Any] { return array.contains(where: names) }
                return false
            }
            if names(json) { return true }
        }
        let text = String(decoding: body, as: UTF8.self).lowercased()
        return words.contains { text.contains($0) }
    }

    /// A call made without an agent key: only public market data passes, with no credential attached.
    public func publicCall(venue: any ExchangeVenue, method: String, path: CanonicalPath, query: String, body: Data,
                           headers: HTTPFields) throws(GatewayRefusal) -> (UpstreamRequest, url: String) {
        guard venue.classify(ExchangeCall(method: method, path: path.description, query: query, body: body)) == .publicRead else {
            throw GatewayRefusal(.unauthorized, .authentication, "no Warden agent key: send it where the SDK sends its API key, or in X-Warden-Key")
        }
        let base = UpstreamBase(config.baseURL(venue: venue.name, default: venue.defaultBaseURL))
        let request = UpstreamRequest(method: method.uppercased(), path: base.prefix + path.encoded, query: query, headers: headers, body: body)
        return (request, base.url(request))
    }

    /// The venue refused a live order: its notional goes back to the days it was counted on.
    public func release(_ reservation: String) async throws { try await TradeRepository(database).release(id: reservation) }

    // MARK: orders

    /// Makes an order's audit row from its details.
    typealias RowMaker = @Sendable ([String: String]) -> AuditEntry

    /// An order that passed its checks: its price, id, and what it holds against the caps.
    struct Held: Sendable {
        enum Hold: Sendable {
            /// Its own reservation, released if the venue refuses the order.
            case reserved(id: String)
            /// None: it is the very same order as one that still holds a reservation (a venue that never
            /// executes the same content twice).
            case retryOfReserved
        }
        let order: OrderIntent
        let priced: Priced
        let notional: USD
        let clientOrderID: String
        let hold: Hold
        let audit: [String: String]

        var reservation: String? { if case .reserved(let id) = hold { id } else { nil } }
    }

    /// Whose limits an order is held under: the key owner's, and for a shared credential its owner's too.
    struct Limits: Sendable {
        let owner: ProfileRecord
        /// The credential owner's id and settings, when the credential is shared with the key's owner.
        let sharer: (id: String, profile: ProfileRecord)?
        /// Live only when every owner whose limits apply has passed go-live for the venue.
        let live: Bool
    }

    func limits(_ admission: Admission, venue: String) async throws(GatewayRefusal) -> Limits {
        let owner = try await profile(admission.key)
        guard !admission.ownsCredential else { return Limits(owner: owner, sharer: nil, live: owner.isLive(venue)) }
        let sharer: ProfileRecord
        do { sharer = try await profiles.get(userID: admission.credentialOwnerID) } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the risk settings cannot be read", key: admission.key)
        }
        return Limits(owner: owner, sharer: (admission.credentialOwnerID, sharer), live: owner.isLive(venue) && sharer.isLive(venue))
    }

    /// Prices one order, holds it under every applicable `max_leg_usd`, and reserves it against every applicable
    /// `daily_cap_usd`. With `record`, the reservation is made in the audit's next group commit, with the row
    /// `record` makes from the order's details: both are on disk together, or neither is.
    func hold(_ order: OrderIntent, _ venue: any ExchangeVenue, _ base: UpstreamBase, key: AgentKeyRecord, credentialID: String,
              limits: Limits, record: RowMaker? = nil) async throws(GatewayRefusal) -> Held {
        let priced = try await price(order, venue, base, key: key)
        guard let notional = USD(roundingUp: priced.usd), notional > .zero else {
            throw GatewayRefusal(.badRequest, .invalidRequest, "the order's notional must be above zero and below \(USD.limit) USD", key: key)
        }
        let profiles = [(whose: "", profile: limits.owner)] + (limits.sharer.map { [(whose: "the credential owner's ", profile: $0.profile)] } ?? [])
        for (whose, profile) in profiles {
            let leg = profile.maxLegUSD
            guard notional <= leg else {
                throw GatewayRefusal(.forbidden, .permission, "the order's notional of \(notional) USD exceeds \(whose)max_leg_usd (\(leg) USD)", key: key)
            }
        }
        let mode = limits.live ? "live" : "paper"
        let clientOrderID = order.clientOrderID ?? Self.newClientOrderID()
        var audit = ["instrument": String(order.instrument.prefix(80)), "side": order.side.rawValue,
                     "notional_usd": notional.description, "client_order_id": String(clientOrderID.prefix(80)), "mode": mode]
        if let sharer = limits.sharer { audit["credential_owner"] = sharer.id }
        let caps = [TradeLimit(ownerID: key.ownerID, dailyCap: limits.owner.dailyCapUSD)]
            + (limits.sharer.map { [TradeLimit(ownerID: $0.id, dailyCap: $0.profile.dailyCapUSD)] } ?? [])
        // The same content on another credential is signed by another wallet: another order.
        let fingerprint = order.fingerprint.map { credentialID + ":" + $0 }
        let ledgerOrder = TradeRepository.Order(venue: venue.name, clientOrderID: clientOrderID, fingerprint: fingerprint, mode: mode,
                                                day: SpendRepository.day(), notional: notional)
        let trades = TradeRepository(database)
        let reservation: TradeReservation
        do {
            if let record {
                let details = audit
                reservation = try await self.audit.commit { db in
                    let reservation = try await trades.reserve(ledgerOrder, limits: caps, on: db)
                    if case .overCap = reservation { return (reservation, nil) }
                    return (reservation, record(reservation == .sameOrder ? details.merging(["retry": "true"]) { $1 } : details))
                }
            } else {
                reservation = try await trades.reserve(ledgerOrder, limits: caps)
            }
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the trade ledger or the audit log is unavailable; the order was not sent",
                                 key: key)
        }
        switch reservation {
        case .overCap(let ownerID, let used):
            let whose = ownerID == key.ownerID ? "" : "the credential owner's "
            let cap = (ownerID == key.ownerID ? caps[0] : caps[caps.count - 1]).dailyCap
            throw GatewayRefusal(.forbidden, .permission,
                                 "the order's \(notional) USD would take \(whose)\(mode) volume today to \(used + notional) USD, past \(whose)daily_cap_usd (\(cap) USD); it resets at 00:00 UTC",
                                 key: key)
        case .sameOrder:
            guard limits.live else {
                throw GatewayRefusal(.badRequest, .invalidRequest, "the simulator already filled this very order", key: key)
            }
            audit["retry"] = "true"
            return Held(order: order, priced: priced, notional: notional, clientOrderID: clientOrderID, hold: .retryOfReserved, audit: audit)
        case .reserved(let id):
            return Held(order: order, priced: priced, notional: notional, clientOrderID: clientOrderID, hold: .reserved(id: id), audit: audit)
        }
    }

    func release(_ held: [Held]) async {
        for id in held.compactMap(\.reservation) { try? await TradeRepository(database).release(id: id) }
    }

    func plan(order: OrderIntent, _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
              _ base: UpstreamBase) async throws(GatewayRefusal) -> TradePlan {
        let limits = try await limits(admission, venue: venue.name)
        // A live order is recorded as it is reserved, in one commit: the row is on disk before it is sent.
        var record: RowMaker?
        if limits.live {
            let method = outgoing.method
            record = { details in
                var detail = details
                detail["class"] = "order"
                return admission.auditEntry("gateway.forward", outcome: "allowed", method: method, detail: detail)
            }
        }
        let held = try await hold(order, venue, base, key: admission.key, credentialID: admission.credentialID, limits: limits, record: record)
        let audit = held.audit.merging(["class": "order"]) { $1 }
        guard limits.live else {
            let answer = try await simulate(held, profile: limits.owner, venue, base, key: admission.key)
            return TradePlan(route: .answer(status: answer.status, body: answer.body), audit: audit, reservations: [])
        }
        do {
            var request = outgoing
            let market = try await venue.marketQuery(for: order, secret: admission.secret).asyncMap {
                try await prices.body(of: $0, venue: venue.name, base: base)
            }
            try venue.prepareOrder(order, clientOrderID: held.clientOrderID, in: &request, secret: admission.secret, market: market)
            return TradePlan(route: try await sign(request, venue, admission, base, signed: true), audit: audit,
                             reservations: held.reservation.map { [$0] } ?? [], recorded: true)
        } catch {
            await release([held])
            throw readied(error, venue, key: admission.key)
        }
    }

    /// A batch: every order passes alone (a refusal of one releases the others and refuses the batch),
    /// then all are simulated, or all are readied and sent together.
    func plan(batch orders: [OrderIntent], _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
              _ base: UpstreamBase) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        let limits = try await limits(admission, venue: venue.name)
        let live = limits.live
        var held: [Held] = []
        for order in orders {
            do { held.append(try await hold(order, venue, base, key: key, credentialID: admission.credentialID, limits: limits)) } catch {
                await release(held)
                throw error
            }
        }
        let total = held.reduce(USD.zero) { $0 + $1.notional }
        var audit = ["class": "orders", "count": String(held.count), "notional_usd": total.description,
                     "mode": live ? "live" : "paper", "client_order_ids": String(held.map(\.clientOrderID).joined(separator: ",").prefix(400))]
        if let sharer = limits.sharer { audit["credential_owner"] = sharer.id }
        guard live else {
            var answers: [Any] = []
            for (index, one) in held.enumerated() {
                do {
                    let answer = try await simulate(one, profile: limits.owner, venue, base, key: key)
                    answers.append(try JSONSerialization.jsonObject(with: answer.body))
                } catch {
                    await release(Array(held[(index + 1)...]))
                    throw readied(error, venue, key: key)
                }
            }
            let body = (try? JSONSerialization.data(withJSONObject: answers, options: [.sortedKeys])) ?? Data("[]".utf8)
            return TradePlan(route: .answer(status: .ok, body: body), audit: audit, reservations: [])
        }
        do {
            var markets: [String: Data] = [:]
            for order in orders where markets[order.instrument] == nil {
                if let query = venue.marketQuery(for: order, secret: admission.secret) {
                    markets[order.instrument] = try await prices.body(of: query, venue: venue.name, base: base)
                }
            }
            var request = outgoing
            try venue.prepareBatch(orders, in: &request, secret: admission.secret, markets: markets)
            return TradePlan(route: try await sign(request, venue, admission, base, signed: true), audit: audit,
                             reservations: held.compactMap(\.reservation))
        } catch {
            await release(held)
            throw readied(error, venue, key: key)
        }
    }

    func readied(_ error: any Error, _ venue: any ExchangeVenue, key: AgentKeyRecord) -> GatewayRefusal {
        (error as? GatewayRefusal) ?? GatewayRefusal(.badGateway, .upstream, "the order could not be readied for \(venue.name): \(error)", key: key)
    }

    /// A fill at the venue's current price moved against the order by the slippage, with the fee, booked on paper.
    func simulate(_ held: Held, profile: ProfileRecord, _ venue: any ExchangeVenue, _ base: UpstreamBase,
                  key: AgentKeyRecord) async throws(GatewayRefusal) -> (status: HTTPResponse.Status, body: Data) {
        let (order, priced, clientOrderID, ticket) = (held.order, held.priced, held.clientOrderID, held.reservation)
        let trades = TradeRepository(database)
        do {
            let market: Decimal
            if let known = priced.market { market = known } else { market = try await marketPrice(order, venue, base, key: key) }
            let slip = Decimal(profile.slippageBps) / 10_000
            let price = market * (order.side == .buy ? 1 + slip : 1 - slip)
            var quantity = order.quantity ?? 0
            if order.quantity == nil, case .quote(let amount, _) = order.value, price > 0 { quantity = (amount / price).rounded(places: 8) }
            let fill = SimulatedFill(orderID: UUID().uuidString.lowercased(), number: Int64.random(in: 1_000_000...9_000_000_000_000),
                                     clientOrderID: clientOrderID, price: price, quantity: quantity, usdPerQuote: priced.usdPerQuote,
                                     feeBps: Decimal(profile.feeBps), time: Date())
            let booked = try await PaperRepository(database).book(PaperOrder(
                id: fill.orderID, ownerID: key.ownerID, venue: venue.name, clientOrderID: clientOrderID, instrument: order.instrument,
                side: order.side.rawValue, quantity: "\(fill.quantity)", price: "\(fill.price)", notionalUSD: Self.double(fill.notionalUSD),
                feeUSD: Self.double(fill.feeUSD), createdAt: Clock.nowMillis()), startingBalanceUSD: profile.startingBalanceUSD)
            guard booked else {
                if let ticket { try? await trades.release(id: ticket) }
                throw GatewayRefusal(.badRequest, .invalidRequest,
                                     "insufficient paper balance for this order (simulator cash starts at starting_balance_usd)", key: key)
            }
            return venue.simulatedOrder(order, fill: fill)
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            if let ticket { try? await trades.release(id: ticket) }
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the simulator could not fill the order: \(error)", key: key)
        }
    }

    // MARK: pricing

    struct Priced: Sendable {
        let usd: Decimal
        let usdPerQuote: Decimal
        /// The instrument's price, when it had to be fetched to value the order.
        let market: Decimal?
    }

    func price(_ order: OrderIntent, _ venue: any ExchangeVenue, _ base: UpstreamBase, key: AgentKeyRecord) async throws(GatewayRefusal) -> Priced {
        do {
            switch order.value {
            case .usd(let usd):
                return Priced(usd: usd, usdPerQuote: 1, market: nil)
            case .quote(let amount, let asset):
                let rate = try await usdRate(asset, order, venue, base)
                return Priced(usd: amount * rate, usdPerQuote: rate, market: nil)
            case .atMarket(let quantity, let asset):
                let rate = try await usdRate(asset, order, venue, base)
                let market = try await marketPrice(order, venue, base, key: key)
                return Priced(usd: quantity * market * rate, usdPerQuote: rate, market: market)
            case .atLeastMarket(let amount, let quantity, let asset, let maxPayoff):
                let rate = try await usdRate(asset, order, venue, base)
                let market: Decimal?
                do { market = try await marketPrice(order, venue, base, key: key) } catch {
                    guard maxPayoff != nil else { throw error }
                    market = nil  // a contract's maximum payoff bounds it instead
                }
                let value = market.map { max(amount, quantity * $0) } ?? quantity * (maxPayoff ?? 0)
                return Priced(usd: value * rate, usdPerQuote: rate, market: market)
            case .undetermined(let reason):
                throw GatewayRefusal(.forbidden, .permission, "the order's notional cannot be determined: \(reason)", key: key)
            }
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            throw GatewayRefusal(.badGateway, .upstream, "the order could not be priced from \(venue.name)'s market data: \(error)", key: key)
        }
    }

    /// USD per unit of a quote asset: 1 for USD stablecoins, otherwise the asset's USDT price.
    func usdRate(_ asset: String, _ order: OrderIntent, _ venue: any ExchangeVenue, _ base: UpstreamBase) async throws -> Decimal {
        if ExchangeRules.usdStablecoins.contains(asset) { return 1 }
        let body = try await prices.body(of: venue.priceQuery(for: order, instrument: asset + "USDT"), venue: venue.name, base: base)
        guard let rate = venue.parsePrice(body, for: order), rate > 0 else { throw VenueError("no USDT price for \(asset)") }
        return rate
    }

    func marketPrice(_ order: OrderIntent, _ venue: any ExchangeVenue, _ base: UpstreamBase, key: AgentKeyRecord) async throws -> Decimal {
        let body = try await prices.body(of: venue.priceQuery(for: order, instrument: nil), venue: venue.name, base: base)
        guard let price = venue.parsePrice(body, for: order), price > 0 else { throw VenueError("no price for \(order.instrument)") }
        return price
    }

    // MARK: checks and signing

    func requireTrade(_ key: AgentKeyRecord) throws(GatewayRefusal) {
        guard key.access == "trade" else {
            throw GatewayRefusal(.forbidden, .permission, "this agent key is read-only: it cannot place or cancel orders", key: key)
        }
    }

    func profile(_ key: AgentKeyRecord) async throws(GatewayRefusal) -> ProfileRecord {
        do { return try await profiles.get(userID: key.ownerID) } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the risk settings cannot be read", key: key)
        }
    }

    func sign(_ request: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission, _ base: UpstreamBase,
              signed: Bool) async throws(GatewayRefusal) -> TradePlan.Route {
        let secret = admission.secret
        let signing = { @Sendable () throws(VenueError) -> UpstreamRequest in
            var request = request
            try venue.sign(&request, secret: secret, signed: signed, now: Date())
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

    static func newClientOrderID() -> String {
        "wdn-" + Hex.encode((0..<12).map { _ in UInt8.random(in: 0...255) })
    }

    /// Through the decimal's text, which converts exactly where `doubleValue` leaves float noise.
    static func double(_ value: Decimal) -> Double { Double("\(value)") ?? NSDecimalNumber(decimal: value).doubleValue }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

extension Decimal {
    func rounded(places: Int) -> Decimal {
        var result = Decimal()
        var value = self
        NSDecimalRound(&result, &value, places, .down)
        return result
    }
}
