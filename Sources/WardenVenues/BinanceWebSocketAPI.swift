import Crypto
import Foundation
import WardenCrypto

/// Binance's WebSocket API (`/ws-api/v3`): `{"id","method","params"}` requests, answered by
/// `{"id","status","result"|"error"}`. Signed requests carry `apiKey`, `timestamp` and `signature`: the
/// HMAC-SHA256 (hex) of the parameters sorted by name as `name=value` pairs joined by `&`. The agent's
/// `apiKey` is its Warden key; Warden drops its signature and signs with the real secret.
extension BinanceVenue: StreamRequestVenue {
    /// Each method Warden relays, by what it does: its REST twin, or how else it is taken.
    enum WebSocketMethod {
        case rest(String, String)
        case publicData
        case signedRead
        case session
    }

    static let webSocketMethods: [String: WebSocketMethod] = [
        "order.place": .rest("POST", "/api/v3/order"),
        "order.test": .rest("POST", "/api/v3/order/test"),
        "order.cancel": .rest("DELETE", "/api/v3/order"),
        "order.status": .rest("GET", "/api/v3/order"),
        "openOrders.status": .rest("GET", "/api/v3/openOrders"),
        "openOrders.cancelAll": .rest("DELETE", "/api/v3/openOrders"),
        "allOrders": .rest("GET", "/api/v3/allOrders"),
        "myTrades": .rest("GET", "/api/v3/myTrades"),
        "account.status": .rest("GET", "/api/v3/account"),
        "userDataStream.subscribe.signature": .signedRead,
        "userDataStream.subscribe": .signedRead,
        "userDataStream.unsubscribe": .publicData,
        "session.logon": .session, "session.status": .session, "session.logout": .session,
        "ping": .publicData, "time": .publicData, "exchangeInfo": .publicData, "depth": .publicData,
        "trades.recent": .publicData, "trades.historical": .publicData, "trades.aggregate": .publicData,
        "klines": .publicData, "uiKlines": .publicData, "avgPrice": .publicData, "ticker.24hr": .publicData,
        "ticker.tradingDay": .publicData, "ticker": .publicData, "ticker.price": .publicData, "ticker.book": .publicData,
    ]

    /// What the agent's client adds to sign a request: never forwarded, never priced.
    static let signingParameters: Set<String> = ["apiKey", "signature", "timestamp"]

    public func streamRequest(_ message: Data, forwardAs wardenID: String) -> StreamRequest {
        guard JSONMembers.isStrict(message), let request = VenueJSON.object(message) else {
            return .refused(id: nil, reason: "a request is one JSON object naming each member once")
        }
        guard let id = StreamRequestID(request["id"]) else {
            return .refused(id: nil, reason: "id must be a string of at most \(StreamRequestID.maxLength) bytes, an integer or null")
        }
        guard let method = request["method"] as? String else { return .refused(id: id, reason: "a request names its method") }
        if let unknown = request.keys.first(where: { !["id", "method", "params"].contains($0) }) {
            return .refused(id: id, reason: "unknown member \(unknown.prefix(40))")
        }
        guard let kind = Self.webSocketMethods[method] else {
            return .refused(id: id, reason: "Warden does not relay \(method.prefix(64)) on Binance's WebSocket API")
        }
        guard let params = Self.parameters(request["params"]) else {
            return .refused(id: id, reason: "params must be an object of strings, numbers and booleans")
        }
        let apiKey = params.first { $0.name == "apiKey" }?.value
        switch kind {
        case .session: return .session(id: id, method: method, apiKey: apiKey)
        case .signedRead: return .signedRead(id: id, method: method, apiKey: apiKey)
        case .publicData:
            var forwarded = request
            forwarded["id"] = wardenID
            if var object = request["params"] as? [String: Any] {
                for name in Self.signingParameters { object[name] = nil }
                forwarded["params"] = object
            }
            return .publicData(id: id, message: VenueJSON.encode(forwarded))
        case .rest(let restMethod, let path):
            let priced = params.filter { !Self.signingParameters.contains($0.name) }
            // Values go into a form unescaped, so one character outside this set could be read two ways.
            if let unsafe = priced.first(where: { !Self.isPlainValue($0.value) }) {
                return .refused(id: id, reason: "parameter \(unsafe.name.prefix(40)) must be letters, digits and . _ - only")
            }
            if let unnamed = priced.first(where: { !$0.name.utf8.allSatisfy(ASCII.isLetter) }) {
                return .refused(id: id, reason: "parameter names must be plain letters, got \(unnamed.name.prefix(40))")
            }
            let form = priced.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
            return .rest(id: id, method: method, restMethod: restMethod, path: path, form: form, apiKey: apiKey)
        }
    }

