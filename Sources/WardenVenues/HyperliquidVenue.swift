import Crypto
import Foundation
import HTTPTypes
import WardenCrypto

/// Hyperliquid perpetuals. Exchange actions (`POST /exchange`) are signed with a wallet key: Warden keeps the
/// account's key (or one of its API wallets') in the vault, reads the agent's action into types, writes it back
/// in Hyperliquid's member order, and signs it as Hyperliquid verifies it: EIP-712 `Agent(string source, bytes32
/// connectionId)` on the `Exchange` domain (chain 1337), the connection id the Keccak-256 of the action's
/// MessagePack, the nonce and the vault flag. The agent's own signature and nonce are discarded. `POST /info` is
/// public. The SDK sends no key of its own: the agent key goes in `X-Warden-Key`.
public struct HyperliquidVenue: ExchangeVenue {
    public init() {}
    public let name = "hyperliquid"
    public let defaultBaseURL = "https://api.hyperliquid.xyz"
    public let title = "Hyperliquid"
    public let secretFields = ["private_key"]
    /// `account_address`: the account an API wallet trades for (its balance is the go-live check's);
    /// `testnet` = `true` to sign for Hyperliquid's testnet.
    public let optionalSecretFields = ["account_address", "testnet"]

    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {
        guard (try? WalletKey(hex: secret["private_key"] ?? "")) != nil else {
            throw SecretFieldError("private_key", "must be the wallet's (or API wallet's) private key: 0x and 64 hex digits")
        }
        if let account = secret["account_address"], EIP712.addressBytes(account.lowercased()) == nil {
            throw SecretFieldError("account_address", "must be a 0x address")
        }
        if let testnet = secret["testnet"], testnet != "true", testnet != "false" {
            throw SecretFieldError("testnet", "must be true or false")
        }
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        [
            "# Hyperliquid (hyperliquid-python-sdk): any throwaway wallet signs; Warden re-signs with the stored key",
            "exchange = Exchange(throwaway_wallet, \"\(proxyURL)/hyperliquid\", account_address=account)",
            "exchange.session.headers[\"X-Warden-Key\"] = \"\(key)\"",
        ]
    }

    public var inboundAuthHeaders: [HTTPField.Name] { [] }
    public func agentKey(in headers: HTTPFields) -> String? { nil }
    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {}

    // MARK: classification

