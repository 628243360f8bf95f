import Foundation
import HTTPTypes

/// What Warden must know about a venue to stand between an agent and it. Adding a venue means adding
/// one type that conforms to this, and registering it in `VenueRegistry`.
public protocol VenueAdapter: Sendable {
    /// The name in `/proxy/{name}/…` and in credentials.
    var name: String { get }
    /// Upstream used unless the config overrides it.
    var defaultBaseURL: String { get }
    /// Fields of this venue's credential secret.
    var secretFields: [String] { get }
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
}

/// Why the gateway refused or failed a call; venues map it to their own error types.
public enum RefusalKind: String, Sendable {
    case authentication, permission, invalidRequest, rateLimit, budget, upstream, timeout, unavailable
}

extension VenueAdapter {
    public var usage: UsageDialect? { nil }
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

enum VenueJSON {
    static func encode(_ object: [String: Any]) -> Data {
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
