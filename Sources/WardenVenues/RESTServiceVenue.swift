import Foundation
import HTTPTypes

/// Any REST API described in the config: the token goes in `auth_header` after `auth_value_prefix`.
/// Errors are problem documents.
public struct RESTServiceVenue: VenueAdapter {
    public let name: String
    public let defaultBaseURL: String
    public let secretFields = ["token"]

    public func sdkSnippet(proxyURL: String, key: String) -> [String] {
        ["# \(name)", "base URL \(proxyURL)/\(name), header \(authHeader) carries the key"]
    }
    public let authHeader: HTTPField.Name
    public let authValuePrefix: String
    /// `websocket = true`: WebSockets opened at any path are relayed, the auth header on the handshake.
    public let websocket: Bool

    public init(name: String, baseURL: String, authHeader: String, authValuePrefix: String, websocket: Bool = false) {
        self.name = name
        self.defaultBaseURL = baseURL
        self.authHeader = HTTPField.Name(authHeader) ?? .authorization
        self.authValuePrefix = authValuePrefix
        self.websocket = websocket
    }

    public func stream(at path: String) -> StreamRoute? { websocket ? .relay : nil }

    public var inboundAuthHeaders: [HTTPField.Name] { [authHeader, .authorization] }

    public func agentKey(in headers: HTTPFields) -> String? {
        guard let value = headers[authHeader] else { return nil }
        if !authValuePrefix.isEmpty, value.lowercased().hasPrefix(authValuePrefix.lowercased()) {
            return String(value.dropFirst(authValuePrefix.count)).trimmingCharacters(in: .whitespaces)
        }
        return value.trimmingCharacters(in: .whitespaces)
    }

    public func authorize(_ headers: inout HTTPFields, secret: [String: String]) {
        headers[authHeader] = authValuePrefix + (secret["token"] ?? "")
    }

    public func errorBody(status: HTTPResponse.Status, kind: RefusalKind, message: String) -> (contentType: String, body: Data) {
        (
            "application/problem+json",
            VenueJSON.encoded(
                Problem(
                    type: "https://warden.local/problems/gateway_\(kind.rawValue)", title: status.reasonPhrase,
                    status: status.code, code: "gateway_\(kind.rawValue)", detail: message))
        )
    }

    /// An RFC 9457 problem, as the management API answers.
    struct Problem: Encodable {
        let type, title: String
        let status: Int
        let code, detail: String
    }
}
