import Crypto
import Foundation
import WardenCrypto
import HTTPTypes

/// Binance Spot. The agent key arrives in `X-MBX-APIKEY`; signed calls carry `signature` = hex
/// HMAC-SHA256 of the query string followed by the form body (without the signature itself), computed
/// here on the exact bytes forwarded. Parameters may be in the query (ccxt) or the body (python-binance).
public struct BinanceVenue: ExchangeVenue {
    public init() {}
    public let name = "binance"
    public let defaultBaseURL = "https://api.binance.com"
    public let title = "Binance"
    public let secretFields = ["api_key", "api_secret"]

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Binance (python-binance)", "client = Client(\"\(key)\", \"any-secret\", ping=False)",
            "client.API_URL = \"\(proxyURL)/binance/api\"",
        ]
    }
    static let apiKeyHeader = HTTPField.Name("X-MBX-APIKEY")!
    public var inboundAuthHeaders: [HTTPField.Name] { [Self.apiKeyHeader] }

    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.apiKeyHeader] }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[Self.apiKeyHeader] = secret["api_key"] ?? ""
    }

    /// Market streams (`/ws/<streams>`, `/stream?streams=…`) on Binance's stream host: public. The
    /// WebSocket API (`/ws-api/v3`) on its own host: requests taken as their REST twins.
    public func stream(at path: String) -> StreamRoute? {
        if path == Self.webSocketAPIPath { return .requests }
        return path == "/stream" || path.hasPrefix("/ws/") || path == "/ws" ? .marketData : nil
    }
    static let webSocketAPIPath = "/ws-api/v3"
    public func defaultStreamURL(for path: String) -> String? {
        path == Self.webSocketAPIPath ? "wss://ws-api.binance.com:443" : "wss://stream.binance.com:9443"
    }

    // MARK: classification

    static let publicReads: Set<String> = [
        "/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/depth", "/api/v3/trades", "/api/v3/historicalTrades",
        "/api/v3/aggTrades", "/api/v3/klines", "/api/v3/uiKlines", "/api/v3/avgPrice", "/api/v3/ticker/24hr",
        "/api/v3/ticker/tradingDay", "/api/v3/ticker/price", "/api/v3/ticker/bookTicker", "/api/v3/ticker",
    ]
    static let privateReads: Set<String> = [
        "/api/v3/account", "/api/v3/order", "/api/v3/openOrders", "/api/v3/allOrders", "/api/v3/myTrades",
        "/api/v3/rateLimit/order", "/api/v3/myPreventedMatches", "/api/v3/myAllocations", "/api/v3/account/commission",
        "/api/v3/orderList", "/api/v3/allOrderList", "/api/v3/openOrderList",
    ]
    /// Binance's `/sapi` endpoints that Warden lets through, one by one: method and exact path, each with
    /// the security type Binance's API reference gives it. Only GET is listed (HEAD is read as GET): a POST,
    /// PUT or DELETE on the same path is never read. MARKET_DATA endpoints need the API key only, USER_DATA
    /// ones a signature too; Warden signs both, which replaces the signature the agent's SDK made with its
    /// own secret (Binance accepts a signature on a MARKET_DATA call). Whatever is not here stays refused:
    /// fund movement inside the money families below, unknown elsewhere.
    static let sapiReads: [SapiRead] = [
        //   path                                        class          Binance's name (security type)
        .init("/sapi/v1/system/status", .publicRead),  // System Status (NONE)
        // Wallet: coins, deposits and withdrawals, read only
        .init("/sapi/v1/capital/config/getall", .privateRead),  // All Coins' Information (USER_DATA)
        .init("/sapi/v1/capital/deposit/hisrec", .privateRead),  // Deposit History (USER_DATA)
        .init("/sapi/v1/capital/deposit/address", .privateRead),  // Deposit Address (USER_DATA)
        .init("/sapi/v1/capital/withdraw/history", .privateRead),  // Withdraw History (USER_DATA)
        .init("/sapi/v1/asset/assetDetail", .privateRead),  // Asset Detail (USER_DATA)
        .init("/sapi/v1/asset/tradeFee", .privateRead),  // Trade Fee (USER_DATA)
        .init("/sapi/v1/asset/assetDividend", .privateRead),  // Asset Dividend Record (USER_DATA)
        .init("/sapi/v1/asset/dribblet", .privateRead),  // Dust Log (USER_DATA)
        .init("/sapi/v1/accountSnapshot", .privateRead),  // Daily Account Snapshot (USER_DATA)
        .init("/sapi/v1/account/status", .privateRead),  // Account Status (USER_DATA)
        .init("/sapi/v1/account/apiTradingStatus", .privateRead),  // Account API Trading Status (USER_DATA)
        .init("/sapi/v1/account/apiRestrictions", .privateRead),  // Get API Key Permission (USER_DATA)
        // Margin: reference data and the account's own records, read only
        .init("/sapi/v1/margin/allPairs", .privateRead),  // Get All Cross Margin Pairs (MARKET_DATA)
        .init("/sapi/v1/margin/allAssets", .privateRead),  // Get All Margin Assets (MARKET_DATA)
        .init("/sapi/v1/margin/pair", .privateRead),  // Query Cross Margin Pair (MARKET_DATA)
        .init("/sapi/v1/margin/asset", .privateRead),  // Query Margin Asset (MARKET_DATA)
        .init("/sapi/v1/margin/priceIndex", .privateRead),  // Query Margin PriceIndex (MARKET_DATA)
        .init("/sapi/v1/margin/isolated/allPairs", .privateRead),  // Get All Isolated Margin Symbol (USER_DATA)
        .init("/sapi/v1/margin/isolated/pair", .privateRead),  // Query Isolated Margin Symbol (USER_DATA)
        .init("/sapi/v1/margin/account", .privateRead),  // Query Cross Margin Account Details (USER_DATA)
        .init("/sapi/v1/margin/isolated/account", .privateRead),  // Query Isolated Margin Account Info (USER_DATA)
        .init("/sapi/v1/margin/crossMarginData", .privateRead),  // Query Cross Margin Fee Data (USER_DATA)
        .init("/sapi/v1/margin/interestHistory", .privateRead),  // Get Interest History (USER_DATA)
        .init("/sapi/v1/margin/interestRateHistory", .privateRead),  // Query Margin Interest Rate History (USER_DATA)
        .init("/sapi/v1/margin/openOrders", .privateRead),  // Query Margin Account's Open Orders (USER_DATA)
        .init("/sapi/v1/margin/allOrders", .privateRead),  // Query Margin Account's All Orders (USER_DATA)
        .init("/sapi/v1/margin/order", .privateRead),  // Query Margin Account's Order (USER_DATA)
        .init("/sapi/v1/margin/myTrades", .privateRead),  // Query Margin Account's Trade List (USER_DATA)
    ]

    /// A `/sapi` read: GET (or HEAD) on exactly this path.
    struct SapiRead {
        let path: String
        let access: Access
        enum Access { case publicRead, privateRead }
        init(_ path: String, _ access: Access) {
            self.path = path
            self.access = access
        }
    }

    static let sapiReadClasses: [String: CallClass] = Dictionary(
        uniqueKeysWithValues: sapiReads.map {
            ($0.path, $0.access == .publicRead ? CallClass.publicRead : .privateRead)
        })

    /// The `/sapi` families that hold money: wallet and withdrawals, universal transfers, sub-accounts, pay and
    /// gift cards, loans and margin borrowing, futures transfers, convert, earn products, staking, fiat,
    /// mining payouts, NFTs, brokers, account settings and snapshots (BNB burn included). Any call into one of them (the segment after
    /// `/sapi/vN/`, compared lower-case) that is not a listed read is fund movement; so is anything on the
    /// retired `/wapi`. A `/sapi` family not named here is unknown.
    static let moneyFamilies: Set<String> = [
        "capital", "asset", "sub-account", "managed-subaccount", "pay", "giftcard", "localentity", "loan", "vip-loan",
        "margin", "futures", "convert", "simple-earn", "staking", "eth-staking", "sol-staking", "lending", "bswap", "dci",
        "portfolio", "fiat", "mining", "blvt", "nft", "broker", "account", "accountsnapshot", "bnbburn",
    ]

    /// Whether a `/sapi` (or `/wapi`) path names a money family in any of its segments, compared lower-case
    /// and without a format suffix (`margin.json`), so no spelling of a money call (versionless, doubled,
    /// suffixed) falls out of its family into the unknown class an operator's rule may open.
    static func inMoneyFamily(_ call: ExchangeCall) -> Bool {
        let segments = call.matchingPath.split(separator: "/", omittingEmptySubsequences: true)
            .map { String($0.split(separator: ".", maxSplits: 1).first ?? "").lowercased() }
        guard let root = segments.first else { return false }
        if root == "wapi" { return true }
        return root == "sapi" && segments.dropFirst().contains { moneyFamilies.contains($0) || $0 == "wapi" }
    }

    static let orderParameters: Set<String> = [
        "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price", "newClientOrderId", "strategyId",
        "strategyType", "stopPrice", "trailingDelta", "icebergQty", "newOrderRespType", "selfTradePreventionMode",
        "pegPriceType", "pegOffsetValue", "pegOffsetType", "recvWindow", "timestamp", "signature",
    ]
    static let pricedTypes: Set<String> = ["LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"]
    /// Quote assets by suffix, longest first so `FDUSD` wins over `USD`.
    static let quoteAssets = [
        "FDUSD", "USDT", "USDC", "TUSD", "BUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
        "BRL", "JPY", "GBP", "AUD", "XRP", "TRX", "DOGE", "SOL", "USD",
    ]
    .sorted { $0.count > $1.count }

    public func classify(_ call: ExchangeCall) -> CallClass {
        let read = call.isRead
        // A listed `/sapi` read, in its exact spelling, is a read even where its path names a withdrawal
        // (withdraw history); any other spelling or method falls through to the fund-movement rules.
        let listedRead = read ? Self.sapiReadClasses[call.path] : nil
        if listedRead == nil, ExchangeRules.movesFunds(call) || Self.inMoneyFamily(call) {
            return .fundMovement
        }
        let query: FormParameters, body: FormParameters
        do {
            query = try FormParameters(call.query)
            body = try FormParameters(call.body.isEmpty ? "" : String(decoding: call.body, as: UTF8.self))
        } catch { return .invalid(error.description) }
        if let name = query.duplicate(with: body) { return .invalid("parameter \(name) appears more than once") }
        if let listedRead { return listedRead }
        switch (call.method, call.path) {
        case (_, let path) where read && Self.publicReads.contains(path): return .publicRead
        case (_, let path) where read && Self.privateReads.contains(path): return .privateRead
        case ("POST", "/api/v3/order/test"): return .privateRead  // validated by the venue, never placed
        // A listen key for the user data stream: keyed but unsigned at Binance (USER_STREAM), so sent as a public
        // read is, with the real API key and no signature; it opens nothing but a stream of the account's events.
        case ("POST", "/api/v3/userDataStream"), ("PUT", "/api/v3/userDataStream"), ("DELETE", "/api/v3/userDataStream"):
            return .publicRead
        case ("POST", "/api/v3/order"): return order(query: query, body: body)
        case ("DELETE", "/api/v3/order"): return .cancel
        default: return .unknown
        }
    }

    func order(query: FormParameters, body: FormParameters) -> CallClass {
        let all = query.pairs + body.pairs
        if let unknown = all.first(where: { !Self.orderParameters.contains($0.name) }) {
            return .invalid("unknown order parameter \(unknown.name)")
        }
        func value(_ name: String) -> String? { all.first { $0.name == name }?.value }
        guard let symbol = value("symbol"), (2...20).contains(symbol.utf8.count), symbol.utf8.allSatisfy(ASCII.isUpperOrDigit) else {
            return .invalid("symbol must be an upper-case trading pair such as BTCUSDT")
        }
        guard let sideText = value("side"), let side = OrderSide(rawValue: sideText.lowercased()), sideText == sideText.uppercased() else {
            return .invalid("side must be BUY or SELL")
        }
        var numbers: [String: Decimal] = [:]
        for name in ["quantity", "quoteOrderQty", "price", "stopPrice", "icebergQty"] {
            guard let text = value(name) else { continue }
            guard let number = ExchangeRules.decimal(text), number > 0 else {
                return .invalid("\(name) must be a plain decimal number above zero")
            }
            numbers[name] = number
        }
        let type = value("type") ?? ""
        // Fields that contradict each other are refused, never resolved by picking one.
        if numbers["quoteOrderQty"] != nil, numbers["quantity"] != nil {
            return .invalid("quantity and quoteOrderQty cannot both be given")
        }
        if numbers["quoteOrderQty"] != nil, type != "MARKET" {
            return .invalid("quoteOrderQty is only for MARKET orders")
        }
        if numbers["price"] != nil, !Self.pricedTypes.contains(type) {
            return .invalid("price is only for limit orders")
        }
        // A pegged order trades at the book's price, not at `price`: Warden does not value it.
        if value("pegPriceType") != nil || value("pegOffsetValue") != nil || value("pegOffsetType") != nil {
            return .invalid("pegged orders are not priced by Warden")
        }
        let quote = Self.quoteAsset(of: symbol)
        let orderValue: OrderValue
        switch (type, quote) {
        case (_, nil): orderValue = .undetermined("the quote asset of \(symbol) is not one Warden can price")
        case (let t, let asset?) where Self.pricedTypes.contains(t):
            if let price = numbers["price"], let quantity = numbers["quantity"] {
                // A buy never pays more than its limit; a sell below the market fills at the market.
                orderValue =
                    side == .buy
                    ? .quote(price * quantity, asset: asset)
                    : .atLeastMarket(amount: price * quantity, quantity: quantity, asset: asset, maxPayoff: nil)
            } else {
                orderValue = .undetermined("a \(t) order needs price and quantity")
            }
        case ("MARKET", let asset?):
            if let amount = numbers["quoteOrderQty"] {
                orderValue = .quote(amount, asset: asset)
            } else if let quantity = numbers["quantity"] {
                orderValue = .atMarket(quantity: quantity, asset: asset)
            } else {
                orderValue = .undetermined("a MARKET order needs quantity or quoteOrderQty")
            }
        default: orderValue = .undetermined("orders of type \(type.isEmpty ? "(none)" : type) are not priced by Warden")
        }
        var intent = OrderIntent(
            instrument: symbol, side: side, quantity: numbers["quantity"], value: orderValue,
            clientOrderID: value("newClientOrderId"))
        intent.echo = ["type": type, "timeInForce": value("timeInForce") ?? "GTC", "quote": quote ?? ""]
        return .order(intent)
    }

    static func quoteAsset(of symbol: String) -> String? {
        quoteAssets.first { symbol.hasSuffix($0) && symbol.count > $0.count }
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        request.headers[Self.apiKeyHeader] = secret["api_key"] ?? ""
        // Binance reads a body as a form whatever the agent called it: so does Warden, and says so upstream.
        if !request.body.isEmpty { request.headers[.contentType] = "application/x-www-form-urlencoded" }
        // The agent's own signature never goes upstream, in any case of its name.
        var query = try FormParameters(request.query).raw(removingFolded: "signature")
        var body = try FormParameters(String(decoding: request.body, as: UTF8.self)).raw(removingFolded: "signature")
        guard signed else {
            request.query = query
            request.body = Data(body.utf8)
            return
        }
        if (try FormParameters(query + "&" + body))["timestamp"] == nil {
            query += (query.isEmpty ? "" : "&") + "timestamp=\(ExchangeRules.millis(now))"
        }
        let key = SymmetricKey(data: Data((secret["api_secret"] ?? "").utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Data((query + body).utf8), using: key)
        let signature = "signature=" + Hex.encode(mac)
        if body.isEmpty {
            query += (query.isEmpty ? "" : "&") + signature
        } else {
            body += "&" + signature
        }
        request.query = query
        request.body = Data(body.utf8)
    }

    /// The agent's `timestamp` (and its signature) would be stale: signing adds a fresh one.
    public func refreshForDelayedSend(_ request: inout UpstreamRequest) throws(VenueError) {
        request.query = try FormParameters(request.query).raw(removing: ["signature", "timestamp"])
        request.body = Data(
            try FormParameters(String(decoding: request.body, as: UTF8.self)).raw(removing: ["signature", "timestamp"]).utf8)
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        guard order.clientOrderID == nil else { return }
        let parameter = "newClientOrderId=\(clientOrderID)"
        if request.body.isEmpty {
            request.query += (request.query.isEmpty ? "" : "&") + parameter
        } else {
            request.body += Data(("&" + parameter).utf8)
        }
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "/api/v3/ticker/price", query: "symbol=\(instrument ?? order.instrument)")
    }

    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        VenueJSON.decimal(VenueJSON.object(body)?["price"])
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/api/v3/account", query: "recvWindow=5000") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let balances = VenueJSON.object(body)?["balances"] as? [[String: Any]] else { return nil }
        let cash = balances.filter { ExchangeRules.usdStablecoins.contains(($0["asset"] as? String) ?? "") }
            .compactMap { VenueJSON.decimal($0["free"]) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let quote = order.echo["quote"] ?? "USDT"
        let quantity = ExchangeRules.format(fill.quantity, places: 8)
        let price = ExchangeRules.format(fill.price, places: 8)
        let type = order.echo["type"] ?? "MARKET"
        return (
            .ok,
            VenueJSON.encode([
                "symbol": order.instrument, "orderId": fill.number, "orderListId": -1, "clientOrderId": fill.clientOrderID,
                "transactTime": ExchangeRules.millis(fill.time), "price": type == "MARKET" ? "0.00000000" : price,
                "origQty": quantity, "executedQty": quantity,
                "cummulativeQuoteQty": ExchangeRules.format(fill.quoteNotional, places: 8), "status": "FILLED",
                "timeInForce": order.echo["timeInForce"] ?? "GTC", "type": type, "side": order.side.rawValue.uppercased(),
                "workingTime": ExchangeRules.millis(fill.time), "selfTradePreventionMode": "NONE",
                "fills": [
                    [
                        "price": price, "qty": quantity, "commission": ExchangeRules.format(fill.feeQuote, places: 8),
                        "commissionAsset": quote, "tradeId": fill.number,
                    ]
                ],
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.badRequest, VenueJSON.encode(["code": -2011, "msg": "Unknown order sent. (Warden dry-run: paper orders fill at once)"]))
    }

    // MARK: errors

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let code: Int =
            switch kind {
            case .authentication: -2015
            case .permission: -2010
            case .invalidRequest: -1102
            case .rateLimit, .budget: -1003
            case .upstream, .unavailable: -1001
            case .timeout: -1007
            }
        return ("application/json", VenueJSON.encoded(Failure(code: code, msg: message)))
    }

    /// Binance's error shape.
    struct Failure: Encodable {
        let code: Int
        let msg: String
    }
}
