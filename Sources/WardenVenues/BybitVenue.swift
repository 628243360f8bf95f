import Crypto
import Foundation
import HTTPTypes
import WardenCrypto

/// Bybit's v5 API, spot and USDT/USDC linear perpetuals. The agent key arrives in `X-BAPI-API-KEY`; Warden
/// signs with `X-BAPI-SIGN` = hex HMAC-SHA256 of timestamp + API key + receive window + the query string
/// (GET) or the raw JSON body (POST), with a fresh `X-BAPI-TIMESTAMP`. Bybit answers its own errors with
/// HTTP 200 and a non-zero `retCode`, and its SDKs read nothing else: Warden's refusals take that shape too.
public struct BybitVenue: ExchangeVenue {
    public init() {}
    public let name = "bybit"
    public let defaultBaseURL = "https://api.bybit.com"
    public let title = "Bybit"
    public let secretFields = ["api_key", "api_secret"]

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Bybit (pybit)", "session = HTTP(api_key=\"\(key)\", api_secret=\"any-secret\")",
            "session.endpoint = \"\(proxyURL)/bybit\"",
        ]
    }

    static let keyHeader = HTTPField.Name("X-BAPI-API-KEY")!
    static let signHeader = HTTPField.Name("X-BAPI-SIGN")!
    static let signTypeHeader = HTTPField.Name("X-BAPI-SIGN-TYPE")!
    static let timestampHeader = HTTPField.Name("X-BAPI-TIMESTAMP")!
    static let windowHeader = HTTPField.Name("X-BAPI-RECV-WINDOW")!
    public var inboundAuthHeaders: [HTTPField.Name] {
        [Self.keyHeader, Self.signHeader, Self.signTypeHeader, Self.timestampHeader, Self.windowHeader]
    }
    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.keyHeader] }

    /// `GET /v5/user/query-api` describes the key it is signed with, `apiKey` included (ccxt reads it for the
    /// account's kind).
    public func echoesCredential(_ call: ExchangeCall) -> Bool { call.path == "/v5/user/query-api" }
    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) { headers[Self.keyHeader] = secret["api_key"] ?? "" }

    // MARK: classification

    static let publicReads: Set<String> = [
        "/v5/market/time", "/v5/market/kline", "/v5/market/mark-price-kline", "/v5/market/index-price-kline",
        "/v5/market/premium-index-price-kline", "/v5/market/instruments-info", "/v5/market/orderbook", "/v5/market/tickers",
        "/v5/market/funding/history", "/v5/market/recent-trade", "/v5/market/open-interest", "/v5/market/historical-volatility",
        "/v5/market/insurance", "/v5/market/risk-limit", "/v5/market/delivery-price", "/v5/market/account-ratio",
        "/v5/announcements/index", "/v5/spot-margin-trade/data",
    ]
    static let privateReads: Set<String> = [
        "/v5/order/realtime", "/v5/order/history", "/v5/execution/list", "/v5/position/list", "/v5/position/closed-pnl",
        "/v5/account/wallet-balance", "/v5/account/fee-rate", "/v5/account/info", "/v5/account/transaction-log",
        "/v5/account/collateral-info", "/v5/order/spot-borrow-check", "/v5/user/query-api", "/v5/asset/coin/query-info",
        "/v5/account/borrow-history", "/v5/account/query-dcp-info",
    ]
    static let cancels: Set<String> = ["/v5/order/cancel", "/v5/order/cancel-all", "/v5/order/cancel-batch"]
    /// Families that move money or grant authority (transfers, withdrawals, conversions, sub-accounts and their
    /// keys, loans, brokers): any call into one that is not a listed read is fund movement.
    static let moneyFamilies: Set<String> = ["asset", "user", "ins-loan", "crypto-loan", "lending", "broker", "earn", "affiliate"]

    static let orderFields: Set<String> = [
        "category", "symbol", "side", "orderType", "qty", "price", "marketUnit", "timeInForce", "orderLinkId", "reduceOnly",
        "closeOnTrigger", "positionIdx", "smpType", "isLeverage", "orderFilter",
        // Read only to be refused with a reason.
        "triggerPrice", "triggerDirection", "triggerBy", "takeProfit", "stopLoss", "tpTriggerBy", "slTriggerBy", "tpslMode",
        "tpLimitPrice", "slLimitPrice", "tpOrderType", "slOrderType", "bboSideType", "bboLevel", "orderIv", "mmp",
        "slippageToleranceType", "slippageTolerance",
    ]
    static let unvalued = [
        "triggerPrice", "takeProfit", "stopLoss", "tpLimitPrice", "slLimitPrice", "bboSideType", "bboLevel", "orderIv",
        "slippageToleranceType", "slippageTolerance",
    ]
    static let leverageFields: Set<String> = ["category", "symbol", "buyLeverage", "sellLeverage"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        let segments = call.matchingPath.split(separator: "/")
        if ExchangeRules.movesFunds(call)
            || (segments.count > 1 && Self.moneyFamilies.contains(String(segments[1]))
                && !(call.isRead && Self.privateReads.contains(call.path)))
        {
            return .fundMovement
        }
        if call.isRead {
            do { _ = try FormParameters(call.query, underscores: true) } catch { return .invalid(error.description) }
            if Self.publicReads.contains(call.path) { return .publicRead }
            return Self.privateReads.contains(call.path) ? .privateRead : .unknown
        }
        guard call.method == "POST" else { return .unknown }
        let known = call.path == "/v5/order/create" || call.path == "/v5/position/set-leverage" || Self.cancels.contains(call.path)
        guard known else { return .unknown }
        guard call.query.isEmpty else { return .invalid("Bybit's POST calls take their parameters in the JSON body, not the query") }
        guard JSONMembers.isStrict(call.body), let json = VenueJSON.object(call.body),
            let typed = try? JSONMembers.read(call.body, names: Self.typedFields)
        else {
            return .invalid("the body must be a JSON object that names each field once")
        }
        switch call.path {
        case "/v5/order/create": return order(json, typed)
        case "/v5/position/set-leverage": return leverage(json)
        default: return .cancel
        }
    }

    /// Fields whose JSON type matters (Foundation reads `0`, `false` and `"0"` alike).
    static let typedFields: Set<String> = ["isLeverage", "reduceOnly", "closeOnTrigger", "positionIdx"]

    func order(_ json: [String: Any], _ typed: [String: JSONMember]) -> CallClass {
        if let unknown = json.keys.sorted().first(where: { !Self.orderFields.contains($0) }) {
            return .invalid("unknown order field \(unknown)")
        }
        if let field = Self.unvalued.first(where: { json[$0] != nil }) {
            return .invalid("\(field) makes the order trade at a price Warden does not value; send Limit or Market orders alone")
        }
        if let filter = json["orderFilter"], filter as? String != "Order" { return .invalid("orderFilter must be Order") }
        if let margin = typed["isLeverage"], margin.integer != 0 {
            return .invalid("spot margin orders (isLeverage) are not passed through Warden")
        }
        for flag in ["reduceOnly", "closeOnTrigger"] where typed[flag] != nil && typed[flag]?.bool == nil {
            return .invalid("\(flag) must be true or false")
        }
        if let index = typed["positionIdx"], ![0, 1, 2].contains(index.integer) { return .invalid("positionIdx must be 0, 1 or 2") }
        guard let category = json["category"] as? String, category == "spot" || category == "linear" else {
            return .invalid("category must be spot or linear")
        }
        guard let symbol = json["symbol"] as? String, let quote = Self.quoteAsset(of: symbol, category: category) else {
            return .invalid(
                "symbol must be an upper-case \(json["category"] as? String ?? "") symbol quoted in USDT or USDC, such as BTCUSDT")
        }
        guard let sideText = json["side"] as? String, let side = OrderSide(rawValue: sideText.lowercased()),
            sideText == sideText.capitalized
        else { return .invalid("side must be Buy or Sell") }
        var numbers: [String: Decimal] = [:]
        for name in ["qty", "price"] where json[name] != nil {
            guard let text = json[name] as? String, let number = ExchangeRules.decimal(text), number > 0 else {
                return .invalid("\(name) must be a string holding a plain decimal number above zero")
            }
            numbers[name] = number
        }
        guard let qty = numbers["qty"] else { return .invalid("qty is required") }
        let unit = json["marketUnit"]
        guard unit == nil || (category == "spot" && (unit as? String == "baseCoin" || unit as? String == "quoteCoin")) else {
            return .invalid("marketUnit must be baseCoin or quoteCoin, on spot orders only")
        }
        let value: OrderValue
        var quantity: Decimal? = qty
        switch json["orderType"] as? String {
        case "Limit":
            guard let price = numbers["price"], unit == nil else { return .invalid("a Limit order needs price, and no marketUnit") }
            value =
                side == .buy
                ? .quote(price * qty, asset: quote) : .atLeastMarket(amount: price * qty, quantity: qty, asset: quote, maxPayoff: nil)
        case "Market":
            guard numbers["price"] == nil else { return .invalid("price is only for Limit orders") }
            // A spot market buy counts qty in the quote coin unless it says otherwise; a sell in the base coin.
            let inQuote = category == "spot" && (unit as? String ?? (side == .buy ? "quoteCoin" : "baseCoin")) == "quoteCoin"
            value = inQuote ? .quote(qty, asset: quote) : .atMarket(quantity: qty, asset: quote)
            if inQuote { quantity = nil }  // an amount of the quote coin, not a quantity of the instrument
        default:
            return .invalid("orderType must be Limit or Market")
        }
        var intent = OrderIntent(
            instrument: symbol, side: side, quantity: quantity, value: value, clientOrderID: json["orderLinkId"] as? String)
        intent.echo = ["category": category, "orderType": json["orderType"] as? String ?? ""]
        return .order(intent)
    }

    func leverage(_ json: [String: Any]) -> CallClass {
        if let unknown = json.keys.sorted().first(where: { !Self.leverageFields.contains($0) }) {
            return .invalid("unknown leverage field \(unknown)")
        }
        guard json["category"] as? String == "linear" else { return .invalid("category must be linear") }
        guard let symbol = json["symbol"] as? String, Self.quoteAsset(of: symbol, category: "linear") != nil else {
            return .invalid("symbol must be an upper-case linear perpetual such as BTCUSDT")
        }
        var highest = Decimal(0)
        for side in ["buyLeverage", "sellLeverage"] {
            guard let text = json[side] as? String, let value = ExchangeRules.decimal(text), value >= 1 else {
                return .invalid("\(side) must be a string holding a plain decimal number from 1 up")
            }
            highest = max(highest, value)
        }
        return .leverage(LeverageChange(instrument: symbol, leverage: highest))
    }

    /// The quote of a spot pair or linear perpetual Warden values: USDT or USDC (`BTCPERP` is BTC in USDC).
    static func quoteAsset(of symbol: String, category: String) -> String? {
        guard (5...24).contains(symbol.utf8.count), symbol.utf8.allSatisfy(ASCII.isUpperOrDigit) else { return nil }
        if category == "linear", symbol.hasSuffix("PERP"), symbol.count > 4 { return "USDC" }
        return ["USDT", "USDC"].first { symbol.hasSuffix($0) && symbol.count > $0.count }
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        for header in inboundAuthHeaders { request.headers[header] = nil }
        guard signed else { return }
        let key = secret["api_key"] ?? "", timestamp = String(ExchangeRules.millis(now)), window = "5000"
        let payload = request.method == "GET" || request.method == "HEAD" ? request.query : String(decoding: request.body, as: UTF8.self)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data((timestamp + key + window + payload).utf8), using: SymmetricKey(data: Data((secret["api_secret"] ?? "").utf8)))
        request.headers[Self.keyHeader] = key
        request.headers[Self.signHeader] = Hex.encode(mac)
        request.headers[Self.signTypeHeader] = "2"
        request.headers[Self.timestampHeader] = timestamp
        request.headers[Self.windowHeader] = window
        if !request.body.isEmpty { request.headers[.contentType] = "application/json" }
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        try VenueJSON.order(&request, clientOrderID: order.clientOrderID == nil ? clientOrderID : nil, field: "orderLinkId")
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(
            path: "/v5/market/tickers", query: "category=\(order.echo["category"] ?? "spot")&symbol=\(instrument ?? order.instrument)")
    }

    /// The highest of the last trade, the best ask and bid, and (for perpetuals) the mark price.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let result = VenueJSON.object(body)?["result"] as? [String: Any], let list = result["list"] as? [[String: Any]],
            list.count == 1
        else { return nil }
        return ["lastPrice", "ask1Price", "bid1Price", "markPrice"].compactMap { VenueJSON.decimal(list[0][$0]) }.max()
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/v5/account/wallet-balance", query: "accountType=UNIFIED") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let json = VenueJSON.object(body), json["retCode"] as? Int == 0, let result = json["result"] as? [String: Any],
            let list = result["list"] as? [[String: Any]], let coins = list.first?["coin"] as? [[String: Any]]
        else { return nil }
        let cash = coins.filter { ExchangeRules.usdStablecoins.contains(($0["coin"] as? String) ?? "") }
            .compactMap { VenueJSON.decimal($0["walletBalance"]) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    static func answer(_ result: [String: Any]) -> Data {
        VenueJSON.encode([
            "retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": [String: Any](), "time": ExchangeRules.millis(Date()),
        ])
    }

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        (.ok, Self.answer(["orderId": fill.orderID, "orderLinkId": fill.clientOrderID]))
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.ok, VenueJSON.encoded(Failure(retCode: 110001, retMsg: "Order does not exist. (Warden dry-run: paper orders fill at once)")))
    }

    public func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data) {
        (.ok, Self.answer([:]))
    }

    // MARK: errors

    /// Bybit's shape, `{"retCode": …, "retMsg": …}`. Its SDKs read a refusal only from a 200 answer (any other
    /// status is "HTTP status code is not 200"), so Warden's refusals keep Bybit's 200.
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let code =
            switch kind {
            case .authentication: 10003
            case .permission: 10005
            case .invalidRequest: 10001
            case .rateLimit, .budget: 10018
            case .upstream, .unavailable, .timeout: 10016
            }
        return ("application/json", VenueJSON.encoded(Failure(retCode: code, retMsg: message)))
    }

    public var refusalStatus: HTTPResponse.Status? { .ok }

    struct Failure: Encodable {
        let retCode: Int
        let retMsg: String
        var result: [String: String] = [:]
    }
}
