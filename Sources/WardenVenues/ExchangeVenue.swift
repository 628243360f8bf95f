import Foundation
import HTTPTypes

/// A trading venue: besides finding the agent key and shaping errors, it tells the policy what a call
/// does (and for an order, what it is worth), signs calls as the venue requires, and answers for the
/// venue while live trading is off.
public protocol ExchangeVenue: VenueAdapter {
    /// What `call` does. Fund movement must be recognised here whatever the path's case or spelling.
    /// Readies a call kept for a while (an order that waited for approval) to be signed afresh: drops
    /// what dates its signature. Venues that put the time in headers at signing need nothing.
    func refreshForDelayedSend(_ request: inout UpstreamRequest) throws(VenueError)
    func classify(_ call: ExchangeCall) -> CallClass
    /// Signs the outgoing call with the real credential; `signed` is false for public market data.
    func sign(_ request: inout UpstreamRequest, secret: [String: String], signed: Bool, now: Date) throws(VenueError)
    /// Whether signing costs enough CPU (an RSA private-key operation) to be run off the event loops.
    var signsSlowly: Bool { get }
    /// For venues that want each API key's nonces to rise strictly: what names the key among all keys
    /// (never the key itself). Their signed calls are signed by `sign(_:secret:nonce:)` instead.
    func nonceScope(_ secret: [String: String]) -> String?
    /// Whether the venue's answer to this read repeats the credential itself (an API key's own description):
    /// Warden then reads it whole and hides the credential's values before the agent sees it.
    func echoesCredential(_ call: ExchangeCall) -> Bool
    /// Signs a call with `nonce`, handed out by the store for `nonceScope` and higher than any before it.
    func sign(_ request: inout UpstreamRequest, secret: [String: String], nonce: Int64) throws(VenueError)
    /// Public market data the venue needs to ready a live order (`prepareOrder`'s `market`), if any.
    func marketQuery(for order: OrderIntent, secret: [String: String]) -> PublicQuery?
    /// Readies a live order for the venue: puts in the client order id Warden generated when the agent sent
    /// none, writes JSON bodies back out exactly as they were read (so what was checked is what is sent),
    /// and signs the order itself where the venue wants a wallet signature on it.
    func prepareOrder(
        _ order: OrderIntent, clientOrderID: String, in request: inout UpstreamRequest, secret: [String: String],
        market: Data?) throws(VenueError)
    /// For a venue that serves market data from a host of its own (Alpaca): that host. Calls whose path
    /// `isMarketData` are sent there, and so are the price queries; nil: everything goes to the base URL.
    var defaultMarketDataURL: String? { get }
    /// Whether a call's canonical path is the market data host's.
    func isMarketData(_ path: String) -> Bool
    /// Whether the venue's market data is served only with the credential (Alpaca's is): price queries then
    /// carry the headers `authorize` writes.
    var pricesNeedCredential: Bool { get }
    /// The public call that prices `order`'s instrument now (`instrument` overrides it, for conversions).
    func priceQuery(for order: OrderIntent, instrument: String?) -> PublicQuery
    /// The price in the answer to `priceQuery`, per unit of quantity, in the order's quote currency.
    func parsePrice(_ body: Data, for order: OrderIntent) -> Decimal?
    /// For an instrument traded in contracts, the public call that says how much of the underlying one contract
    /// is (nil: the order's quantity is the underlying's own). The order's value is then read as if its
    /// quantity were the underlying's, and multiplied by that size.
    func contractQuery(for order: OrderIntent) -> PublicQuery?
    /// The underlying per contract in the answer to `contractQuery`.
    func parseContractSize(_ body: Data, for order: OrderIntent) -> Decimal?
    /// The authenticated call that reads the account's balance (the go-live check).
    var balanceQuery: PublicQuery { get }
    /// The same for a credential, for venues whose balance call names the account (Hyperliquid's).
    func balanceQuery(for secret: [String: String]) -> PublicQuery
    /// Whether the venue's nonces count milliseconds (Hyperliquid's are a time within a day of the venue's);
    /// otherwise they count nanoseconds.
    var noncesInMilliseconds: Bool { get }
    /// Cash in USD (stablecoins at par) in the answer to `balanceQuery`.
    func parseBalanceUSD(_ body: Data) -> Double?
    /// The venue's order response for a simulated fill, with the status its SDK expects for success.
    func simulatedOrder(_ order: OrderIntent, fill: SimulatedFill) -> (status: HTTPResponse.Status, body: Data)
    /// The venue's answer to a simulated batch, from each order's `simulatedOrder` body (a JSON list of them unless
    /// the venue answers a batch in one piece).
    func simulatedBatch(_ answers: [Data]) -> Data
    /// Readies a live batch of orders, as `prepareOrder` does one; `markets` holds `marketQuery`'s answers by instrument.
    func prepareBatch(
        _ orders: [OrderIntent], in request: inout UpstreamRequest, secret: [String: String],
        markets: [String: Data]) throws(VenueError)
    /// Signs a `walletAuth` call with the wallet key of the credential.
    func signWalletAuth(_ request: inout UpstreamRequest, secret: [String: String], now: Date) throws(VenueError)
    /// The credential fields in the venue's answer to a `walletAuth` call.
    func walletAuthFields(_ body: Data) -> [String: String]?
    /// The venue's answer to a cancel while live trading is off: paper orders fill at once, so there is
    /// nothing left to cancel.
    func simulatedCancel() -> (status: HTTPResponse.Status, body: Data)
    /// The venue's answer to a leverage change while live trading is off (nothing is sent).
    func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data)
}

