import Crypto
import Foundation
import HTTPTypes
import WardenCrypto

/// Kraken Spot. The agent key arrives in `API-Key`; private calls are `POST /0/private/{Method}` with a
/// form body carrying a `nonce`, signed in `API-Sign` = base64 HMAC-SHA512, keyed with the base64-decoded
/// secret, of the path followed by SHA-256(nonce + body). Kraken wants each key's nonces to rise strictly,
/// so Warden replaces the agent's nonce with one from the store, above every nonce it handed out before, on
/// any server (`nonceScope`), and never below the clock in nanoseconds, the finest scale clients use.
public struct KrakenVenue: ExchangeVenue {
    public init() {}
    public let name = "kraken"
    public let defaultBaseURL = "https://api.kraken.com"
    public let title = "Kraken"
    public let secretFields = ["api_key", "api_secret"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        guard let text = secret["api_secret"], let bytes = Data(base64Encoded: text), !bytes.isEmpty else {
            throw SecretFieldError("api_secret", "must be the base64 private key Kraken shows when the API key is made")
        }
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Kraken (python-kraken-sdk)",
            "trade = Trade(key=\"\(key)\", secret=\"AAAA\", url=\"\(proxyURL.replacingOccurrences(of: "/proxy", with: ""))\")",
        ]
    }

    /// python-kraken-sdk joins its paths (`/0/…`) to the host of its URL, dropping any path.
    public var rootPrefix: String? { "/0" }

    static let keyHeader = HTTPField.Name("API-Key")!
    static let signHeader = HTTPField.Name("API-Sign")!
    public var inboundAuthHeaders: [HTTPField.Name] { [Self.keyHeader, Self.signHeader] }
    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.keyHeader] }
    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) { headers[Self.keyHeader] = secret["api_key"] ?? "" }

    // MARK: classification

    static let publicPrefix = "/0/public/"
    static let privatePrefix = "/0/private/"
    static let publicReads: Set<String> = ["Time", "SystemStatus", "Assets", "AssetPairs", "Ticker", "OHLC", "Depth", "Trades", "Spread"]
    static let privateReads: Set<String> = [
        "Balance", "BalanceEx", "TradeBalance", "OpenOrders", "ClosedOrders", "QueryOrders", "TradesHistory", "QueryTrades",
        "OpenPositions", "Ledgers", "QueryLedgers", "TradeVolume", "OrderAmends",
    ]
    static let cancels: Set<String> = ["CancelOrder", "CancelAll", "CancelAllOrdersAfter", "CancelOrderBatch"]
    /// Money leaving the account or the trading balance (besides every `withdraw` and `transfer`): staking and
    /// earn allocations, sub-accounts.
    static let fundMovement: Set<String> = ["stake", "unstake", "earn/allocate", "earn/deallocate", "createsubaccount"]

    static let orderParameters: Set<String> = [
        "nonce", "ordertype", "type", "volume", "pair", "price", "timeinforce", "oflags", "starttm", "expiretm", "deadline",
        "userref", "cl_ord_id", "stptype", "validate", "reduce_only",
    ]
    /// Order flags that change no amount: post-only, fees in the base or quote. (`nompp` turns off Kraken's
    /// market price protection: a market order's cost would have no bound but the book.)
    static let plainFlags: Set<String> = ["post", "fcib", "fciq"]
    /// Quote assets Warden values (at par), longest first; Kraken's own names for USD start with a Z.
    static let quoteAssets = ["ZUSD", "USDT", "USDC", "USD"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        let lower = call.matchingPath
        if ExchangeRules.movesFunds(call) || Self.fundMovement.contains(where: { lower == Self.privatePrefix.lowercased() + $0 }) {
            return .fundMovement
        }
        if call.path.hasPrefix(Self.publicPrefix) {
            let method = String(call.path.dropFirst(Self.publicPrefix.count))
            return call.isRead && Self.publicReads.contains(method) ? .publicRead : .unknown
        }
        guard call.path.hasPrefix(Self.privatePrefix), call.method == "POST" else { return .unknown }
        let method = String(call.path.dropFirst(Self.privatePrefix.count))
        guard call.query.isEmpty else { return .invalid("Kraken's private calls take their parameters in the body, not the query") }
        let body: FormParameters
        do { body = try FormParameters(String(decoding: call.body, as: UTF8.self), underscores: true) } catch {
            return .invalid("\(error.description) (Warden takes Kraken's private calls form-encoded)")
        }
        if let name = body.duplicate() { return .invalid("parameter \(name) appears more than once") }
        switch method {
        case let m where Self.privateReads.contains(m): return .privateRead
        case let m where Self.cancels.contains(m): return .cancel
        case "AddOrder": return order(body)
        default: return .unknown
        }
    }

    func order(_ body: FormParameters) -> CallClass {
        if body["leverage"] != nil { return .invalid("margin orders (leverage) are not passed through Warden") }
        if let unknown = body.pairs.first(where: { !Self.orderParameters.contains($0.name) }) {
            return .invalid("unknown order parameter \(unknown.name)")
        }
        if let validate = body["validate"], validate.lowercased() != "false" {
            return .invalid("validate-only orders are not passed through Warden; send validate=false or none")
        }
        // A scheduled start would trade at a later market, maybe on a later day, than the one it was valued at.
        if let start = body["starttm"], start != "0" { return .invalid("scheduled orders (starttm) are not passed through Warden") }
        if let reduceOnly = body["reduce_only"], !["true", "false"].contains(reduceOnly.lowercased()) {
            return .invalid("reduce_only must be true or false")
        }
        if let flags = body["oflags"],
            let flag = flags.split(separator: ",", omittingEmptySubsequences: false).first(where: {
                !Self.plainFlags.contains(String($0))
            })
        {
            return .invalid("order flag \(flag) is not passed through Warden (only post, fcib and fciq are)")
        }
        guard let pair = body["pair"], let quote = Self.quoteAsset(of: pair) else {
            return .invalid("pair must be an upper-case Kraken pair quoted in USD, USDT or USDC, such as XBTUSD")
        }
        guard let sideText = body["type"], let side = OrderSide(rawValue: sideText) else { return .invalid("type must be buy or sell") }
        guard let volumeText = body["volume"], let volume = ExchangeRules.decimal(volumeText), volume > 0 else {
            return .invalid("volume must be a plain decimal number above zero")
        }
        let price = body["price"].map { ExchangeRules.decimal($0) }
        if let price, price == nil || price! <= 0 { return .invalid("price must be a plain decimal number above zero") }
        let value: OrderValue
        switch body["ordertype"] {
        case "limit":
            guard let limit = price ?? nil else { return .invalid("a limit order needs price") }
            // A buy never pays more than its limit; a sell below the market fills at the market.
            value =
                side == .buy
                ? .quote(limit * volume, asset: quote)
                : .atLeastMarket(amount: limit * volume, quantity: volume, asset: quote, maxPayoff: nil)
        case "market":
            guard price == nil else { return .invalid("price is only for limit orders") }
            value = .atMarket(quantity: volume, asset: quote)
        case let other:
            return .invalid("orders of type \(other ?? "(none)") are not priced by Warden; send limit or market")
        }
        var intent = OrderIntent(instrument: pair, side: side, quantity: volume, value: value, clientOrderID: body["cl_ord_id"])
        intent.echo = ["ordertype": body["ordertype"] ?? "", "userref": body["userref"] ?? ""]
        return .order(intent)
    }

    /// The quote asset of a pair's name (`XBTUSD`, `XXBTZUSD` → USD; `XBTUSDT` → USDT), for the ones Warden values.
    static func quoteAsset(of pair: String) -> String? {
        guard (5...16).contains(pair.utf8.count), pair.utf8.allSatisfy(ASCII.isUpperOrDigit),
            let quote = quoteAssets.first(where: { pair.hasSuffix($0) && pair.count > $0.count })
        else { return nil }
        return quote == "ZUSD" ? "USD" : quote
    }

    // MARK: signing

    public func nonceScope(_ secret: [String: String]) -> String? {
        "kraken|" + Hex.encode(SHA256.hash(data: Data((secret["api_key"] ?? "").utf8)))
    }

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        guard !signed else { throw VenueError("a Kraken private call is signed with a nonce from the store") }
        request.headers[Self.keyHeader] = nil
    }

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], nonce: Int64) throws(VenueError) {
        guard let key = Data(base64Encoded: secret["api_secret"] ?? ""), !key.isEmpty else {
            throw VenueError("the stored Kraken api_secret is not base64")
        }
        // The agent's nonce is replaced where it stands, or Warden's added at the end.
        let form = try FormParameters(String(decoding: request.body, as: UTF8.self), underscores: true)
        var parts = form.pairs.map { $0.name == "nonce" ? "nonce=\(nonce)" : String($0.raw) }
        if form["nonce"] == nil { parts.append("nonce=\(nonce)") }
        let body = parts.joined(separator: "&")
        let digest = SHA256.hash(data: Data((String(nonce) + body).utf8))
        let mac = HMAC<SHA512>.authenticationCode(for: Data(request.path.utf8) + Data(digest), using: SymmetricKey(data: key))
        request.body = Data(body.utf8)
        request.headers[Self.keyHeader] = secret["api_key"] ?? ""
        request.headers[Self.signHeader] = Data(mac).base64EncodedString()
        request.headers[.contentType] = "application/x-www-form-urlencoded"
    }

    /// Kraken takes a client order id as a UUID (or 18 characters): Warden's `wdn-` and 24 hex digits become
    /// one, `77646e2d` ("wdn-" in hex) and the same digits.
    static func clientOrderUUID(_ id: String) -> String {
        let hex = Array(id.hasPrefix("wdn-") ? "77646e2d" + id.dropFirst(4) : id)
        guard hex.count == 32 else { return id }
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(hex[$0]) }.joined(separator: "-")
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        // `cl_ord_id` and `userref` exclude each other at Kraken.
        guard order.clientOrderID == nil, order.echo["userref"]?.isEmpty != false else { return }
        let parameter = "cl_ord_id=\(Self.clientOrderUUID(clientOrderID))"
        request.body = Data(((request.body.isEmpty ? "" : String(decoding: request.body, as: UTF8.self) + "&") + parameter).utf8)
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "/0/public/Ticker", query: "pair=\(instrument ?? order.instrument)")
    }

    /// The highest of the last trade, the ask and the bid: what a buy or a sell can fill at, taken high.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let result = VenueJSON.object(body)?["result"] as? [String: Any], result.count == 1,
            let ticker = result.values.first as? [String: Any]
        else { return nil }
        return ["c", "a", "b"].compactMap { VenueJSON.decimal((ticker[$0] as? [Any])?.first) }.max()
    }

    public var balanceQuery: PublicQuery { PublicQuery(method: "POST", path: "/0/private/Balance", query: "") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let json = VenueJSON.object(body), (json["error"] as? [Any])?.isEmpty != false,
            let result = json["result"] as? [String: Any]
        else { return nil }
        let cash = result.filter { asset, _ in asset == "ZUSD" || ExchangeRules.usdStablecoins.contains(asset) }
            .compactMap { VenueJSON.decimal($0.value) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let volume = ExchangeRules.format(fill.quantity, places: 8)
        let at = order.echo["ordertype"] == "limit" ? "limit \(ExchangeRules.format(fill.price, places: 2))" : "market"
        let txid = "OWDN\(fill.number)"
        return (
            .ok,
            VenueJSON.encode([
                "error": [String](),
                "result": ["descr": ["order": "\(order.side.rawValue) \(volume) \(order.instrument) @ \(at)"], "txid": [txid]],
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.ok, VenueJSON.encode(["error": ["EOrder:Unknown order (Warden dry-run: paper orders fill at once)"]]))
    }

    // MARK: errors

    /// Kraken's shape, `{"error": ["EClass:Message"]}`, with Warden's HTTP status (Kraken answers 200).
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let prefix =
            switch kind {
            case .authentication: "EAPI:Invalid key"
            case .permission: "EGeneral:Permission denied"
            case .invalidRequest: "EGeneral:Invalid arguments"
            case .rateLimit, .budget: "EAPI:Rate limit exceeded"
            case .upstream, .unavailable: "EService:Unavailable"
            case .timeout: "EService:Busy"
            }
        return ("application/json", VenueJSON.encoded(Failure(error: ["\(prefix): \(message)"])))
    }

    struct Failure: Encodable { let error: [String] }
}
