import Foundation
import HTTPTypes

/// What Warden must know about a venue to stand between an agent and it: everything about one venue
/// is in its own file. Adding a venue means adding one type that conforms to this, and registering it
/// in `VenueRegistry`.
public protocol VenueAdapter: Sendable {
    /// The name in `/proxy/{name}/…` and in credentials.
    var name: String { get }
    /// The name as people write it ("OpenAI"), for the dashboard.
    var title: String { get }
    /// Upstream used unless the config overrides it.
    var defaultBaseURL: String { get }
    /// Fields every credential of this venue carries.
    var secretFields: [String] { get }
    /// Fields a credential may carry besides those.
    var optionalSecretFields: [String] { get }
    /// Checks of a credential's fields beyond their presence (a key that parses, an address that matches it).
    func checkSecret(_ secret: [String: String]) throws(SecretFieldError)
    /// The variables `warden run` gives a program for this venue: where its SDK finds the base URL and key.
    func runEnvironment(gatewayURL: String, key: String) -> [String: String]
    /// How to point the venue's SDK at the gateway, as the dashboard shows it with a new key.
    func sdkSnippet(proxyURL: String, key: String) -> [String]
    /// The agent key as the venue's SDK sends it (besides `X-Warden-Key`, which works everywhere).
    func agentKey(in headers: HTTPFields) -> String?
    /// Request headers that carry the SDK's own authentication; they never go upstream.
    var inboundAuthHeaders: [HTTPField.Name] { get }
    /// Adds the real credential to the upstream request.
    func authorize(_ headers: inout HTTPFields, secret: [String: String])
    /// A refusal shaped like the venue's own errors, so the SDK raises a readable exception.
    func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data)
    /// How this venue reports token usage, for LLM venues (nil otherwise).
    var usage: UsageDialect? { get }
    /// A path prefix the venue's SDK keeps whatever URL it is given (it keeps only the host): the venue is
    /// served there at the gateway's root too, besides `/proxy/{name}`.
    var rootPrefix: String? { get }
    /// The status of Warden's refusals when the venue's SDK reads errors only from another one (Bybit
    /// answers its errors with 200); nil keeps Warden's own.
    var refusalStatus: HTTPResponse.Status? { get }
    /// What Warden does with a WebSocket opened at `path` (canonical, after `/proxy/{name}`); nil: none is served there.
    func stream(at path: String) -> StreamRoute?
    /// Where the venue serves its stream at `path`, when not at `defaultBaseURL`'s host.
    func defaultStreamURL(for path: String) -> String?
    /// How a command sent on a `.signedHandshake` stream is taken.
    func streamCommand(_ message: Data) -> StreamCommand
    /// The answer to a stream `command` Warden refused, in the venue's stream error shape.
    func streamError(_ message: String, to command: Data) -> Data
}

/// Why the gateway refused or failed a call; venues map it to their own error types.
public enum RefusalKind: String, Sendable {
    case authentication, permission, invalidRequest, rateLimit, budget, upstream, timeout, unavailable
}

extension VenueAdapter {
    public var usage: UsageDialect? { nil }
    public var rootPrefix: String? { nil }
    public var refusalStatus: HTTPResponse.Status? { nil }
    public var title: String { name }
    public var optionalSecretFields: [String] { [] }
    public func checkSecret(_ secret: [String: String]) throws(SecretFieldError) {}

    /// `WARDEN_<NAME>_BASE_URL` and `WARDEN_<NAME>_API_KEY`, for venues whose SDK reads no variable of its own.
    public func runEnvironment(gatewayURL: String, key: String) -> [String: String] {
        let variable = name.uppercased().replacingOccurrences(of: "-", with: "_")
        return ["WARDEN_\(variable)_BASE_URL": "\(gatewayURL)/proxy/\(name)", "WARDEN_\(variable)_API_KEY": key]
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        ["# \(title)", "base URL \(proxyURL)/\(name), header X-Warden-Key carries the key"]
    }
}

/// A credential field that is present but not what the venue needs.
public struct SecretFieldError: Error, Sendable {
    public let field: String
    public let reason: String

    public init(_ field: String, _ reason: String) {
        self.field = field
        self.reason = reason
    }
}

/// Bearer-token extraction shared by several venues.
enum BearerToken {
    static let scheme = Array("bearer ".utf8)

    /// The token of `Authorization: Bearer <token>` (scheme in any case), without surrounding spaces or tabs.
    static func from(_ headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let utf8 = value.utf8
        guard utf8.count > scheme.count, zip(utf8, scheme).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
        let token = utf8.dropFirst(scheme.count)
        let blank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = token.firstIndex(where: { !blank($0) }), let last = token.lastIndex(where: { !blank($0) }) else { return "" }
        return String(decoding: token[first...last], as: UTF8.self)
    }
}

public enum VenueJSON {
    public static func encode(_ object: [String: Any]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// A typed body, keys sorted as `encode(_:)` does. Refusals take this path: building them
    /// through `JSONSerialization` bridged every value to Foundation's objects, a large share of a
    /// refused call's CPU (docs/benchmarks.md).
    static func encoded(_ value: some Encodable) -> Data {
        (try? encoder.encode(value)) ?? Data("{}".utf8)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// The `{"error": {...}}` shape that OpenAI, Anthropic and Kalshi wrap their errors in.
struct ErrorEnvelope<Inner: Encodable>: Encodable {
    var type: String?
    let error: Inner
}
