import Crypto
import Foundation
import HTTPTypes
import WardenCrypto

/// Coinbase Advanced Trade (spot). A CDP API key is a name (`organizations/…/apiKeys/…`) and a private key,
/// EC P-256 in PEM (ES256) or Ed25519 in base64 (EdDSA); each request carries a fresh JWT naming the key,
/// the method, host and path. The
/// agent's SDK makes its JWT with a throwaway key and the agent key as the key's name: Warden reads that
/// name from the token (the token's signature means nothing here) and signs a JWT of its own.
public struct CoinbaseVenue: ExchangeVenue {
    public init() {}
    public let name = "coinbase"
    public let defaultBaseURL = "https://api.coinbase.com"
    public let title = "Coinbase Advanced Trade"
    public let secretFields = ["api_key", "api_secret"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        guard Self.signingKey(secret["api_secret"] ?? "") != nil else {
            throw SecretFieldError("api_secret", "must be the CDP API key's private key: EC P-256 in PEM, or Ed25519 in base64")
        }
    }

    enum SigningKey {
        case es256(P256.Signing.PrivateKey)
        case edDSA(Curve25519.Signing.PrivateKey)

        var algorithm: String {
            switch self {
            case .es256: "ES256"
            case .edDSA: "EdDSA"
            }
        }

        func sign(_ data: Data) throws -> Data {
            switch self {
            case .es256(let key): try key.signature(for: data).rawRepresentation
            case .edDSA(let key): try key.signature(for: data)
            }
        }
    }

    /// A PEM P-256 key, or the base64 of an Ed25519 seed (32 bytes, or 64 with the public key after it).
    static func signingKey(_ text: String) -> SigningKey? {
        if text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("-----BEGIN") {
            return (try? P256.Signing.PrivateKey(pemRepresentation: text)).map(SigningKey.es256)
        }
        guard let raw = Data(base64Encoded: text.filter { !$0.isWhitespace }), raw.count == 32 || raw.count == 64 else { return nil }
        return (try? Curve25519.Signing.PrivateKey(rawRepresentation: raw.prefix(32))).map(SigningKey.edDSA)
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        let host = proxyURL.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
        return [
            "# Coinbase Advanced Trade (coinbase-advanced-py; Warden must serve TLS)",
            "client = RESTClient(api_key=\"\(key)\", api_secret=throwaway_ec_pem, base_url=\"\(host)/coinbase\")",
        ]
    }

    static let legacyKeyHeader = HTTPField.Name("CB-ACCESS-KEY")!
    public var inboundAuthHeaders: [HTTPField.Name] {
        [.authorization, Self.legacyKeyHeader, HTTPField.Name("CB-ACCESS-SIGN")!, HTTPField.Name("CB-ACCESS-TIMESTAMP")!]
    }