/// An incoming exchange call, as the policy sees it: canonical path, raw query and body.
public struct ExchangeCall: Sendable {
    public let method: String
    /// The canonical path (after `/proxy/{venue}`).
    public let path: String
    public let query: String
    public let body: Data

    public init(method: String, path: String, query: String, body: Data) {
        self.method = method.uppercased()
        self.path = path
        self.query = query
        self.body = body
    }

    /// The path lowercased, for matching that no change of case can get past.
    public var matchingPath: String { path.lowercased() }
}

/// What a call does, in the policy's terms.
public enum CallClass: Sendable, Equatable {
    case publicRead
    case privateRead
    case order(OrderIntent)
    /// Several orders in one call (Polymarket `POST /orders`): each is priced and held like a single order.
    case orders([OrderIntent])
    case cancel
    /// A change of a derivatives position's leverage: held under the owner's `max_leverage`.
    case leverage(LeverageChange)
    /// Withdrawals and transfers: refused always.
    case fundMovement
    /// Minting the venue's API credentials with the wallet key (Polymarket level 1): signed by Warden,
    /// the answer stored in the credential, never returned.
    case walletAuth
    /// Not on the venue's allowlist: refused unless the operator allows it in the config.
    case unknown
    /// A call the venue would read differently from Warden (duplicate or unknown parameters, bad numbers).
    case invalid(String)
}

/// What kind of exchange call Warden sends or answers, as its audit rows name it (refused classes
/// never get this far).
public enum CallKind: String, Sendable {
    case publicRead = "public_read", privateRead = "private_read"
    /// Not on Warden's list, opened by the operator's `allow_endpoints`.
    case allowedByConfig = "allowed_by_config"
    case cancel, order, orders, leverage
    case walletAuth = "wallet_auth"

    /// Reads are recorded as they end; anything else may act on the account and is recorded before it is sent.
    public var isRead: Bool { self == .publicRead || self == .privateRead }
}

extension ExchangeVenue {
    public var signsSlowly: Bool { false }

    public func nonceScope(_ secret: [String: String]) -> String? { nil }

    public func echoesCredential(_ call: ExchangeCall) -> Bool { false }

    public func sign(_ request: inout UpstreamRequest, secret: [String: String], nonce: Int64) throws(VenueError) {
        throw VenueError("\(name) takes no nonce")
    }

    public func refreshForDelayedSend(_ request: inout UpstreamRequest) throws(VenueError) {}

    public func marketQuery(for order: OrderIntent, secret: [String: String]) -> PublicQuery? { nil }

