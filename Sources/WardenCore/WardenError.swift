/// A refusal the API reports to its caller: a stable code, an HTTP-like kind and a message a person
/// can act on. Messages never contain secrets.
public struct WardenError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badRequest, unauthorized, forbidden, notFound, conflict, tooManyRequests, unavailable
    }

    public let kind: Kind
    public let code: String
    public let message: String
    public var field: String?
    public var retryAfterSeconds: Int?

    public init(_ kind: Kind, code: String, _ message: String, field: String? = nil, retryAfterSeconds: Int? = nil) {
        self.kind = kind
        self.code = code
        self.message = message
        self.field = field
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { message }

    public static func invalid(_ field: String, _ message: String) -> WardenError {
        WardenError(.badRequest, code: "invalid_field", "\(field): \(message)", field: field)
    }

    public static func notFound(_ what: String) -> WardenError {
        WardenError(.notFound, code: "not_found", "no such \(what)")
    }

    public static let badCredentials = WardenError(.unauthorized, code: "invalid_credentials", "wrong email or password")
    public static let unauthenticated = WardenError(.unauthorized, code: "unauthenticated", "a valid bearer token is required")
    public static let passwordChangeRequired = WardenError(
        .forbidden, code: "password_change_required",
        "you must change your password first: POST /api/v1/auth/password")
}
