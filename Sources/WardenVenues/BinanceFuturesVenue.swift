import Foundation
import HTTPTypes

/// Binance USDⓈ-M futures (`/fapi`): perpetual contracts margined in USDT or USDC. Keys and signatures are
/// Binance's own (the agent key in `X-MBX-APIKEY`, HMAC-SHA256 over the query and form body), so signing,
/// refreshing and errors are Spot's. An order is worth its notional, quantity × price (the mark price for a
/// market order or a sell that may fill above its limit), never the margin it takes; leverage changes are
/// held under the owner's `max_leverage`. Transfers to and from the futures wallet are `/sapi` calls: fund
/// movement, refused always.
public struct BinanceFuturesVenue: ExchangeVenue {
    public init() {}
    public let name = "binance-futures"
    public let defaultBaseURL = "https://fapi.binance.com"
    public let title = "Binance USDⓈ-M futures"
    public let secretFields = ["api_key", "api_secret"]
    /// Binance's request format and signature, shared with Spot.
    let spot = BinanceVenue()

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Binance USDⓈ-M futures (python-binance)", "client = Client(\"\(key)\", \"any-secret\", ping=False)",
            "client.FUTURES_URL = \"\(proxyURL)/binance-futures/fapi\"",
        ]
    }

    public var inboundAuthHeaders: [HTTPField.Name] { spot.inboundAuthHeaders }
    public func agentKey(in headers: HTTPFields) -> String? { spot.agentKey(in: headers) }
    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) { spot.authorize(&headers, secret: secret) }

    // MARK: classification

    static let publicReads: Set<String> = [
        "/fapi/v1/ping", "/fapi/v1/time", "/fapi/v1/exchangeInfo", "/fapi/v1/depth", "/fapi/v1/trades",
        "/fapi/v1/historicalTrades", "/fapi/v1/aggTrades", "/fapi/v1/klines", "/fapi/v1/continuousKlines",
        "/fapi/v1/indexPriceKlines", "/fapi/v1/markPriceKlines", "/fapi/v1/premiumIndexKlines", "/fapi/v1/premiumIndex",
        "/fapi/v1/fundingRate", "/fapi/v1/fundingInfo", "/fapi/v1/ticker/24hr", "/fapi/v1/ticker/price", "/fapi/v2/ticker/price",
        "/fapi/v1/ticker/bookTicker", "/fapi/v1/openInterest", "/fapi/v1/constituents", "/fapi/v1/indexInfo",
        "/fapi/v1/assetIndex",
    ]
    static let privateReads: Set<String> = [
        "/fapi/v1/order", "/fapi/v1/openOrder", "/fapi/v1/openOrders", "/fapi/v1/allOrders", "/fapi/v1/userTrades",
        "/fapi/v2/account", "/fapi/v3/account", "/fapi/v2/balance", "/fapi/v3/balance", "/fapi/v2/positionRisk",
        "/fapi/v3/positionRisk", "/fapi/v1/income", "/fapi/v1/leverageBracket", "/fapi/v1/commissionRate",
        "/fapi/v1/positionSide/dual", "/fapi/v1/multiAssetsMargin", "/fapi/v1/apiTradingStatus", "/fapi/v1/rateLimit/order",
        "/fapi/v1/forceOrders", "/fapi/v1/adlQuantile", "/fapi/v1/symbolConfig", "/fapi/v1/accountConfig",
        "/fapi/v1/orderAmendment",
    ]
    /// Calls that only take orders off the book.
    static let cancels: Set<String> = ["/fapi/v1/order", "/fapi/v1/allOpenOrders", "/fapi/v1/batchOrders"]

    static let orderParameters: Set<String> = [
        "symbol", "side", "positionSide", "type", "timeInForce", "quantity", "reduceOnly", "price", "newClientOrderId",
        "newOrderRespType", "selfTradePreventionMode", "goodTillDate", "recvWindow", "timestamp", "signature",
        // Read only to be refused with a reason: they make the order trade at a price Warden does not value.
        "priceMatch", "closePosition", "stopPrice", "activationPrice", "callbackRate", "workingType", "priceProtect",
    ]
    static let leverageParameters: Set<String> = ["symbol", "leverage", "recvWindow", "timestamp", "signature"]
    /// The margin assets of USDⓈ-M contracts, longest first.
    static let quoteAssets = ["USDT", "USDC"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        // Transfers into and out of the futures wallet live under `/sapi`, in Spot's money families.
        if ExchangeRules.movesFunds(call) || BinanceVenue.inMoneyFamily(call) { return .fundMovement }
        let query: FormParameters, body: FormParameters
        do {
            query = try FormParameters(call.query)
            body = try FormParameters(call.body.isEmpty ? "" : String(decoding: call.body, as: UTF8.self))
        } catch { return .invalid(error.description) }
        if let name = query.duplicate(with: body) { return .invalid("parameter \(name) appears more than once") }
        let parameters = query.pairs + body.pairs
        switch (call.method, call.path) {
        case (_, let path) where call.isRead && Self.publicReads.contains(path): return .publicRead
        case (_, let path) where call.isRead && Self.privateReads.contains(path): return .privateRead
        case ("POST", "/fapi/v1/order/test"): return .privateRead  // validated by the venue, never placed
        case ("POST", "/fapi/v1/order"): return order(parameters)
        case ("POST", "/fapi/v1/leverage"): return leverage(parameters)
        case ("DELETE", let path) where Self.cancels.contains(path): return .cancel
        case ("POST", "/fapi/v1/countdownCancelAll"): return .cancel
        default: return .unknown
        }
    }

    func order(_ parameters: [FormParameters.Pair]) -> CallClass {
        if let unknown = parameters.first(where: { !Self.orderParameters.contains($0.name) }) {
            return .invalid("unknown order parameter \(unknown.name)")
        }
        func value(_ name: String) -> String? { parameters.first { $0.name == name }?.value }
        guard let symbol = value("symbol"), let quote = Self.quoteAsset(of: symbol) else {
            return .invalid("symbol must be an upper-case USDT or USDC perpetual such as BTCUSDT")
        }
        guard let sideText = value("side"), let side = OrderSide(rawValue: sideText.lowercased()), sideText == sideText.uppercased() else {
            return .invalid("side must be BUY or SELL")
        }
        if let priced = ["priceMatch", "closePosition", "stopPrice", "activationPrice", "callbackRate"].first(where: { value($0) != nil }) {
            return .invalid("\(priced) orders trade at a price Warden does not value; send LIMIT or MARKET orders with a quantity")
        }
        if let reduceOnly = value("reduceOnly"), reduceOnly != "true", reduceOnly != "false" {
            return .invalid("reduceOnly must be true or false")
        }
        var numbers: [String: Decimal] = [:]
        for name in ["quantity", "price"] {
            guard let text = value(name) else { continue }
            guard let number = ExchangeRules.decimal(text), number > 0 else {
                return .invalid("\(name) must be a plain decimal number above zero")
            }
            numbers[name] = number
        }
        guard let quantity = numbers["quantity"] else { return .invalid("quantity is required") }
        let type = value("type") ?? ""
        let orderValue: OrderValue
        switch type {
        case "LIMIT":
            guard let price = numbers["price"] else { return .invalid("a LIMIT order needs price") }
            // A buy never pays more than its limit; a sell below the market fills at the market.
            orderValue =
                side == .buy
                ? .quote(price * quantity, asset: quote)
                : .atLeastMarket(amount: price * quantity, quantity: quantity, asset: quote, maxPayoff: nil)
        case "MARKET":
            guard numbers["price"] == nil else { return .invalid("price is only for LIMIT orders") }
            orderValue = .atMarket(quantity: quantity, asset: quote)
        default:
            return .invalid("orders of type \(type.isEmpty ? "(none)" : type) are not priced by Warden; send LIMIT or MARKET")
        }
        var intent = OrderIntent(
            instrument: symbol, side: side, quantity: quantity, value: orderValue, clientOrderID: value("newClientOrderId"))
        intent.echo = [
            "type": type, "timeInForce": value("timeInForce") ?? "GTC", "quote": quote,
            "positionSide": value("positionSide") ?? "BOTH", "reduceOnly": value("reduceOnly") ?? "false",
        ]
        return .order(intent)
    }

    func leverage(_ parameters: [FormParameters.Pair]) -> CallClass {
        if let unknown = parameters.first(where: { !Self.leverageParameters.contains($0.name) }) {
            return .invalid("unknown leverage parameter \(unknown.name)")
        }
        func value(_ name: String) -> String? { parameters.first { $0.name == name }?.value }
        guard let symbol = value("symbol"), Self.quoteAsset(of: symbol) != nil else {
            return .invalid("symbol must be an upper-case USDT or USDC perpetual such as BTCUSDT")
        }
        guard let text = value("leverage"), (1...3).contains(text.utf8.count), text.utf8.allSatisfy(ASCII.isDigit),
            let leverage = Int(text), leverage >= 1
        else { return .invalid("leverage must be a whole number from 1 up") }
        return .leverage(LeverageChange(instrument: symbol, leverage: Decimal(leverage)))
    }

    /// The margin asset of a perpetual's symbol (`BTCUSDT` → USDT); nil for anything else, quarterly
    /// contracts (`BTCUSDT_250328`) included.
    static func quoteAsset(of symbol: String) -> String? {
        guard (5...24).contains(symbol.utf8.count), symbol.utf8.allSatisfy(ASCII.isUpperOrDigit) else { return nil }
        return quoteAssets.first { symbol.hasSuffix($0) && symbol.count > $0.count }
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        try spot.sign(&request, secret: secret, signed: signed, now: now)
    }

    public func refreshForDelayedSend(_ request: inout UpstreamRequest) throws(VenueError) {
        try spot.refreshForDelayedSend(&request)
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        try spot.prepareOrder(order, clientOrderID: clientOrderID, in: &request, secret: secret, market: market)
    }

    // MARK: prices and balances

    /// The mark price: what the venue values positions and liquidations at.
    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "/fapi/v1/premiumIndex", query: "symbol=\(instrument ?? order.instrument)")
    }

    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        VenueJSON.decimal(VenueJSON.object(body)?["markPrice"])
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/fapi/v3/balance", query: "recvWindow=5000") }

    /// The available balance of the USD margin assets.
    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let assets = (try? JSONSerialization.jsonObject(with: body)) as? [[String: Any]] else { return nil }
        let cash = assets.filter { ExchangeRules.usdStablecoins.contains(($0["asset"] as? String) ?? "") }
            .compactMap { VenueJSON.decimal($0["availableBalance"]) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let quantity = ExchangeRules.format(fill.quantity, places: 8)
        let price = ExchangeRules.format(fill.price, places: 8)
        let type = order.echo["type"] ?? "MARKET"
        let millis = ExchangeRules.millis(fill.time)
        return (
            .ok,
            VenueJSON.encode([
                "symbol": order.instrument, "orderId": fill.number, "clientOrderId": fill.clientOrderID,
                "price": type == "MARKET" ? "0" : price, "avgPrice": price, "origQty": quantity, "executedQty": quantity,
                "cumQty": quantity, "cumQuote": ExchangeRules.format(fill.quoteNotional, places: 8), "status": "FILLED",
                "timeInForce": order.echo["timeInForce"] ?? "GTC", "type": type, "origType": type,
                "side": order.side.rawValue.uppercased(), "positionSide": order.echo["positionSide"] ?? "BOTH",
                "reduceOnly": order.echo["reduceOnly"] == "true", "closePosition": false, "stopPrice": "0",
                "workingType": "CONTRACT_PRICE", "priceProtect": false, "priceMatch": "NONE",
                "selfTradePreventionMode": "NONE", "goodTillDate": 0, "updateTime": millis,
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) { spot.simulatedCancel() }

    public func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data) {
        (
            .ok,
            VenueJSON.encode([
                "symbol": change.instrument, "leverage": NSDecimalNumber(decimal: change.leverage).intValue, "maxNotionalValue": "1000000",
            ])
        )
    }

    // MARK: errors

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        spot.errorBody(status: status, kind: kind, message: message)
    }
}