    static let envelopeFields: Set<String> = ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]

    public func classify(_ call: ExchangeCall) -> CallClass {
        let body = VenueJSON.object(call.body)
        let action = body?["action"] as? [String: Any], type = action?["type"] as? String
        if let type, HyperliquidAction.movesFunds(type) { return .fundMovement }
        // An action is read, valued and signed when POSTed to /exchange alone, whatever an operator opens.
        let exchange = call.method == "POST" && call.path == "/exchange"
        if body?["action"] != nil, !exchange { return .invalid("Hyperliquid actions are POSTed to /exchange") }
        guard call.method == "POST", call.path == "/info" || exchange else { return .unknown }
        guard call.query.isEmpty else { return .invalid("Hyperliquid takes its parameters in the JSON body, not the query") }
        guard JSONMembers.isStrict(call.body), let json = body else {
            return .invalid("the body must be a JSON object that names each field once")
        }
        if call.path == "/info" { return json["type"] is String ? .publicRead : .invalid("an info request names its type") }
        guard let action, type != nil else { return .invalid("an exchange request carries an action with its type") }
        do {
            try Self.checkEnvelope(json)
            guard let read = try HyperliquidAction.read(action) else { return .unknown }
            return Self.classify(read)
        } catch {
            return .invalid(error.description)
        }
    }

    /// The agent's nonce and signature are replaced; a vault or an expiry would change what is signed for whom.
    static func checkEnvelope(_ json: [String: Any]) throws(VenueError) {
        if let unknown = json.keys.sorted().first(where: { !envelopeFields.contains($0) }) {
            throw VenueError("\(unknown) is not passed through Warden")
        }
        for name in ["vaultAddress", "expiresAfter"] where json[name] != nil && !(json[name] is NSNull) {
            throw VenueError("\(name) must be null: Warden trades the credential's own account, with no expiry")
        }
    }

    static func classify(_ action: HyperliquidAction) -> CallClass {
        switch action {
        case .order, .modify, .batchModify:
            let intents = action.orders.map(intent)
            return intents.count == 1 ? .order(intents[0]) : .orders(intents)
        case .cancel, .cancelByCloid, .scheduleCancel:
            return .cancel
        case .updateLeverage(let asset, _, let leverage):
            return .leverage(LeverageChange(instrument: String(asset), leverage: Decimal(leverage)))
        }
    }

    /// A buy never fills above its limit; a sell fills at its limit or better, so at the market at least.
    static func intent(_ order: HyperliquidOrder) -> OrderIntent {
        let price = ExchangeRules.decimal(order.price) ?? 0, size = ExchangeRules.decimal(order.size) ?? 0
        let value: OrderValue =
            order.isBuy
            ? .quote(price * size, asset: "USDC") : .atLeastMarket(amount: price * size, quantity: size, asset: "USDC", maxPayoff: nil)
        var intent = OrderIntent(
            instrument: String(order.asset), side: order.isBuy ? .buy : .sell, quantity: size, value: value, clientOrderID: order.cloid)
        intent.echo = ["tif": order.tif, "price": order.price]
        return intent
    }

    // MARK: signing

    /// The wallet, named by a hash of its key in one spelling (its address would cost a public-key derivation per call).
    public func nonceScope(_ secret: [String: String]) -> String? {
        let key = (secret["private_key"] ?? "").lowercased()
        return "hyperliquid|" + Hex.encode(SHA256.hash(data: Data((key.hasPrefix("0x") ? String(key.dropFirst(2)) : key).utf8)))
    }

    public var noncesInMilliseconds: Bool { true }

    /// Only info calls come here (every exchange action takes a nonce).
    public func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError) {
        guard !request.path.hasSuffix("/exchange") else { throw VenueError("a Hyperliquid action is signed with a nonce") }
    }

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], nonce: Int64) throws(VenueError) {
        // Info calls (the go-live check's) are not signed; an action only ever reaches here POSTed to /exchange.
        guard request.path.hasSuffix("/exchange") else { return }
        guard request.method == "POST" else { throw VenueError("Hyperliquid actions are POSTed to /exchange") }
        guard let json = VenueJSON.object(request.body), let body = json["action"] as? [String: Any],
            let type = body["type"] as? String, !HyperliquidAction.movesFunds(type), let action = try HyperliquidAction.read(body)
        else { throw VenueError("the action cannot be read") }
        let wallet: WalletKey
        do { wallet = try WalletKey(hex: secret["private_key"] ?? "") } catch {
            throw VenueError("the stored Hyperliquid private_key cannot be read")
        }
        let wire = action.wire
        let signature = try Self.signature(wire, nonce: UInt64(nonce), wallet: wallet, mainnet: secret["testnet"] != "true")
        let envelope = OrderedWire.map([
            ("action", wire), ("nonce", .uint(UInt64(nonce))), ("signature", signature), ("vaultAddress", .null),
            ("expiresAfter", .null),
        ])
        request.body = Data(envelope.json.utf8)
        request.headers[.contentType] = "application/json"
    }

    /// What every L1 signature shares: the domain, the type's hash and each source's hash.
    static let domain = EIP712.domainSeparator(
        name: "Exchange", version: "1", chainID: 1337, verifyingContract: [UInt8](repeating: 0, count: 20))
    static let agentType = EIP712.typeHash("Agent(string source,bytes32 connectionId)")
    static let sources = (mainnet: EIP712.string("a"), testnet: EIP712.string("b"))

    /// The L1 signature: EIP-712 over the phantom agent whose connection id is the action's hash.
    static func signature(_ action: OrderedWire, nonce: UInt64, wallet: WalletKey, mainnet: Bool) throws(VenueError) -> OrderedWire {
        let connectionID = EIP712.keccak(action.messagePack + OrderedWire.bigEndian(nonce, bytes: 8) + [0])
        let structHash = EIP712.keccak(agentType + (mainnet ? sources.mainnet : sources.testnet) + connectionID)
        let signed: [UInt8]
        do { signed = try wallet.sign(digest: EIP712.digest(domain: Self.domain, structHash: structHash)) } catch {
            throw VenueError("the action could not be signed with the stored wallet key")
        }
        return .map([
            ("r", .string("0x" + Hex.encode(Array(signed[0..<32])))), ("s", .string("0x" + Hex.encode(Array(signed[32..<64])))),
            ("v", .uint(UInt64(signed[64]))),
        ])
    }

    /// Gives a single new order without a client order id Warden's (`wdn-` and 12 bytes, as 16 bytes of hex).
    public func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?
    ) throws(VenueError) {
        guard order.clientOrderID == nil, let json = VenueJSON.object(request.body), let body = json["action"] as? [String: Any],
            case .order(var orders, let grouping)? = try HyperliquidAction.read(body), orders.count == 1
        else { return }
        orders[0].cloid = "0x" + Hex.encode(Array("wdn-".utf8)) + clientOrderID.dropFirst(4)
        request.body = Data(OrderedWire.map([("action", HyperliquidAction.order(orders, grouping: grouping).wire)]).json.utf8)
    }

    public func prepareBatch(
        _ orders: [OrderIntent], in request: inout UpstreamRequest, secret: [String: String], markets: [String: Data]
    ) throws(VenueError) {}

    // MARK: prices and balances

    /// Every perpetual's context: mark, mid and oracle prices by asset index.
    public func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery {
        PublicQuery(method: "POST", path: "/info", query: "", body: Data(#"{"type":"metaAndAssetCtxs"}"#.utf8))
    }

    /// The highest of the asset's mark, mid and oracle prices.
    public func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal? {
        guard let index = Int(order.instrument), let answer = try? JSONSerialization.jsonObject(with: body) as? [Any], answer.count == 2,
            let universe = (answer[0] as? [String: Any])?["universe"] as? [[String: Any]], let contexts = answer[1] as? [[String: Any]],
            index < universe.count, index < contexts.count, universe[index]["isDelisted"] as? Bool != true
        else { return nil }
        return ["markPx", "midPx", "oraclePx"].compactMap { VenueJSON.decimal(contexts[index][$0]) }.max()
    }

    public var balanceQuery: PublicQuery { balanceQuery(for: [:]) }

    /// The account's perpetuals summary (its address: `account_address`, else the wallet's own).
    public func balanceQuery(for secret: [String: String]) -> PublicQuery {
        let address = secret["account_address"] ?? (try? WalletKey(hex: secret["private_key"] ?? ""))?.addressHex ?? ""
        let body = OrderedWire.map([("type", .string("clearinghouseState")), ("user", .string(address.lowercased()))])
        return PublicQuery(method: "POST", path: "/info", query: "", body: Data(body.json.utf8))
    }

    public func parseBalanceUSD(_ body: Data) -> Double? {
        guard let summary = VenueJSON.object(body)?["marginSummary"] as? [String: Any],
            let value = VenueJSON.decimal(summary["accountValue"])
        else { return nil }
        return NSDecimalNumber(decimal: value).doubleValue
    }

    // MARK: simulator

    static func answer(_ type: String, statuses: [Any]? = nil) -> Data {
        var response: [String: Any] = ["type": type]
        if let statuses { response["data"] = ["statuses": statuses] }
        return VenueJSON.encode(["status": "ok", "response": response])
    }

    public func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data) {
        var filled: [String: Any] = ["totalSz": "\(fill.quantity)", "avgPx": "\(fill.price)", "oid": fill.number]
        if order.clientOrderID != nil { filled["cloid"] = fill.clientOrderID }
        return (.ok, Self.answer("order", statuses: [["filled": filled]]))
    }

    /// One answer whose statuses are each order's, as Hyperliquid answers a batch.
    public func simulatedBatch(_ answers: [Data]) -> Data {
        let statuses = answers.flatMap { answer -> [Any] in
            let response = VenueJSON.object(answer)?["response"] as? [String: Any]
            return ((response?["data"] as? [String: Any])?["statuses"] as? [Any]) ?? []
        }
        return Self.answer("order", statuses: statuses)
    }

    public func simulatedCancel() -> (status: HTTPResponse.Status, body: Data) {
        (
            .ok,
            Self.answer(
                "cancel",
                statuses: [["error": "Order was never placed, already canceled, or filled. (Warden dry-run: paper orders fill at once)"]])
        )
    }

    public func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data) {
        (.ok, Self.answer("default"))
    }

    // MARK: errors

    /// Hyperliquid's shape, `{"status": "err", "response": …}`, with HTTP 200 as Hyperliquid answers: its SDK
    /// hands that answer to the caller.
    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        ("application/json", VenueJSON.encode(["status": "err", "response": message]))
    }

    public var refusalStatus: HTTPResponse.Status? { .ok }
}
