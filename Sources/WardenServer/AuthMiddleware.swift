import Hummingbird
import WardenCore

/// Requires a valid bearer token and sets `context.principal`. While the user must change their
/// password, only the password change, `GET /me` and logout are let through.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = WardenContext
    let accounts: Accounts

    static let allowedBeforePasswordChange: Set<String> = [
        "POST /api/v1/auth/password", "GET /api/v1/me", "POST /api/v1/auth/logout",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.count > 7,
            header.prefix(7).lowercased() == "bearer "
        else { throw WardenError.unauthenticated }
        var context = context
        let principal = try await accounts.authenticate(token: String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces))
        if principal.user.mustChangePassword {
            let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
            guard Self.allowedBeforePasswordChange.contains("\(request.method.rawValue) \(path)") else {
                throw WardenError.passwordChangeRequired
            }
        }
        context.principal = principal
        return try await next(request, context)
    }
}