    /// The parameters as name and text: a string as it is, an integer or decimal as written, a boolean as
    /// `true`/`false`; nil when any is of another type.
    static func parameters(_ value: Any?) -> [(name: String, value: String)]? {
        guard let value else { return [] }
        guard let object = value as? [String: Any] else { return nil }
        var pairs: [(name: String, value: String)] = []
        for (name, member) in object.sorted(by: { $0.key < $1.key }) {
            switch member {
            case let text as String: pairs.append((name, text))
            case let number as NSNumber where String(cString: number.objCType) == "c":
                pairs.append((name, number.boolValue ? "true" : "false"))
            case let number as NSNumber: pairs.append((name, number.stringValue))
            default: return nil
            }
        }
        return pairs
    }

    static func isPlainValue(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { ASCII.isLetter($0) || ASCII.isDigit($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    public func streamMessage(id: StreamRequestID, method: String, from signed: UpstreamRequest, secret: [String: String])
        throws(VenueError) -> Data
    {
        let pairs = try FormParameters(signed.query).pairs + FormParameters(String(decoding: signed.body, as: UTF8.self)).pairs
        var params = pairs.filter { $0.name != "signature" }.map { (name: $0.name, value: $0.value) }
        params.append((name: "apiKey", value: secret["api_key"] ?? ""))
        return Self.request(id: id, method: method, params: params, secret: secret)
    }

    public func streamSigned(id: StreamRequestID, method: String, secret: [String: String], now: Date) -> Data {
        // A session-bound subscription becomes its signed form: Warden never logs the session on.
        let signedMethod = method == "userDataStream.subscribe" ? "userDataStream.subscribe.signature" : method
        let params = [(name: "apiKey", value: secret["api_key"] ?? ""), (name: "timestamp", value: String(ExchangeRules.millis(now)))]
        return Self.request(id: id, method: signedMethod, params: params, secret: secret)
    }

    /// `{"id","method","params"}` with `params` sorted by name and signed over `name=value&…` in that order.
    static func request(id: StreamRequestID, method: String, params: [(name: String, value: String)], secret: [String: String]) -> Data {
        let sorted = params.sorted { $0.name < $1.name }
        let payload = sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
        let key = SymmetricKey(data: Data((secret["api_secret"] ?? "").utf8))
        let signature = Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(payload.utf8), using: key))
        var object: [String: Any] = [:]
        for (name, value) in sorted { object[name] = value }
        object["signature"] = signature
        let params = String(decoding: VenueJSON.encode(object), as: UTF8.self)
        let name = String(decoding: VenueJSON.encode(["m": method]).dropFirst(5).dropLast(), as: UTF8.self)
        return Data("{\"id\":\(id.json),\"method\":\(name),\"params\":\(params)}".utf8)
    }

    /// The REST answer's body goes in as `result`, or for a status of 400 and above as `error` (Binance's
    /// REST errors are the stream's error objects, `{"code","msg"}`).
    public func streamAnswer(id: StreamRequestID, status: Int, body: Data) -> Data {
        let json = JSONMembers.isStrict(body) ? String(decoding: body, as: UTF8.self) : "{}"
        return Data("{\"id\":\(id.json),\"status\":\(status),\"\(status >= 400 ? "error" : "result")\":\(json)}".utf8)
    }

    public func streamAnswerStatus(_ message: Data) -> (id: StreamRequestID, status: Int)? {
        guard let members = try? JSONMembers.read(message, names: ["id", "status"]), let status = members["status"]?.integer else {
            return nil
        }
        let id: StreamRequestID? =
            switch members["id"] {
            case .string(let text): StreamRequestID(text)
            case .number(_, let integer?): StreamRequestID(NSNumber(value: integer))
            case .null: StreamRequestID(nil)
            default: nil
            }
        return id.map { ($0, status) }
    }
}
