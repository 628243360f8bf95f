import Foundation
import HTTPTypes

/// Anthropic: SDKs send `x-api-key` (before version 2) or `Authorization: Bearer` (from version 2);
/// both are accepted and neither is forwarded. Upstream gets `x-api-key`.
public struct AnthropicVenue: VenueAdapter {
    public init() {}
    public let name = "anthropic"
    public let defaultBaseURL = "https://api.anthropic.com"
    public let title = "Anthropic"
    public let secretFields = ["api_key"]

    /// The official SDKs read these.
    public func runEnvironment(gatewayURL: String, key: String) -> [String: String] {
        ["ANTHROPIC_BASE_URL": "\(gatewayURL)/proxy/anthropic", "ANTHROPIC_API_KEY": key]
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        ["# Anthropic", "Anthropic(base_url=\"\(proxyURL)/anthropic\", api_key=\"\(key)\")"]
    }
    public let inboundAuthHeaders: [HTTPField.Name] = [.authorization, .init("x-api-key")!]
    public var usage: UsageDialect? { .anthropic }

    public func agentKey(in headers: HTTPFields) -> String? {
        headers[HTTPField.Name("x-api-key")!] ?? BearerToken.from(headers)
    }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[HTTPField.Name("x-api-key")!] = secret["api_key"] ?? ""
    }

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let type: String =
            switch kind {
            case .authentication: "authentication_error"
            case .permission: "permission_error"
            case .invalidRequest: "invalid_request_error"
            case .rateLimit, .budget: "rate_limit_error"
            case .upstream, .unavailable: "api_error"
            case .timeout: "timeout_error"
            }
        return ("application/json", VenueJSON.encoded(ErrorEnvelope(type: "error", error: ["type": type, "message": message])))
    }
}
