import Crypto
import Foundation
import WardenCrypto
import HTTPTypes
import WardenCrypto

/// Polymarket CLOB, level-2 authentication. The agent key arrives in `POLY_API_KEY`; Warden sets the
/// stored address, key and passphrase and signs timestamp + method + path + body with HMAC-SHA256 under
/// the URL-safe-base64-decoded secret. Amounts are USDC with 6 decimals: a BUY is worth its makerAmount.
public struct PolymarketVenue: ExchangeVenue {
    let signing: PolymarketSigning

    public init(signing: PolymarketSigning = PolymarketSigning()) { self.signing = signing }
    public let name = "polymarket"
    public let defaultBaseURL = "https://clob.polymarket.com"
    public let title = "Polymarket"
    public let secretFields = ["api_key", "api_secret", "passphrase", "address"]
    /// The wallet key: with it Warden signs orders and mints the level-2 credentials itself.
    public let optionalSecretFields = ["private_key"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        guard let address = secret["address"] else { return }
        guard address.range(of: "^0x[0-9a-fA-F]{40}$", options: .regularExpression) != nil else {
            throw SecretFieldError("address", "must be a 0x-prefixed 20-byte hex address")
        }
        guard let key = secret["private_key"] else { return }
        guard let wallet = try? WalletKey(hex: key) else {
            throw SecretFieldError("private_key", "must be a secp256k1 private key: 64 hex digits, with or without 0x")
        }
        guard wallet.addressHex == address.lowercased() else {
            throw SecretFieldError("address", "is not the address of secret.private_key")
        }
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Polymarket (py-clob-client)",
            "ClobClient(\"\(proxyURL)/polymarket\", chain_id=137, key=wallet_key, creds=ApiCreds(\"\(key)\", any_secret, any_passphrase))",
        ]
    }
    static let address = HTTPField.Name("POLY_ADDRESS")!
    static let apiKey = HTTPField.Name("POLY_API_KEY")!
    static let passphrase = HTTPField.Name("POLY_PASSPHRASE")!
    static let timestamp = HTTPField.Name("POLY_TIMESTAMP")!
    static let signature = HTTPField.Name("POLY_SIGNATURE")!
    static let nonce = HTTPField.Name("POLY_NONCE")!
    public var inboundAuthHeaders: [HTTPField.Name] { [Self.address, Self.apiKey, Self.passphrase, Self.timestamp, Self.signature] }

    public func agentKey(in headers: HTTPFields) -> String? { headers[Self.apiKey] }

    /// The user channel (`/ws/user`) carries the credential in its subscription's `auth`; the market
    /// channel (`/ws/market`) is public. Both on the CLOB's stream host.
    public func stream(at path: String) -> StreamRoute? {
        switch path {
        case "/ws/user": .authInMessages
        case "/ws/market": .marketData
        default: nil
        }
    }
    public func defaultStreamURL(for path: String) -> String? { "wss://ws-subscriptions-clob.polymarket.com" }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[Self.apiKey] = secret["api_key"] ?? ""
    }

    // MARK: classification

    /// Reads of the CLOB, by method and path (`*` is one segment: a market's condition id, an order id).
    /// Public ones are sent unsigned; private ones carry the stored level-2 credentials.
    static let publicGets: Set<String> = [
        "/", "/ok", "/time", "/markets", "/markets/*", "/sampling-markets", "/simplified-markets", "/sampling-simplified-markets",
        "/book", "/price", "/midpoint", "/spread", "/last-trade-price", "/tick-size", "/neg-risk", "/fee-rate", "/prices-history",
        "/live-activity/events/*",
    ]
    /// Batch price reads: POST only because the token list travels in the body.
    static let publicPosts: Set<String> = ["/books", "/prices", "/midpoints", "/spreads", "/last-trades-prices"]
    static let privateGets: Set<String> = [
        "/data/orders", "/data/order/*", "/data/trades", "/balance-allowance", "/balance-allowance/update", "/notifications",
        "/auth/api-keys", "/auth/ban-status/closed-only", "/order-scoring",
    ]
    /// Whether each of several orders is scoring: a read whose order ids travel in the body.
    static let privatePosts: Set<String> = ["/orders-scoring"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        if ExchangeRules.movesFunds(call) { return .fundMovement }
        let read = call.isRead
        let path = call.path
        if read, Self.publicGets.contains(where: { ExchangeRules.matches($0, path) }) { return .publicRead }
        if call.method == "POST", Self.publicPosts.contains(path) { return .publicRead }
        if read, Self.privateGets.contains(where: { ExchangeRules.matches($0, path) }) { return .privateRead }
        if call.method == "POST", Self.privatePosts.contains(path) { return .privateRead }
        if call.method == "POST", path == "/order" { return order(call.body) }
        if call.method == "POST", path == "/orders" { return batch(call.body) }
        if (call.method == "POST" && path == "/auth/api-key") || (call.method == "GET" && path == "/auth/derive-api-key") {
            return .walletAuth
        }
        if call.method == "DELETE", path == "/order" || path == "/orders" { return .cancel }
        return .unknown
    }

    static let maxBatch = 15

    func batch(_ body: Data) -> CallClass {
        guard JSONMembers.isStrict(body) else { return .invalid("the body must be JSON that names each field once") }
        guard let items = (try? JSONSerialization.jsonObject(with: body)) as? [[String: Any]], (1...Self.maxBatch).contains(items.count)
        else {
            return .invalid("the body must be a JSON array of 1 to \(Self.maxBatch) orders")
        }
        var intents: [OrderIntent] = []
        for (index, item) in items.enumerated() {
            switch order(item) {
            case .order(let intent): intents.append(intent)
            case .invalid(let reason): return .invalid("order \(index + 1): \(reason)")
            default: return .invalid("order \(index + 1) is not an order")
            }
        }
        return .orders(intents)
    }

    func order(_ body: Data) -> CallClass {
        guard JSONMembers.isStrict(body) else { return .invalid("the body must be JSON that names each field once") }
        guard let json = VenueJSON.object(body) else { return .invalid("the body must be a JSON object with an order") }
        return order(json)
    }

    func order(_ json: [String: Any]) -> CallClass {
        guard let order = json["order"] as? [String: Any] else {
            return .invalid("the body must be a JSON object with an order")
        }
        guard let token = order["tokenId"] as? String, token.range(of: "^[0-9]{1,80}$", options: .regularExpression) != nil else {
            return .invalid("order.tokenId must be a decimal token id")
        }
        guard let sideText = order["side"] as? String, let side = OrderSide(rawValue: sideText.lowercased()),
            sideText == sideText.uppercased()
        else {
            return .invalid("order.side must be BUY or SELL")
        }
        guard let maker = VenueJSON.decimal(order["makerAmount"]), let taker = VenueJSON.decimal(order["takerAmount"]),
            maker == maker.rounded(), taker == taker.rounded(), maker > 0, taker > 0
        else { return .invalid("order.makerAmount and order.takerAmount must be positive whole numbers (6 decimals)") }
        let scale = Decimal(1_000_000)
        // A BUY pays at most makerAmount USDC for takerAmount shares. A SELL gives makerAmount shares for at
        // least takerAmount USDC: it fills at the market when that is better, and a share pays at most 1 USDC.
        let shares = side == .buy ? taker / scale : maker / scale
        let value: OrderValue =
            side == .buy
            ? .usd(maker / scale)
            : .atLeastMarket(amount: taker / scale, quantity: shares, asset: "USDC", maxPayoff: 1)
        let salt = VenueJSON.decimal(order["salt"]).map { "\($0)" }
        var intent = OrderIntent(instrument: token, side: side, quantity: shares, value: value, clientOrderID: salt.map { "salt-\($0)" })
        intent.echo = ["orderType": (json["orderType"] as? String) ?? "GTC"]
        // The exchange identifies an order by the hash of its signed fields and never fills one twice, so
        // the same fields sent again are a retry of the same order.
        var identity = order
        identity["signature"] = nil
        if let canonical = try? JSONSerialization.data(withJSONObject: identity, options: [.sortedKeys]) {
            intent.fingerprint = Hex.encode(SHA256.hash(data: canonical))
        }
        return .order(intent)
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        guard let secretBytes = Self.urlSafeBase64(secret["api_secret"] ?? "") else {
            throw VenueError("the stored Polymarket api_secret is not URL-safe base64")
        }
        // Orders name their owner by API key: the agent's key must never travel, the real one must.
        if var json = VenueJSON.object(request.body), json["owner"] != nil {
            json["owner"] = secret["api_key"] ?? ""
            request.body = VenueJSON.encode(json)
        } else if let items = (try? JSONSerialization.jsonObject(with: request.body)) as? [[String: Any]],
            items.contains(where: { $0["owner"] != nil })
        {
            let owned = items.map { item in item["owner"] == nil ? item : item.merging(["owner": secret["api_key"] ?? ""]) { $1 } }
            request.body = (try? JSONSerialization.data(withJSONObject: owned, options: [.sortedKeys])) ?? request.body
        }
        let timestamp = String(Int64(now.timeIntervalSince1970))
        let message = timestamp + request.method + request.path + String(decoding: request.body, as: UTF8.self)
        let mac = HMAC<SHA256>.authenticationCode(for: Data(message.utf8), using: SymmetricKey(data: secretBytes))
        let signature = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        request.headers[Self.address] = secret["address"] ?? ""
        request.headers[Self.apiKey] = secret["api_key"] ?? ""
        request.headers[Self.passphrase] = secret["passphrase"] ?? ""
        request.headers[Self.timestamp] = timestamp
        request.headers[Self.signature] = signature
    }

    static func urlSafeBase64(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    /// With a wallet key on file, the neg-risk flag of the order's token picks the exchange it is signed for.
    public func marketQuery(for order: OrderIntent, secret: [String: String]) -> PublicQuery? {
        secret["private_key"] == nil ? nil : PublicQuery(path: "/neg-risk", query: "token_id=\(order.instrument)")
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        guard let json = VenueJSON.object(request.body) else { return }
        request.body = VenueJSON.encode(try signed(json, order, secret: secret, market: market))
    }

    public func prepareBatch(
        _ orders: [OrderIntent], in request: inout UpstreamRequest, secret: [String: String],
        markets: [String: Data]
    ) throws(VenueError) {
        guard let items = (try? JSONSerialization.jsonObject(with: request.body)) as? [[String: Any]], items.count == orders.count else {
            throw VenueError("the batch changed between its check and its signing")
        }
        var out: [[String: Any]] = []
        for (item, order) in zip(items, orders) { out.append(try signed(item, order, secret: secret, market: markets[order.instrument])) }
        request.body = (try? JSONSerialization.data(withJSONObject: out, options: [.sortedKeys])) ?? request.body
    }

    /// One `{order, owner, orderType}` item, its order signed with the stored wallet key when there is one.
    func signed(_ item: [String: Any], _ order: OrderIntent, secret: [String: String], market: Data?) throws(VenueError) -> [String: Any] {
        guard let key = secret["private_key"], var signedOrder = item["order"] as? [String: Any] else { return item }
        let wallet: WalletKey
        do { wallet = try WalletKey(hex: key) } catch { throw VenueError("the stored Polymarket private_key cannot be read") }
        guard let negRisk = market.flatMap(VenueJSON.object)?["neg_risk"] as? Bool else {
            throw VenueError("Polymarket did not say whether token \(order.instrument) is neg-risk; the order was not signed")
        }
        try signing.sign(order: &signedOrder, wallet: wallet, negRisk: negRisk)
        var out = item
        out["order"] = signedOrder
        return out
    }

    /// Level 1: `ClobAuth` signed with the stored wallet key, for the stored address, now, and the
    /// agent's `POLY_NONCE` (default 0).
    public func signWalletAuth(_ request: inout UpstreamRequest, secret: [String: String], now: Date) throws(VenueError) {
        guard let key = secret["private_key"], let wallet = try? WalletKey(hex: key) else {
            throw VenueError("level-1 calls are signed with the wallet key: add private_key to this Polymarket credential")
        }
        let nonceText = request.headers[Self.nonce] ?? "0"
        guard let nonce = UInt64(nonceText) else { throw VenueError("POLY_NONCE must be a whole number") }
        let timestamp = String(Int64(now.timeIntervalSince1970))
        request.headers[Self.address] = EIP712.checksummed(wallet.address)
        request.headers[Self.signature] = try signing.clobAuth(wallet: wallet, timestamp: timestamp, nonce: nonce)
        request.headers[Self.timestamp] = timestamp
        request.headers[Self.nonce] = String(nonce)
        request.headers[Self.apiKey] = nil
        request.headers[Self.passphrase] = nil
    }

    public func walletAuthFields(_ body: Data) -> [String: String]? {
        guard let json = VenueJSON.object(body), let key = json["apiKey"] as? String, let secret = json["secret"] as? String,
            let passphrase = json["passphrase"] as? String, !key.isEmpty, !secret.isEmpty, !passphrase.isEmpty
        else { return nil }
        return ["api_key": key, "api_secret": secret, "passphrase": passphrase]
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "/price", query: "token_id=\(instrument ?? order.instrument)&side=\(order.side.rawValue.uppercased())")
    }

    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        VenueJSON.decimal(VenueJSON.object(body)?["price"]).flatMap { $0 > 0 ? $0 : nil }
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "/balance-allowance", query: "asset_type=COLLATERAL&signature_type=0") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        VenueJSON.decimal(VenueJSON.object(body)?["balance"]).map { NSDecimalNumber(decimal: $0 / 1_000_000).doubleValue }
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        let id = "0x" + Hex.encode(SHA256.hash(data: Data(fill.orderID.utf8)))
        let shares = ExchangeRules.format(fill.quantity, places: 6)
        let usdc = ExchangeRules.format(fill.quoteNotional, places: 6)
        return (
            .ok,
            VenueJSON.encode([
                "success": true, "errorMsg": "", "orderID": id, "transactionsHashes": [String](), "status": "matched",
                "makingAmount": order.side == .buy ? usdc : shares, "takingAmount": order.side == .buy ? shares : usdc,
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (.ok, VenueJSON.encode(["canceled": [String](), "not_canceled": ["*": "Warden dry-run: paper orders fill at once"]]))
    }

    // MARK: errors

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        ("application/json", VenueJSON.encoded(["error": message]))
    }
}

