import CryptoExtras
import Foundation
import HTTPTypes

/// Kalshi Trade API v2. The agent key arrives in `KALSHI-ACCESS-KEY`; Warden signs timestamp + method +
/// path (no query) with RSA-PSS/SHA-256 using the stored private key. Prices are cents per contract
/// (or `*_dollars` strings); a NO price is `no_price`, or 100 − `yes_price`.
public struct KalshiVenue: ExchangeVenue {
    public init() {}
    public let name = "kalshi"
    public let defaultBaseURL = "https://api.elections.kalshi.com"
    public let title = "Kalshi"
    public let secretFields = ["key_id", "private_key_pem"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        if let pem = secret["private_key_pem"], (try? _RSA.Signing.PrivateKey(pemRepresentation: pem)) == nil {
            throw SecretFieldError("private_key_pem", "is not a PEM-encoded RSA private key")
        }
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Kalshi", "config = Configuration(host=\"\(proxyURL)/kalshi/trade-api/v2\")",
            "config.api_key_id = \"\(key)\"  # and any RSA key as private_key_pem",
        ]
    }
    /// RSA-PSS with a 2048-bit key: about 1 ms per call.
    public var signsSlowly: Bool { true }
    static let keyHeader = HTTPField.Name("KALSHI-ACCESS-KEY")!
    static let timestampHeader = HTTPField.Name("KALSHI-ACCESS-TIMESTAMP")!
    static let signatureHeader = HTTPField.Name("KALSHI-ACCESS-SIGNATURE")!
    public var inboundAuthHeaders: [HTTPField.Name] { [Self.keyHeader, Self.timestampHeader, Self.signatureHeader] }

    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.keyHeader] }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[Self.keyHeader] = secret["key_id"] ?? ""
    }

    // MARK: streams

    /// Kalshi's WebSocket, its handshake signed as a GET of its path.
    public func stream(at path: String) -> StreamRoute? { path == "/trade-api/ws/v2" ? .signedHandshake : nil }

    /// The commands Kalshi's stream takes are subscriptions: none places or cancels an order. Anything
    /// else (a command Kalshi may add later) is refused until it is classified.
    static let streamCommands: Set<String> = ["subscribe", "unsubscribe", "update_subscription", "list_subscriptions"]

    public func streamCommand(_ message: Data) -> StreamCommand {
        // Read as Kalshi reads it: one object, each member named once (parsers differ on which twin they keep).
        guard JSONMembers.isStrict(message), let name = try? JSONMembers.read(message, names: ["cmd"])["cmd"]?.string else {
            return .refused(reason: "a Kalshi stream command is a JSON object naming each member once, with a cmd")
        }
        guard Self.streamCommands.contains(name) else {
            return .refused(reason: "Warden relays only Kalshi's subscription commands; \(name.prefix(64)) is not one")
        }
        return .read
    }

    /// Kalshi's stream error: `{"id":…,"type":"error","msg":{"code":…,"msg":…}}`.
    public func streamError(_ message: String, to command: Data) -> Data {
        var answer: [String: Any] = ["type": "error", "msg": ["code": 8, "msg": message]]
        if let id = VenueJSON.object(command)?["id"] as? Int { answer["id"] = id }
        return VenueJSON.encode(answer)
    }

    // MARK: classification

    static let prefix = "/trade-api/v2"
    /// Reads of Kalshi's Trade API v2, by method GET (or HEAD) and path after `/trade-api/v2`, where `*` is one
    /// segment (an id or ticker). Public ones are sent unsigned; private ones are signed with the stored key.
    /// The split follows Kalshi's OpenAPI description (the one its SDK is generated from): an endpoint it
    /// marks as authenticated is a private read.
    static let publicReads = [
        "/exchange/status", "/exchange/schedule", "/exchange/announcements", "/exchange/user_data_timestamp",
        "/markets", "/markets/*", "/markets/trades", "/markets/candlesticks",
        "/events", "/events/*", "/events/multivariate", "/events/*/metadata",
        "/series", "/series/*", "/series/fee_changes", "/series/*/markets/*/candlesticks", "/series/*/events/*/candlesticks",
        "/milestones", "/milestones/*", "/live_data/batch", "/live_data/*/milestone/*",
        "/structured_targets", "/structured_targets/*", "/multivariate_event_collections", "/multivariate_event_collections/*",
        "/multivariate_event_collections/*/lookup", "/incentive_programs", "/search/tags_by_categories", "/search/filters_by_sport",
    ]
    static let privateReads = [
        "/markets/*/orderbook", "/series/*/events/*/forecast_percentile_history",
        "/portfolio/balance", "/portfolio/positions", "/portfolio/orders", "/portfolio/orders/*", "/portfolio/orders/*/queue_position",
        "/portfolio/fills", "/portfolio/settlements", "/portfolio/summary/total_resting_order_value",
        "/portfolio/order_groups", "/portfolio/order_groups/*",
    ]

    /// Words Kalshi routes on where an order id would stand (`/portfolio/orders/batched` is the batch
    /// endpoint, not an order called "batched"): a `*` never matches them, in any case.
    static let reservedWords: Set<String> = ["batched", "queue_positions", "amend", "decrease", "queue_position"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        if ExchangeRules.movesFunds(call) { return .fundMovement }
        guard call.path.hasPrefix(Self.prefix + "/") else { return .unknown }
        let path = String(call.path.dropFirst(Self.prefix.count))
        let read = call.isRead
        func matches(_ pattern: String) -> Bool { ExchangeRules.matches(pattern, path, reserved: Self.reservedWords) }
        if read, Self.publicReads.contains(where: matches) { return .publicRead }
        if read, Self.privateReads.contains(where: matches) { return .privateRead }
        if read, matches("/portfolio/orders/queue_positions") { return .privateRead }
        if call.method == "POST", path == "/portfolio/orders" { return order(call.body) }
        // The batched cancel acts like single cancels (trade keys only, simulated in dry-run); the batched
        // create (POST) stays unknown: its orders are not priced one by one here.
        if call.method == "DELETE", path.lowercased() == "/portfolio/orders/batched" { return .cancel }
        if call.method == "DELETE", matches("/portfolio/orders/*") { return .cancel }
        if call.method == "POST", matches("/portfolio/orders/*/decrease") { return .cancel }
        return .unknown
    }

    /// The fields of Kalshi's order request; any other is refused rather than forwarded unread.
    static let orderFields: Set<String> = [
        "ticker", "client_order_id", "side", "action", "count", "type", "yes_price", "no_price", "yes_price_dollars",
        "no_price_dollars", "expiration_ts", "time_in_force", "buy_max_cost", "post_only", "reduce_only", "sell_position_floor",
        "self_trade_prevention_type", "order_group_id", "cancel_order_on_pause",
    ]

    func order(_ body: Data) -> CallClass {
        guard JSONMembers.isStrict(body), let json = VenueJSON.object(body) else {
            return .invalid("the order must be a JSON object that names each field once")
        }
        if let unknown = json.keys.sorted().first(where: { !Self.orderFields.contains($0) && !(json[$0] is NSNull) }) {
            return .invalid("unknown order field \(unknown)")
        }
        guard let ticker = json["ticker"] as? String, !ticker.isEmpty, ticker.count <= 100 else { return .invalid("ticker is required") }
        guard let action = (json["action"] as? String).flatMap(OrderSide.init(rawValue:)) else {
            return .invalid("action must be buy or sell")
        }
        guard let side = json["side"] as? String, side == "yes" || side == "no" else { return .invalid("side must be yes or no") }
        guard let count = VenueJSON.decimal(json["count"]), count > 0, count == count.rounded(), count <= 1_000_000 else {
            return .invalid("count must be a whole number of contracts from 1 to 1000000")
        }
        let cents: Decimal?
        switch Self.priceCents(json, side: side) {
        case .failure(let error): return .invalid(error.description)
        case .success(let value): cents = value
        }
        var intent = OrderIntent(
            instrument: ticker, side: action, quantity: count, value: .undetermined(""),
            clientOrderID: json["client_order_id"] as? String)
        intent.echo = ["side": side, "type": (json["type"] as? String) ?? "limit"]
        if let cents {
            guard cents >= 1, cents <= 99, cents == cents.rounded() else { return .invalid("prices are whole cents between 1 and 99") }
            intent.echo["price_cents"] = "\(cents)"
        }
        let maxCost = json["buy_max_cost"].flatMap { $0 is NSNull ? nil : $0 }
        if maxCost != nil, action == .sell { return .invalid("buy_max_cost is for buys") }
        switch action {
        case .buy:
            // A buy pays at most its limit, at most buy_max_cost, and never more than 1 USD a contract. A market
            // order's price is not taken as a bound: it fills at what the book offers.
            var worst = count
            if let cents, intent.echo["type"] != "market" { worst = min(worst, count * cents / 100) }
            if let maxCost {
                guard let limit = VenueJSON.decimal(maxCost), limit > 0 else {
                    return .invalid("buy_max_cost must be a whole number of cents")
                }
                worst = min(worst, limit / 100)
            }
            guard cents != nil || maxCost != nil || intent.echo["type"] == "market" else {
                return .invalid("a limit order needs yes_price or no_price")
            }
            intent.value = .usd(worst)
        case .sell:
            // Selling a contract one does not hold buys the other side: a sell at p is worth its proceeds (at least p,
            // up to the market) or the other side's cost (1 − p), whichever is more; a market sell up to 1 USD.
            guard let cents, intent.echo["type"] != "market" else {
                guard intent.echo["type"] == "market" else { return .invalid("a limit order needs yes_price or no_price") }
                intent.value = .usd(count)
                return .order(intent)
            }
            intent.value = .atLeastMarket(amount: count * max(cents, 100 - cents) / 100, quantity: count, asset: "USD", maxPayoff: 1)
        }
        return .order(intent)
    }

    /// The order's price for its own side, in cents: given once, as `yes_*` or `no_*` (never both), where
    /// a price and its `_dollars` twin must agree.
    static func priceCents(_ json: [String: Any], side: String) -> Result<Decimal?, VenueError> {
        var found: [(side: String, cents: Decimal)] = []
        for contract in ["yes", "no"] {
            for (field, scale) in [("\(contract)_price", Decimal(1)), ("\(contract)_price_dollars", Decimal(100))] {
                guard let raw = json[field], !(raw is NSNull) else { continue }
                guard let value = VenueJSON.decimal(raw) else { return .failure(VenueError("\(field) must be a plain number")) }
                found.append((contract, value * scale))
            }
        }
        guard let first = found.first else { return .success(nil) }
        guard found.allSatisfy({ $0.side == first.side }) else { return .failure(VenueError("give yes_price or no_price, not both")) }
        guard found.allSatisfy({ $0.cents == first.cents }) else {
            return .failure(VenueError("\(first.side)_price and \(first.side)_price_dollars disagree"))
        }
        return .success(first.side == side ? first.cents : 100 - first.cents)
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        let key: _RSA.Signing.PrivateKey
        do { key = try _RSA.Signing.PrivateKey(pemRepresentation: secret["private_key_pem"] ?? "") } catch {
            throw VenueError("the stored Kalshi private key cannot be read")
        }
        let timestamp = String(ExchangeRules.millis(now))
        let message = Data((timestamp + request.method + request.path).utf8)
        let signature: _RSA.Signing.RSASignature
        do { signature = try key.signature(for: message, padding: .PSS) } catch {
            throw VenueError("the Kalshi request could not be signed")
        }
        request.headers[Self.keyHeader] = secret["key_id"] ?? ""
        request.headers[Self.timestampHeader] = timestamp
        request.headers[Self.signatureHeader] = signature.rawRepresentation.base64EncodedString()
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        guard var json = VenueJSON.object(request.body) else { return }
        json["client_order_id"] = clientOrderID
        request.body = VenueJSON.encode(json)
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "\(Self.prefix)/markets/\(instrument ?? order.instrument)", query: "")
    }

    /// The ask for buys and the bid for sells, of the order's contract side, in USD per contract.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let market = VenueJSON.object(body)?["market"] as? [String: Any] else { return nil }
        let side = order.echo["side"] ?? "yes"
        let book = order.side == .buy ? "ask" : "bid"
        if let cents = VenueJSON.decimal(market["\(side)_\(book)"]), cents > 0 { return cents / 100 }
        if let dollars = VenueJSON.decimal(market["\(side)_\(book)_dollars"]), dollars > 0 { return dollars }
        guard let last = VenueJSON.decimal(market["last_price"]), last > 0 else { return nil }
        return side == "yes" ? last / 100 : (100 - last) / 100
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "\(Self.prefix)/portfolio/balance", query: "") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        VenueJSON.decimal(VenueJSON.object(body)?["balance"]).map { NSDecimalNumber(decimal: $0 / 100).doubleValue }
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let side = order.echo["side"] ?? "yes"
        let cents = NSDecimalNumber(decimal: (fill.price * 100).rounded()).intValue
        let yes = side == "yes" ? cents : 100 - cents
        let count = NSDecimalNumber(decimal: fill.quantity).intValue
        let time = ISO8601DateFormatter().string(from: fill.time)
        let cost = NSDecimalNumber(decimal: (fill.quoteNotional * 100).rounded()).intValue
        let fees = NSDecimalNumber(decimal: (fill.feeQuote * 100).rounded(.up)).intValue
        return (
            .created,
            VenueJSON.encode([
                "order": [
                    "order_id": fill.orderID, "user_id": "warden-paper", "client_order_id": fill.clientOrderID,
                    "ticker": order.instrument, "side": side, "action": order.side.rawValue, "type": order.echo["type"] ?? "limit",
                    "status": "executed", "yes_price": yes, "no_price": 100 - yes,
                    "yes_price_dollars": ExchangeRules.format(Decimal(yes) / 100, places: 4),
                    "no_price_dollars": ExchangeRules.format(Decimal(100 - yes) / 100, places: 4),
                    "fill_count": count, "remaining_count": 0, "initial_count": count, "queue_position": 0,
                    "taker_fill_count": count, "maker_fill_count": 0, "taker_fees": fees, "maker_fees": 0,
                    "taker_fill_cost": cost, "maker_fill_cost": 0,
                    "taker_fill_cost_dollars": ExchangeRules.format(fill.quoteNotional, places: 4), "maker_fill_cost_dollars": "0.0000",
                    "taker_fees_dollars": ExchangeRules.format(fill.feeQuote, places: 4), "maker_fees_dollars": "0.0000",
                    "created_time": time, "last_update_time": time, "expiration_time": NSNull(),
                ] as [String: Any]
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (
            .notFound,
            VenueJSON.encode(["error": ["code": "not_found", "message": "order not found (Warden dry-run: paper orders fill at once)"]])
        )
    }

    // MARK: errors

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let code: String =
            switch kind {
            case .authentication: "authentication_error"
            case .permission: "forbidden"
            case .invalidRequest: "invalid_parameters"
            case .rateLimit, .budget: "too_many_requests"
            case .upstream, .timeout, .unavailable: "service_unavailable"
            }
        return ("application/json", VenueJSON.encoded(ErrorEnvelope(error: ["code": code, "message": message, "service": "warden"])))
    }
}

extension Decimal {
    func rounded(_ mode: NSDecimalNumber.RoundingMode = .plain) -> Decimal {
        var result = Decimal()
        var value = self
        NSDecimalRound(&result, &value, 0, mode)
        return result
    }
}