    public func contractQuery(for order: OrderIntent) -> PublicQuery? { nil }

    public var defaultMarketDataURL: String? { nil }

    public func isMarketData(_ path: String) -> Bool { false }

    public var pricesNeedCredential: Bool { false }

    public func balanceQuery(for secret: [String: String]) -> PublicQuery { balanceQuery }

    public var noncesInMilliseconds: Bool { false }

    public func simulatedBatch(_ answers: [Data]) -> Data {
        let objects = answers.compactMap { try? JSONSerialization.jsonObject(with: $0) }
        return (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])) ?? Data("[]".utf8)
    }

    public func parseContractSize(_ body: Data, for order: OrderIntent) -> Decimal? { nil }

    public func signWalletAuth(_ request: inout UpstreamRequest, secret: [String: String], now: Date) throws(VenueError) {
        throw VenueError("\(name) has no wallet authentication")
    }

    public func prepareBatch(
        _ orders: [OrderIntent], in request: inout UpstreamRequest, secret: [String: String],
        markets: [String: Data]
    ) throws(VenueError) {
        throw VenueError("\(name) has no batch orders")
    }

    public func walletAuthFields(_ body: Data) -> [String: String]? { nil }

    /// Venues without leverage never classify a call as a leverage change.
    public func simulatedLeverage(_ change: LeverageChange) -> (status: HTTPResponse.Status, body: Data) {
        (.badRequest, errorBody(status: .badRequest, kind: .invalidRequest, message: "\(name) has no leverage setting").body)
    }
}

/// A leverage setting an agent asks a derivatives venue for.
public struct LeverageChange: Sendable, Equatable {
    public let instrument: String
    /// The highest leverage the change asks for (venues that set buys and sells apart give two).
    public let leverage: Decimal

    public init(instrument: String, leverage: Decimal) {
        self.instrument = instrument
        self.leverage = leverage
    }
}

public enum OrderSide: String, Sendable, Equatable { case buy, sell }

/// An order as the policy prices it.
public struct OrderIntent: Sendable, Equatable {
    public var instrument: String
    public var side: OrderSide
    public var quantity: Decimal?
    public var value: OrderValue
    public var clientOrderID: String?
    /// A hash of everything the venue executes, set only by venues that can never execute the same
    /// content twice (they identify an order by it): a retry of such an order holds no second reservation.
    public var fingerprint: String?
    /// Venue-specific fields the simulator echoes back (order type, contract side, …).
    public var echo: [String: String] = [:]

    public init(instrument: String, side: OrderSide, quantity: Decimal?, value: OrderValue, clientOrderID: String?) {
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.value = value
        self.clientOrderID = clientOrderID
    }
}

/// What an order is worth, as far as the request alone says.
public enum OrderValue: Sendable, Equatable {
    /// In USD already.
    case usd(Decimal)
    /// An amount in a quote asset (converted to USD through its price unless it is a USD stablecoin).
    case quote(Decimal, asset: String)
    /// A quantity to be valued at the instrument's last price, in `asset`.
    case atMarket(quantity: Decimal, asset: String)
    /// A sell that may fill above its limit: worth `amount` (its limit value, in `asset`) or `quantity` at
    /// the market, whichever is more. When the market cannot be read, `quantity` × `maxPayoff` (a binary
    /// contract pays at most 1 per contract); without a `maxPayoff` the order cannot be priced.
    case atLeastMarket(amount: Decimal, quantity: Decimal, asset: String, maxPayoff: Decimal?)
    /// The request does not say; the order is refused with this reason.
    case undetermined(String)
}

/// A call the gateway makes itself (prices, balances): a GET unless the venue takes it otherwise; a body
/// is JSON.
public struct PublicQuery: Sendable, Equatable {
    public let method: String
    public let path: String
    public let query: String
    public let body: Data

    public init(method: String = "GET", path: String, query: String, body: Data = Data()) {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
    }
}

/// The call Warden sends upstream; venues sign it in place.
public struct UpstreamRequest: Sendable {
    public var method: String
    /// The path the venue sees, including any prefix of the configured base URL.
    public var path: String
    public var query: String
    public var headers: HTTPFields
    public var body: Data
    /// The venue's host (and port, when not the scheme's), for venues that sign it.
    public var authority = ""