/// Polymarket's user channel: `{"auth":{"apiKey","secret","passphrase"},"type":"user","markets":[…]}`. The
/// agent's `apiKey` is its Warden key (its secret and passphrase are its own, worthless); Warden writes the
/// credential's level-2 key, secret and passphrase in their place.
extension PolymarketVenue: StreamAuthVenue {
    public func streamKey(in message: Data) -> Result<String?, VenueError> {
        // Keep-alive texts (`PING`) carry nothing; anything that opens like JSON must be one strict object.
        let first = message.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        guard first == UInt8(ascii: "{") || first == UInt8(ascii: "[") || first == UInt8(ascii: "\"") else { return .success(nil) }
        guard JSONMembers.isStrict(message), let object = VenueJSON.object(message) else {
            return .failure(VenueError("a message is one JSON object naming each member once"))
        }
        guard let auth = object["auth"] else { return .success(nil) }
        guard let fields = auth as? [String: Any], let key = fields["apiKey"] as? String, !key.isEmpty else {
            return .failure(VenueError("auth must be an object with apiKey, the Warden agent key"))
        }
        return .success(key)
    }

    public func streamAuthorized(_ message: Data, secret: [String: String]) -> Data {
        guard var object = VenueJSON.object(message) else { return message }
        object["auth"] = [
            "apiKey": secret["api_key"] ?? "", "secret": secret["api_secret"] ?? "", "passphrase": secret["passphrase"] ?? "",
        ]
        return VenueJSON.encode(object)
    }
}