    /// The key's name in the agent's JWT (`sub`), or the legacy `CB-ACCESS-KEY`.
    public func agentKey(in headers: HTTPFields) -> String? {
        if let token = BearerToken.from(headers) {
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1].utf8.count < 4096, let payload = Base64URL.decode(String(parts[1])),
                let claims = VenueJSON.object(payload), let subject = claims["sub"] as? String
            else { return token }
            return subject
        }
        return headers[Self.legacyKeyHeader]
    }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {}

    // MARK: classification

    static let prefix = "/api/v3/brokerage"
    static let publicReads: Set<String> = ["/time", "/market/products", "/market/product_book"]
    static let publicReadPatterns = ["/market/products/*", "/market/products/*/ticker", "/market/products/*/candles"]
    static let privateReads: Set<String> = [
        "/accounts", "/orders/historical/batch", "/orders/historical/fills", "/products", "/product_book", "/best_bid_ask",
        "/transaction_summary", "/portfolios", "/key_permissions", "/fees",
    ]
    static let privateReadPatterns = ["/accounts/*", "/orders/historical/*", "/products/*", "/products/*/ticker", "/products/*/candles"]
    /// Words that mark money leaving the trading balance, besides `withdraw` and `transfer`.
    static let moneyWords = ["deposit", "move_funds", "sweep", "allocate", "transaction", "payment", "send", "convert"]

    static let configurations: Set<String> = [
        "market_market_ioc", "market_market_fok", "limit_limit_gtc", "limit_limit_gtd", "limit_limit_fok", "sor_limit_ioc",
    ]

    public func classify(_ call: ExchangeCall) -> CallClass {
        let lower = call.matchingPath
        let read = call.isRead ? readClass(call) : nil
        // The App API (`/v2/…`: sends, buys, deposits, withdrawals) is money movement except its currency reads.
        if read == nil, ExchangeRules.movesFunds(call) || Self.moneyWords.contains(where: lower.contains) || lower.hasPrefix("/v2/") {
            return .fundMovement
        }
        if let read {
            do { _ = try FormParameters(call.query, underscores: true) } catch { return .invalid(error.description) }
            return read
        }
        guard call.path.hasPrefix(Self.prefix + "/"), !call.isRead else { return .unknown }
        let path = String(call.path.dropFirst(Self.prefix.count))
        guard call.method == "POST" else { return .unknown }
        switch path {
        case "/orders", "/orders/preview":
            guard call.query.isEmpty else { return .invalid("Coinbase's POST calls take their parameters in the JSON body, not the query") }
            guard JSONMembers.isStrict(call.body), let json = VenueJSON.object(call.body) else {
                return .invalid("the body must be a JSON object that names each field once")
            }
            let order = order(json)
            if case .order = order, path == "/orders/preview" { return .privateRead }  // validated, never placed
            return order
        case "/orders/batch_cancel": return .cancel
        default: return .unknown
        }
    }

    /// A listed read, by its exact path (or a pattern of one, `*` an id).
    func readClass(_ call: ExchangeCall) -> CallClass? {
        if ["/v2/currencies", "/v2/currencies/crypto", "/v2/exchange-rates", "/v2/time"].contains(call.path) { return .publicRead }
        // An id in a read's path is never one of the money words (`/v2/accounts/transactions`).
        let lower = call.matchingPath
        let plainID =
            !Self.moneyWords.contains(where: lower.contains) || Self.privateReads.contains(String(call.path.dropFirst(Self.prefix.count)))
        // The App API's account list (ccxt reads balances there); nothing under an account is a read here.
        if call.path == "/v2/accounts" || (plainID && ExchangeRules.matches("/v2/accounts/*", call.path)) { return .privateRead }
        guard call.path.hasPrefix(Self.prefix + "/"), plainID else { return nil }
        let path = String(call.path.dropFirst(Self.prefix.count))
        if Self.publicReads.contains(path) || Self.publicReadPatterns.contains(where: { ExchangeRules.matches($0, path) }) {
            return .publicRead
        }
        let listed =
            Self.privateReads.contains(path)
            || Self.privateReadPatterns.contains { ExchangeRules.matches($0, path, reserved: ["batch", "fills"]) }
        return listed ? .privateRead : nil
    }

    func order(_ json: [String: Any]) -> CallClass {
        let known: Set<String> = [
            "client_order_id", "product_id", "side", "order_configuration", "retail_portfolio_id", "self_trade_prevention_id",
        ]
        if let unknown = json.keys.sorted().first(where: { !known.contains($0) }) {
            return .invalid("\(unknown) is not passed through Warden (leverage, margin and previews are refused)")
        }
        guard let product = json["product_id"] as? String, let quote = Self.quoteAsset(of: product) else {
            return .invalid("product_id must be an upper-case pair quoted in USD, USDC or USDT, such as BTC-USD")
        }
        guard let sideText = json["side"] as? String, sideText == "BUY" || sideText == "SELL",
            let side = OrderSide(rawValue: sideText.lowercased())
        else { return .invalid("side must be BUY or SELL") }
        guard let configuration = json["order_configuration"] as? [String: Any], configuration.count == 1,
            let (kind, body) = configuration.first.map({ ($0.key, $0.value as? [String: Any]) }), let fields = body
        else { return .invalid("order_configuration must name exactly one order type") }
        guard Self.configurations.contains(kind) else {
            return .invalid("orders of type \(kind) are not priced by Warden; send a market or limit configuration")
        }
        let allowed: Set<String> = ["quote_size", "base_size", "limit_price", "post_only", "end_time", "rfq_disabled"]
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            return .invalid("unknown \(kind) field \(unknown)")
        }
        if let postOnly = fields["post_only"],
            !(postOnly is Bool) || (postOnly as? NSNumber).map({ String(cString: $0.objCType) != "c" }) == true
        {
            return .invalid("post_only must be true or false")
        }
        var numbers: [String: Decimal] = [:]
        for name in ["quote_size", "base_size", "limit_price"] where fields[name] != nil {
            guard let text = fields[name] as? String, let number = ExchangeRules.decimal(text), number > 0 else {
                return .invalid("\(name) must be a string holding a plain decimal number above zero")
            }
            numbers[name] = number
        }
        let value: OrderValue
        var quantity = numbers["base_size"]
        if kind.hasPrefix("market") {
            switch (numbers["quote_size"], numbers["base_size"], numbers["limit_price"]) {
            case (let amount?, nil, nil):
                value = .quote(amount, asset: quote)
                quantity = nil
            case (nil, let size?, nil): value = .atMarket(quantity: size, asset: quote)
            default: return .invalid("a market order gives quote_size or base_size, one of them")
            }
        } else {
            guard let size = numbers["base_size"], let price = numbers["limit_price"], numbers["quote_size"] == nil else {
                return .invalid("a limit order gives base_size and limit_price")
            }
            value =
                side == .buy
                ? .quote(price * size, asset: quote) : .atLeastMarket(amount: price * size, quantity: size, asset: quote, maxPayoff: nil)
        }
        var intent = OrderIntent(
            instrument: product, side: side, quantity: quantity, value: value, clientOrderID: json["client_order_id"] as? String)
        intent.echo = ["configuration": kind]
        return .order(intent)
    }

    static func quoteAsset(of product: String) -> String? {
        let parts = product.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 12 && $0.utf8.allSatisfy(ASCII.isUpperOrDigit) }),
            ["USD", "USDC", "USDT"].contains(parts[1])
        else { return nil }
        return parts[1]
    }

    // MARK: signing

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        for header in inboundAuthHeaders { request.headers[header] = nil }
        guard signed else { return }
        guard let key = Self.signingKey(secret["api_secret"] ?? "") else {
            throw VenueError("the stored Coinbase api_secret is neither a P-256 nor an Ed25519 private key")
        }
        let name = secret["api_key"] ?? ""
        let seconds = Int64(now.timeIntervalSince1970)
        let header = VenueJSON.encode([
            "alg": key.algorithm, "kid": name, "nonce": Hex.encode(SymmetricKey(size: .bits128).withUnsafeBytes { Array($0) }),
            "typ": "JWT",
        ])
        let claims = VenueJSON.encode([
            "sub": name, "iss": "cdp", "nbf": seconds, "exp": seconds + 120,
            "uri": "\(request.method) \(request.authority)\(request.path)",
        ])
        let signingInput = Base64URL.encode(header) + "." + Base64URL.encode(claims)
        let signature: Data
        do { signature = try key.sign(Data(signingInput.utf8)) } catch { throw VenueError("the JWT could not be signed") }
        request.headers[.authorization] = "Bearer " + signingInput + "." + Base64URL.encode(signature)
        if !request.body.isEmpty { request.headers[.contentType] = "application/json" }
    }

    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        try VenueJSON.order(&request, clientOrderID: order.clientOrderID == nil ? clientOrderID : nil, field: "client_order_id")
    }

    // MARK: prices and balances

    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(path: "\(Self.prefix)/market/products/\(instrument ?? order.instrument)", query: "")
    }

    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        VenueJSON.decimal(VenueJSON.object(body)?["price"])
    }

    public var balanceQuery: PublicQuery { PublicQuery(path: "\(Self.prefix)/accounts", query: "limit=250") }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let accounts = VenueJSON.object(body)?["accounts"] as? [[String: Any]] else { return nil }
        let cash = accounts.compactMap { $0["available_balance"] as? [String: Any] }
            .filter { ExchangeRules.usdStablecoins.contains(($0["currency"] as? String) ?? "") }
            .compactMap { VenueJSON.decimal($0["value"]) }.reduce(Decimal(0), +)
        return NSDecimalNumber(decimal: cash).doubleValue
    }

    // MARK: simulator

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        (
            .ok,
            VenueJSON.encode([
                "success": true,
                "success_response": [
                    "order_id": fill.orderID, "product_id": order.instrument, "side": order.side.rawValue.uppercased(),
                    "client_order_id": fill.clientOrderID,
                ],
            ])
        )
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (
            .ok,
            VenueJSON.encode([
                "results": [["success": false, "failure_reason": "UNKNOWN_CANCEL_ORDER (Warden dry-run: paper orders fill at once)"]]
            ])
        )
    }

    // MARK: errors

    /// Coinbase's shape, `{"error": "…", "message": …}`.
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let error =
            switch kind {
            case .authentication: "UNAUTHENTICATED"
            case .permission: "PERMISSION_DENIED"
            case .invalidRequest: "INVALID_ARGUMENT"
            case .rateLimit, .budget: "RESOURCE_EXHAUSTED"
            case .upstream, .unavailable, .timeout: "UNAVAILABLE"
            }
        return ("application/json", VenueJSON.encoded(Failure(error: error, message: message, errorDetails: message)))
    }

    struct Failure: Encodable {
        let error: String
        let message: String
        let errorDetails: String
        enum CodingKeys: String, CodingKey { case error, message, errorDetails = "error_details" }
    }
}
