import Crypto
import Foundation
import HTTPTypes

/// OKX's v5 API, spot and USDT/USDC-margined perpetual swaps. The agent key arrives in `OK-ACCESS-KEY`;
/// Warden signs with `OK-ACCESS-SIGN` = base64 HMAC-SHA256 of timestamp + method + request path (with its
/// query) + body, and sends the stored passphrase. A swap's size counts contracts, each `ctVal` of the
/// underlying, read from OKX's instrument list (`contractQuery`).
public struct OKXVenue: ExchangeVenue {
    public init() {}
    public let name = "okx"
    public let defaultBaseURL = "https://www.okx.com"
    public let title = "OKX"
    public let secretFields = ["api_key", "api_secret", "passphrase"]
    /// `demo` = `true` for a demo-trading key: Warden then asks OKX for its demo environment.
    public let optionalSecretFields = ["demo"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        if let demo = secret["demo"], demo != "true", demo != "false" { throw SecretFieldError("demo", "must be true or false") }
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# OKX (python-okx)",
            "trade = okx.Trade.TradeAPI(\"\(key)\", \"any-secret\", \"any-passphrase\", False, \"0\", domain=\"\(proxyURL)/okx\")",
        ]
    }

    static let keyHeader = HTTPField.Name("OK-ACCESS-KEY")!
    static let signHeader = HTTPField.Name("OK-ACCESS-SIGN")!
    static let timestampHeader = HTTPField.Name("OK-ACCESS-TIMESTAMP")!
    static let passphraseHeader = HTTPField.Name("OK-ACCESS-PASSPHRASE")!
    /// The SDKs' demo switch: the credential decides, never the agent.
    static let demoHeader = HTTPField.Name("x-simulated-trading")!
    public var inboundAuthHeaders: [HTTPField.Name] {
        [Self.keyHeader, Self.signHeader, Self.timestampHeader, Self.passphraseHeader, Self.demoHeader]
    }
    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.keyHeader] }
    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) { headers[Self.keyHeader] = secret["api_key"] ?? "" }

    // MARK: classification

    static let publicReads: Set<String> = [
        "/api/v5/public/instruments", "/api/v5/public/time", "/api/v5/public/mark-price", "/api/v5/public/funding-rate",
        "/api/v5/public/funding-rate-history", "/api/v5/public/open-interest", "/api/v5/public/price-limit",
        "/api/v5/public/position-tiers", "/api/v5/public/underlying", "/api/v5/public/status", "/api/v5/system/status",
        "/api/v5/market/ticker", "/api/v5/market/tickers", "/api/v5/market/books", "/api/v5/market/candles",
        "/api/v5/market/history-candles", "/api/v5/market/trades", "/api/v5/market/history-trades", "/api/v5/market/index-tickers",
        "/api/v5/market/mark-price-candles",
    ]
    static let privateReads: Set<String> = [
        "/api/v5/account/balance", "/api/v5/account/positions", "/api/v5/account/config", "/api/v5/account/leverage-info",
        "/api/v5/account/max-size", "/api/v5/account/max-avail-size", "/api/v5/account/trade-fee", "/api/v5/account/bills",
        "/api/v5/account/account-position-risk", "/api/v5/trade/order", "/api/v5/trade/orders-pending",
        "/api/v5/trade/orders-history", "/api/v5/trade/orders-history-archive", "/api/v5/trade/fills",
        "/api/v5/trade/fills-history", "/api/v5/asset/balances", "/api/v5/asset/currencies",
    ]
    static let cancels: Set<String> = [
        "/api/v5/trade/cancel-order", "/api/v5/trade/cancel-batch-orders", "/api/v5/trade/mass-cancel", "/api/v5/trade/cancel-all-after",
    ]
    /// Families that move money or grant authority (funding transfers and withdrawals, earn and savings,
    /// sub-accounts and their keys, brokers, conversions, loans): any call into one that is not a listed read.
    static let moneyFamilies: Set<String> = ["asset", "finance", "users", "broker", "affiliate", "convert", "loan", "fiat"]

    static let orderFields: Set<String> = [
        "instId", "tdMode", "side", "ordType", "sz", "px", "tgtCcy", "clOrdId", "tag", "posSide", "reduceOnly", "stpMode",
        "stpId", "banAmend",
        // Read only to be refused with a reason.
        "attachAlgoOrds", "attachAlgoClOrdId", "tpTriggerPx", "tpOrdPx", "slTriggerPx", "slOrdPx", "pxUsd", "pxVol", "ccy",
        "quickMgnType",
    ]
    static let unvalued = ["attachAlgoOrds", "attachAlgoClOrdId", "tpTriggerPx", "tpOrdPx", "slTriggerPx", "slOrdPx", "pxUsd", "pxVol"]
    /// Order types with a limit price: they never trade through it.
    static let limitTypes: Set<String> = ["limit", "post_only", "fok", "ioc"]
    static let leverageFields: Set<String> = ["instId", "lever", "mgnMode", "posSide"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        let segments = call.matchingPath.split(separator: "/")
        let family = segments.count > 2 && segments[0] == "api" ? String(segments[2]) : ""
        let listedRead = call.isRead && (Self.publicReads.contains(call.path) || Self.privateReads.contains(call.path))
        if ExchangeRules.movesFunds(call) || call.matchingPath.contains("borrow") || (Self.moneyFamilies.contains(family) && !listedRead) {
            return .fundMovement
        }
        if call.isRead {
            do { _ = try FormParameters(call.query, underscores: true) } catch { return .invalid(error.description) }
            if Self.publicReads.contains(call.path) { return .publicRead }
            return Self.privateReads.contains(call.path) ? .privateRead : .unknown
        }
        guard call.method == "POST" else { return .unknown }
        let known =
            ["/api/v5/trade/order", "/api/v5/trade/batch-orders", "/api/v5/account/set-leverage"].contains(call.path)
            || Self.cancels.contains(call.path)
        guard known else { return .unknown }
        guard call.query.isEmpty else { return .invalid("OKX's POST calls take their parameters in the JSON body, not the query") }
        guard JSONMembers.isStrict(call.body), let json = (try? JSONSerialization.jsonObject(with: call.body)) else {
            return .invalid("the body must be JSON that names each field once")
        }
        if Self.cancels.contains(call.path) { return .cancel }
        if call.path == "/api/v5/trade/batch-orders" { return batch(json) }
        guard let object = json as? [String: Any] else { return .invalid("the body must be one JSON object") }
        return call.path == "/api/v5/trade/order" ? order(Self.given(object)) : leverage(Self.given(object))
    }

    /// The fields an OKX request gives: its SDKs send every field, `""` or `null` for those not given (`[]` for
    /// the one list, `attachAlgoOrds`), and OKX reads them as absent.
    static func given(_ object: [String: Any]) -> [String: Any] {
        object.filter { name, value in
            !(value is NSNull) && (value as? String) != "" && !(name == "attachAlgoOrds" && (value as? [Any])?.isEmpty == true)
        }
    }

    /// `POST /api/v5/trade/batch-orders` (ccxt places even one order this way): 1–20 orders, each valued alone.
    func batch(_ json: Any) -> CallClass {
        guard let items = json as? [Any], (1...20).contains(items.count) else { return .invalid("a batch holds 1 to 20 orders") }
        var orders: [OrderIntent] = []
        for item in items {
            guard let object = item as? [String: Any] else { return .invalid("each order of a batch must be a JSON object") }
            switch order(Self.given(object)) {
            case .order(let intent): orders.append(intent)
            case .invalid(let reason): return .invalid("order \(orders.count + 1) of the batch: \(reason)")
            default: return .invalid("order \(orders.count + 1) of the batch could not be read")
            }
        }
        return .orders(orders)
    }

    func order(_ json: [String: Any]) -> CallClass {
        if let unknown = json.keys.sorted().first(where: { !Self.orderFields.contains($0) }) {
            return .invalid("unknown order field \(unknown)")
        }
        if let field = Self.unvalued.first(where: { json[$0] != nil }) {
            return .invalid("\(field) makes the order trade at a price Warden does not value; send it without")
        }
        if let ccy = json["ccy"], !(ccy is NSNull) { return .invalid("margin orders (ccy) are not passed through Warden") }
        // Strings are refused: which of them would OKX read as true?
        for flag in ["reduceOnly", "banAmend"] where json[flag] != nil && (json[flag] as? NSNumber).map(Self.isBoolean) != true {
            return .invalid("\(flag) must be true or false")
        }
        guard let instrument = json["instId"] as? String, let kind = Self.instrument(instrument) else {
            return .invalid("instId must be a spot pair or a perpetual swap quoted in USDT, USDC or USD, such as BTC-USDT or BTC-USDT-SWAP")
        }
        let mode = json["tdMode"] as? String
        switch kind.swap {
        case false where mode != "cash": return .invalid("spot orders take tdMode cash (margin is not passed through Warden)")
        case true where mode != "cross" && mode != "isolated": return .invalid("swap orders take tdMode cross or isolated")
        default: break
        }
        guard let sideText = json["side"] as? String, let side = OrderSide(rawValue: sideText) else {
            return .invalid("side must be buy or sell")
        }
        var numbers: [String: Decimal] = [:]
        for name in ["sz", "px"] where json[name] != nil {
            guard let text = json[name] as? String, let number = ExchangeRules.decimal(text), number > 0 else {
                return .invalid("\(name) must be a string holding a plain decimal number above zero")
            }
            numbers[name] = number
        }
        guard let size = numbers["sz"] else { return .invalid("sz is required") }
        let target = json["tgtCcy"]
        guard target == nil || (!kind.swap && (target as? String == "base_ccy" || target as? String == "quote_ccy")) else {
            return .invalid("tgtCcy must be base_ccy or quote_ccy, on spot orders only")
        }
        let type = json["ordType"] as? String ?? ""
        var quantity: Decimal? = size
        let value: OrderValue
        if Self.limitTypes.contains(type) {
            guard let price = numbers["px"], target == nil || target as? String == "base_ccy" else {
                return .invalid("a \(type) order needs px, and sz in the base currency (no tgtCcy quote_ccy)")
            }
            value =
                side == .buy
                ? .quote(price * size, asset: kind.quote)
                : .atLeastMarket(amount: price * size, quantity: size, asset: kind.quote, maxPayoff: nil)
        } else if type == "market" {
            guard numbers["px"] == nil else { return .invalid("px is only for limit orders") }
            // A spot market buy counts sz in the quote currency unless it says otherwise; a sell in the base.
            let inQuote = !kind.swap && (target as? String ?? (side == .buy ? "quote_ccy" : "base_ccy")) == "quote_ccy"
            value = inQuote ? .quote(size, asset: kind.quote) : .atMarket(quantity: size, asset: kind.quote)
            if inQuote { quantity = nil }
        } else {
            return .invalid(
                "orders of type \(type.isEmpty ? "(none)" : type) are not priced by Warden; send limit, post_only, fok, ioc or market")
        }
        var intent = OrderIntent(
            instrument: instrument, side: side, quantity: quantity, value: value, clientOrderID: json["clOrdId"] as? String)
        intent.echo = ["instType": kind.swap ? "SWAP" : "SPOT"]
        return .order(intent)
    }

    func leverage(_ json: [String: Any]) -> CallClass {
        if let unknown = json.keys.sorted().first(where: { !Self.leverageFields.contains($0) }) {
            return .invalid("unknown leverage field \(unknown) (leverage is set per instrument, for swaps)")
        }
        guard let instrument = json["instId"] as? String, Self.instrument(instrument)?.swap == true else {
            return .invalid("instId must be a perpetual swap such as BTC-USDT-SWAP")
        }
        guard let lever = VenueJSON.decimal(json["lever"]), lever >= 1, (json["lever"] as? NSNumber).map(Self.isBoolean) != true else {
            return .invalid("lever must be a plain decimal number from 1 up")
        }
        return .leverage(LeverageChange(instrument: instrument, leverage: lever))
    }

    /// `BASE-QUOTE` (spot) or `BASE-QUOTE-SWAP` (a perpetual margined in the quote), for the quotes Warden
    /// values at par. `BTC-USD-SWAP` is margined in BTC (an inverse contract): refused.
    static func instrument(_ id: String) -> (quote: String, swap: Bool)? {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count),
            parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 12 && $0.utf8.allSatisfy(ASCII.isUpperOrDigit) })
        else { return nil }
        let swap = parts.count == 3
        guard !swap || parts[2] == "SWAP" else { return nil }
        let quotes: Set<String> = swap ? ["USDT", "USDC"] : ["USDT", "USDC", "USD"]
        return quotes.contains(parts[1]) ? (parts[1], swap) : nil
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        for header in inboundAuthHeaders { request.headers[header] = nil }
        if secret["demo"] == "true" { request.headers[Self.demoHeader] = "1" }
        guard signed else { return }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let timestamp = formatter.string(from: now)
        let target = request.path + (request.query.isEmpty ? "" : "?" + request.query)
        let prehash = timestamp + request.method + target + String(decoding: request.body, as: UTF8.self)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(prehash.utf8), using: SymmetricKey(data: Data((secret["api_secret"] ?? "").utf8)))
        request.headers[Self.keyHeader] = secret["api_key"] ?? ""
        request.headers[Self.signHeader] = Data(mac).base64EncodedString()
        request.headers[Self.timestampHeader] = timestamp
        request.headers[Self.passphraseHeader] = secret["passphrase"] ?? ""
        if !request.body.isEmpty { request.headers[.contentType] = "application/json" }
    }

    /// Whether a number Foundation read from JSON was `true` or `false` (it reads both as numbers too).
    static func isBoolean(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    /// OKX takes client order ids of letters and digits only: Warden's `wdn-…` loses its dash.
    static func clientOrderID(_ id: String) -> String { id.replacingOccurrences(of: "-", with: "") }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        try VenueJSON.order(&request, clientOrderID: order.clientOrderID == nil ? Self.clientOrderID(clientOrderID) : nil, field: "clOrdId")
    }

    /// A batch goes as it came (each order was read from it exactly, ids as the agent gave them).
    public func prepareBatch(
        _ orders: [OrderIntent], in request: inout UpstreamRequest, secret: [String: String], markets: [String: Data]
    ) throws(VenueError) {}

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "/api/v5/market/ticker", query: "instId=\(instrument ?? order.instrument)")
    }

    /// The highest of the last trade and the best ask and bid.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let data = VenueJSON.object(body)?["data"] as? [[String: Any]], data.count == 1 else { return nil }
        return ["last", "askPx", "bidPx"].compactMap { VenueJSON.decimal(data[0][$0]) }.max()
    }

    public func contractQuery(for order: OrderIntent) -> PublicQuery? {
        guard order.echo["instType"] == "SWAP" else { return nil }
        return PublicQuery(path: "/api/v5/public/instruments", query: "instType=SWAP&instId=\(order.instrument)")
    }

    /// `ctVal` × `ctMult` of the underlying, for a linear contract (its value counted in the base currency).
    public func parseContractSize(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let data = VenueJSON.object(body)?["data"] as? [[String: Any]], data.count == 1,
            data[0]["instId"] as? String == order.instrument,
            data[0]["ctType"] as? String == "linear", let value = VenueJSON.decimal(data[0]["ctVal"])
        else { return nil }
        return value * (VenueJSON.decimal(data[0]["ctMult"]) ?? 1)
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/api/v5/account/balance", query: "") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let json = VenueJSON.object(body), json["code"] as? String == "0", let data = json["data"] as? [[String: Any]],
            let details = data.first?["details"] as? [[String: Any]]
        else { return nil }
        let cash = details.filter { ExchangeRules.usdStablecoins.contains(($0["ccy"] as? String) ?? "") }
            .compactMap { VenueJSON.decimal($0["availBal"]) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    static func answer(_ data: [[String: Any]]) -> Data { VenueJSON.encode(["code": "0", "msg": "", "data": data]) }

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        (
            .ok,
            Self.answer([
                [
                    "ordId": String(fill.number), "clOrdId": Self.clientOrderID(fill.clientOrderID), "tag": "",
                    "ts": String(ExchangeRules.millis(fill.time)), "sCode": "0", "sMsg": "Order placed",
                ]
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.ok, VenueJSON.encoded(Failure(code: "51400", msg: "Order cancellation failed as the order has been filled (Warden dry-run)")))
    }

    public func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data) {
        (.ok, Self.answer([["instId": change.instrument, "lever": "\(change.leverage)", "mgnMode": "cross", "posSide": ""]]))
    }

    // MARK: errors

    /// OKX's shape, `{"code": "…", "msg": …, "data": []}`, with Warden's status (python-okx and ccxt read the body).
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let code =
            switch kind {
            case .authentication: "50113"
            case .permission: "50027"
            case .invalidRequest: "51000"
            case .rateLimit, .budget: "50011"
            case .upstream, .unavailable: "50013"
            case .timeout: "50004"
            }
        return ("application/json", VenueJSON.encoded(Failure(code: code, msg: message)))
    }

    struct Failure: Encodable {
        let code: String
        let msg: String
        var data: [String] = []
    }
}
