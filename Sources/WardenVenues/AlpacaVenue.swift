import Foundation
import HTTPTypes

/// Alpaca's Trading API: US stocks, and crypto pairs quoted in USD, USDT or USDC. The agent key arrives in
/// `APCA-API-KEY-ID` (or as the user of HTTP Basic); Warden sends the stored key id and secret in Alpaca's two
/// headers. Market data is served by a second host (`data.alpaca.markets`), to customers only: calls under its
/// paths go there, and orders are priced from its snapshots, read with the credential.
public struct AlpacaVenue: ExchangeVenue {
    public init() {}
    public let name = "alpaca"
    /// Live trading; a paper-trading key needs `base_url = "https://paper-api.alpaca.markets"`.
    public let defaultBaseURL = "https://api.alpaca.markets"
    public let title = "Alpaca"
    public let secretFields = ["api_key", "api_secret"]
    public var defaultMarketDataURL: String? { "https://data.alpaca.markets" }
    public var pricesNeedCredential: Bool { true }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Alpaca (alpaca-py)",
            "trading = TradingClient(\"\(key)\", \"any-secret\", url_override=\"\(proxyURL)/alpaca\")",
            "data = StockHistoricalDataClient(\"\(key)\", \"any-secret\", url_override=\"\(proxyURL)/alpaca\")",
        ]
    }

    static let keyHeader = HTTPField.Name("APCA-API-KEY-ID")!
    static let secretHeader = HTTPField.Name("APCA-API-SECRET-KEY")!
    public var inboundAuthHeaders: [HTTPField.Name] { [Self.keyHeader, Self.secretHeader, .authorization] }

    public func agentKey(in headers: HTTPFields) -> String? {
        if let key = headers[Self.keyHeader] { return key }
        guard let value = headers[.authorization], value.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(value.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        return String(pair[..<colon])
    }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[Self.keyHeader] = secret["api_key"] ?? ""
        headers[Self.secretHeader] = secret["api_secret"] ?? ""
    }

    // MARK: classification

    /// The market data host's families (stocks, crypto, news, options and screeners): reads only, crypto's public.
    static let marketDataPrefixes = ["/v2/stocks/", "/v1beta3/crypto/", "/v1beta1/"]
    public func isMarketData(_ path: String) -> Bool { Self.marketDataPrefixes.contains { path.hasPrefix($0) } }

    static let privateReads: Set<String> = [
        "/v2/account", "/v2/account/configurations", "/v2/account/activities", "/v2/account/portfolio/history", "/v2/orders",
        "/v2/orders:by_client_order_id", "/v2/positions", "/v2/assets", "/v2/clock", "/v2/calendar", "/v2/watchlists",
        "/v2/options/contracts", "/v2/corporate_actions/announcements",
    ]
    static let privateReadPatterns = [
        "/v2/account/activities/*", "/v2/orders/*", "/v2/positions/*", "/v2/assets/*", "/v2/watchlists/*",
        "/v2/options/contracts/*", "/v2/corporate_actions/announcements/*",
    ]
    /// What a path segment that moves money starts with, besides `withdraw` and `transfer` anywhere: crypto
    /// wallets, bank links, ACH, journals between accounts. The Broker API (`/v1/…`) is refused as a whole.
    static let moneyWords = ["wallet", "bank", "ach_", "journal", "funding", "deposit", "recipient"]

    static func movesFunds(_ call: ExchangeCall) -> Bool {
        let lower = call.matchingPath
        return ExchangeRules.movesFunds(call) || lower.hasPrefix("/v1/")
            || lower.split(separator: "/").contains { segment in segment == "ach" || moneyWords.contains { segment.hasPrefix($0) } }
    }

    static let orderFields: Set<String> = [
        "symbol", "qty", "notional", "side", "type", "time_in_force", "limit_price", "extended_hours", "client_order_id",
        "order_class",
        // Read only to be refused with a reason.
        "stop_price", "trail_price", "trail_percent", "take_profit", "stop_loss", "legs", "position_intent",
    ]
    static let unvalued = ["stop_price", "trail_price", "trail_percent", "take_profit", "stop_loss", "legs", "position_intent"]
    /// Fields whose JSON type matters: Foundation reads `true` and `1` alike.
    static let typedFields: Set<String> = ["qty", "notional", "limit_price", "extended_hours"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        // The market data host moves no money, and its paths hold symbols (`ACHR`, `BANK`): only reads go there.
        let marketData = isMarketData(call.path)
        if marketData, !call.isRead { return .unknown }
        if !marketData, Self.movesFunds(call) { return .fundMovement }
        if call.isRead {
            let listed =
                marketData || Self.privateReads.contains(call.path)
                || Self.privateReadPatterns.contains { ExchangeRules.matches($0, call.path) }
            guard listed else { return .unknown }
            do { _ = try FormParameters(call.query, underscores: true) } catch { return .invalid(error.description) }
            return call.path.hasPrefix("/v1beta3/crypto/") ? .publicRead : .privateRead
        }
        let cancelable = call.path == "/v2/orders" || ExchangeRules.matches("/v2/orders/*", call.path)
        switch call.method {
        case "POST" where call.path == "/v2/orders":
            guard call.query.isEmpty else { return .invalid("Alpaca's orders take their parameters in the JSON body, not the query") }
            guard JSONMembers.isStrict(call.body), let json = VenueJSON.object(call.body),
                let typed = try? JSONMembers.read(call.body, names: Self.typedFields)
            else { return .invalid("the body must be a JSON object that names each field once") }
            return order(json, typed)
        case "DELETE" where cancelable:
            return call.query.isEmpty ? .cancel : .invalid("a cancel takes no query")
        case "PATCH" where cancelable:
            return .invalid("replacing an order is not passed through Warden: cancel it and place a new one")
        case "DELETE" where call.path == "/v2/positions" || ExchangeRules.matches("/v2/positions/*", call.path):
            return .invalid("closing a position sells it at the market for a value Warden does not know: send a sell order")
        default:
            return .unknown
        }
    }

    func order(_ json: [String: Any], _ typed: [String: JSONMember]) -> CallClass {
        if let unknown = json.keys.sorted().first(where: { !Self.orderFields.contains($0) }) {
            return .invalid("unknown order field \(unknown)")
        }
        if let field = Self.unvalued.first(where: { json[$0] != nil }) {
            return .invalid("\(field) makes the order trade at a price Warden does not value; send simple market or limit orders")
        }
        if let orderClass = json["order_class"], orderClass as? String != "simple" {
            return .invalid("order_class must be simple (brackets and OCO orders are not valued)")
        }
        if let hours = typed["extended_hours"], hours.bool == nil { return .invalid("extended_hours must be true or false") }
        guard let symbol = json["symbol"] as? String, let quote = Self.quoteAsset(of: symbol) else {
            return .invalid("symbol must be an upper-case stock (AAPL, BRK.B) or a crypto pair quoted in USD, USDT or USDC (BTC/USD)")
        }
        guard let sideText = json["side"] as? String, sideText == "buy" || sideText == "sell", let side = OrderSide(rawValue: sideText)
        else { return .invalid("side must be buy or sell") }
        guard let force = json["time_in_force"] as? String, ["day", "gtc", "ioc", "fok"].contains(force) else {
            return .invalid("time_in_force must be day, gtc, ioc or fok (an auction's price is not the one Warden values)")
        }
        if let id = json["client_order_id"], (id as? String)?.utf8.count ?? 129 > 128 {
            return .invalid("client_order_id must be a string of at most 128 characters")
        }
        var numbers: [String: Decimal] = [:]
        for name in ["qty", "notional", "limit_price"] where typed[name] != nil {
            guard let member = typed[name], member.string != nil || Self.isNumber(member),
                let number = VenueJSON.decimal(json[name]), number > 0
            else { return .invalid("\(name) must be a plain decimal number above zero, as a string or a number") }
            numbers[name] = number
        }
        let value: OrderValue
        var quantity = numbers["qty"]
        switch (json["type"] as? String, numbers["qty"], numbers["notional"], numbers["limit_price"]) {
        case ("market", let qty?, nil, nil):
            value = .atMarket(quantity: qty, asset: quote)
        case ("market", nil, let amount?, nil):
            value = .quote(amount, asset: quote)
            quantity = nil
        case ("limit", let qty?, nil, let price?):
            value =
                side == .buy
                ? .quote(price * qty, asset: quote) : .atLeastMarket(amount: price * qty, quantity: qty, asset: quote, maxPayoff: nil)
        case ("market", _, _, _):
            return .invalid("a market order gives qty or notional, one of them, and no limit_price")
        case ("limit", _, _, _):
            return .invalid("a limit order gives qty and limit_price (notional is for market orders)")
        default:
            return .invalid("type must be market or limit")
        }
        var intent = OrderIntent(
            instrument: symbol, side: side, quantity: quantity, value: value, clientOrderID: json["client_order_id"] as? String)
        intent.echo = ["type": json["type"] as? String ?? "", "time_in_force": force]
        return .order(intent)
    }

    static func isNumber(_ member: JSONMember) -> Bool {
        if case .number = member { return true }
        return false
    }

    /// USD for a stock (`AAPL`, `BRK.B`); the quote of a crypto pair (`BTC/USD`).
    static func quoteAsset(of symbol: String) -> String? {
        let parts = symbol.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2 {
            let base = parts[0].utf8
            guard (1...12).contains(base.count), base.allSatisfy(ASCII.isUpperOrDigit), ["USD", "USDT", "USDC"].contains(parts[1])
            else { return nil }
            return parts[1]
        }
        let letters = { (text: String, most: Int) in
            (1...most).contains(text.utf8.count) && text.utf8.allSatisfy { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }
        }
        let classes = symbol.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard classes.count <= 2, letters(classes[0], 5), classes.count == 1 || letters(classes[1], 2) else { return nil }
        return "USD"
    }

    static func isCrypto(_ symbol: String) -> Bool { symbol.contains("/") }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        for header in inboundAuthHeaders { request.headers[header] = nil }
        guard signed else { return }
        authorize(&request.headers, secret: secret)
        if !request.body.isEmpty { request.headers[.contentType] = "application/json" }
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        try VenueJSON.order(&request, clientOrderID: order.clientOrderID == nil ? clientOrderID : nil, field: "client_order_id")
    }

    // MARK: prices and balances

    /// The instrument's snapshot on the market data host: last trade and best quote.
    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        let symbol = instrument ?? order.instrument
        let encoded = symbol.replacingOccurrences(of: "/", with: "%2F")
        return Self.isCrypto(symbol)
            ? PublicQuery(path: "/v1beta3/crypto/us/snapshots", query: "symbols=\(encoded)")
            : PublicQuery(path: "/v2/stocks/snapshots", query: "symbols=\(encoded)")
    }

    /// The highest of the last trade and the best ask and bid: a market order fills at the quote, not the last trade.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let json = VenueJSON.object(body) else { return nil }
        let snapshots = Self.isCrypto(order.instrument) ? json["snapshots"] as? [String: Any] : json
        guard let snapshot = snapshots?[order.instrument] as? [String: Any] else { return nil }
        let trade = snapshot["latestTrade"] as? [String: Any], quote = snapshot["latestQuote"] as? [String: Any]
        return [VenueJSON.decimal(trade?["p"]), VenueJSON.decimal(quote?["ap"]), VenueJSON.decimal(quote?["bp"])].compactMap { $0 }.max()
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/v2/account", query: "") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let json = VenueJSON.object(body), json["currency"] as? String == "USD", let cash = VenueJSON.decimal(json["cash"])
        else { return nil }
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let time = ISO8601DateFormatter().string(from: fill.time)
        let type = order.echo["type"] ?? "market"
        return (
            .ok,
            VenueJSON.encode([
                "id": fill.orderID, "client_order_id": fill.clientOrderID, "created_at": time, "updated_at": time,
                "submitted_at": time, "filled_at": time, "symbol": order.instrument,
                "asset_class": Self.isCrypto(order.instrument) ? "crypto" : "us_equity", "qty": "\(fill.quantity)",
                "filled_qty": "\(fill.quantity)", "filled_avg_price": "\(fill.price)", "order_class": "simple", "order_type": type,
                "type": type, "side": order.side.rawValue, "time_in_force": order.echo["time_in_force"] ?? "day", "status": "filled",
                "extended_hours": false,
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.notFound, VenueJSON.encoded(Failure(code: 40_410_000, message: "order not found (Warden dry-run: paper orders fill at once)")))
    }

    // MARK: errors

    /// Alpaca's shape, `{"code": …, "message": …}`, its code the status followed by five digits (40010001 for an
    /// invalid order, 40310000 for a forbidden one, as Alpaca numbers them).
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let code = status == .badRequest ? 40_010_001 : status.code * 100_000 + 10_000
        return ("application/json", VenueJSON.encoded(Failure(code: code, message: message)))
    }

    struct Failure: Encodable {
        let code: Int
        let message: String
    }
}