    public init(method: String, path: String, query: String, headers: HTTPFields, body: Data) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// A fill made up by the simulator. Prices and amounts are in the order's quote currency; the USD
/// figures are what the paper ledger books.
public struct SimulatedFill: Sendable {
    public let orderID: String
    /// A numeric id for venues whose order ids are numbers.
    public let number: Int64
    public let clientOrderID: String
    public let price: Decimal
    public let quantity: Decimal
    public let quoteNotional: Decimal
    public let feeQuote: Decimal
    public let notionalUSD: Decimal
    public let feeUSD: Decimal
    public let time: Date

    public init(
        orderID: String, number: Int64, clientOrderID: String, price: Decimal, quantity: Decimal, usdPerQuote: Decimal,
        feeBps: Decimal, time: Date
    ) {
        self.orderID = orderID
        self.number = number
        self.clientOrderID = clientOrderID
        self.price = price
        self.quantity = quantity
        quoteNotional = price * quantity
        feeQuote = quoteNotional * feeBps / 10_000
        notionalUSD = quoteNotional * usdPerQuote
        feeUSD = feeQuote * usdPerQuote
        self.time = time
    }
}

public struct VenueError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Rules every exchange shares.
public enum ExchangeRules {
    /// Words that mark a path as moving funds off the trading account, on any venue, in any case.
    static let fundMovementWords = ["withdraw", "transfer"]

    /// Whether a canonical path matches an allowlist entry, where `*` stands for one path segment.
    /// `*` stands for one segment, an id, but never for one of `reserved` (compared case-insensitively).
    static func matches(_ pattern: String, _ path: String, reserved: Set<String> = []) -> Bool {
        let p = pattern.split(separator: "/"), s = path.split(separator: "/")
        return p.count == s.count && zip(p, s).allSatisfy { $0 == "*" ? !reserved.contains($1.lowercased()) : $0 == $1 }
    }

    static func movesFunds(_ call: ExchangeCall) -> Bool {
        fundMovementWords.contains { call.matchingPath.contains($0) }
    }

    /// USD stablecoins valued at par.
    public static let usdStablecoins: Set<String> = ["USDT", "USDC", "FDUSD", "TUSD", "BUSD", "DAI", "USDP", "USD"]

    static let posix = Locale(identifier: "en_US_POSIX")

    /// A plain non-negative decimal (`12`, `0.5`): no sign, exponent, spaces or hex that a venue might read otherwise.
    public static func decimal(_ text: String) -> Decimal? {
        guard text.utf8.count <= 40, ASCII.isPlainDecimal(text) else { return nil }
        return Decimal(string: text, locale: posix)
    }

    /// A decimal written for a venue (no exponent, trailing zeros kept to `places`).
    public static func format(_ value: Decimal, places: Int) -> String {
        var rounded = Decimal()
        var source = value
        NSDecimalRound(&rounded, &source, places, .plain)
        let formatter = NumberFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.minimumFractionDigits = places
        formatter.maximumFractionDigits = places
        formatter.minimumIntegerDigits = 1
        formatter.usesGroupingSeparator = false
        return formatter.string(from: rounded as NSDecimalNumber) ?? "\(rounded)"
    }

    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded(.down)) }
}

extension VenueJSON {
    /// A JSON order written out again with `id` in `field` when the agent gave none: what was checked is what
    /// is sent, with Warden's client order id.
    static func order(_ request: inout UpstreamRequest, clientOrderID id: String?, field: String) throws(VenueError) {
        guard var json = object(request.body) else { throw VenueError("the order body could not be read again") }
        if let id { json[field] = id }
        request.body = encode(json)
    }

    public static func object(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// A JSON number or numeric string, as a decimal.
    static func decimal(_ value: Any?) -> Decimal? {
        switch value {
        case let s as String: ExchangeRules.decimal(s)
        case let n as NSNumber: ExchangeRules.decimal(n.stringValue)
        default: nil
        }
    }
}
