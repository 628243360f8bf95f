import Foundation
import HTTPTypes

/// OpenAI: `Authorization: Bearer` in, the same out; errors as `{"error":{message,type,param,code}}`.
public struct OpenAIVenue: VenueAdapter {
    public init() {}
    public let name = "openai"
    public let defaultBaseURL = "https://api.openai.com"
    public let title = "OpenAI"
    public let secretFields = ["api_key"]

    /// The official SDKs read these.
    public func runEnvironment(gatewayURL: String, key: String) -> [String: String] {
        ["OPENAI_BASE_URL": "\(gatewayURL)/proxy/openai/v1", "OPENAI_API_KEY": key]
    }

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        ["# OpenAI", "OpenAI(base_url=\"\(proxyURL)/openai/v1\", api_key=\"\(key)\")"]
    }
    public let inboundAuthHeaders: [HTTPField.Name] = [.authorization]
    public var usage: UsageDialect? { .openAI }

    public func agentKey(in headers: HTTPFields) -> String? { BearerToken.from(headers) }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[.authorization] = "Bearer \(secret["api_key"] ?? "")"
    }

    /// The Realtime API (`/v1/realtime?model=…`), as the SDK's realtime client opens it.
    public func stream(at path: String) -> StreamRoute? { path == "/v1/realtime" ? .realtime : nil }

    /// A Realtime `error` event, naming the client event it answers.
    public func streamError(_ message: String, to command: Data) -> Data {
        let eventID = (VenueJSON.object(command)?["event_id"] as? String).map { String($0.prefix(128)) }
        var error: [String: Any] = ["type": "invalid_request_error", "code": "warden_budget", "message": message, "param": NSNull()]
        error["event_id"] = eventID ?? NSNull()
        return VenueJSON.encode(["type": "error", "event_id": "evt_warden_\(UUID().uuidString.prefix(12))", "error": error])
    }

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        let type: String =
            switch kind {
            case .authentication: "invalid_request_error"
            case .permission: "permission_error"
            case .invalidRequest: "invalid_request_error"
            case .rateLimit, .budget: "rate_limit_exceeded"
            case .upstream, .timeout, .unavailable: "server_error"
            }
        let code: String =
            switch kind {
            case .authentication: "invalid_api_key"
            case .budget: "insufficient_quota"
            default: "warden_\(kind.rawValue)"
            }
        return ("application/json", VenueJSON.encoded(ErrorEnvelope(error: Failure(message: message, type: type, code: code))))
    }

    /// OpenAI's error object; `param` is always present, as null.
    struct Failure: Encodable {
        let message, type, code: String
        enum CodingKeys: CodingKey { case code, message, param, type }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(code, forKey: .code)
            try container.encode(message, forKey: .message)
            try container.encodeNil(forKey: .param)
            try container.encode(type, forKey: .type)
        }
    }
}
