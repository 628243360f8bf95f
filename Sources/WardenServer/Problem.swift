import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import WardenCore

/// An RFC 9457 problem document (`application/problem+json`) with a stable `code` and a message
/// a person can act on. Never carries secrets.
public struct Problem: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let code: String
    public let detail: String
    public var field: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, detail: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
    }

    struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let code: String
        let detail: String
        let field: String?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(
            type: "https://warden.local/problems/\(code)", title: status.reasonPhrase, status: status.code,
            code: code, detail: detail, field: field)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var fields = headers
        fields[.contentType] = "application/problem+json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    public static func payloadTooLarge(limit: Int) -> Problem {
        Problem(.contentTooLarge, code: "payload_too_large", detail: "the request body is larger than the limit of \(limit) bytes")
    }
}

extension Problem {
    /// The HTTP form of a core refusal.
    static func from(_ error: WardenError) -> Problem {
        let status: HTTPResponse.Status =
            switch error.kind {
            case .badRequest: .badRequest
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .notFound: .notFound
            case .conflict: .conflict
            case .tooManyRequests: .tooManyRequests
            case .unavailable: .serviceUnavailable
            }
        var problem = Problem(status, code: error.code, detail: error.message, field: error.field)
        if let wait = error.retryAfterSeconds { problem.headers[.retryAfter] = String(wait) }
        if error.kind == .unauthorized { problem.headers[.wwwAuthenticate] = "Bearer" }
        return problem
    }
}
