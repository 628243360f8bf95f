import Hummingbird
import WardenCore

/// Requires a valid bearer token (a login session's, or a personal access token within its scope) and
/// sets `context.principal`. While the user must change their password, only the password change,
/// `GET /me` and logout are let through.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = WardenContext
    let accounts: Accounts
    let accessTokens: AccessTokens

    static let allowedBeforePasswordChange: Set<String> = [
        "POST /api/v1/auth/password", "GET /api/v1/me", "POST /api/v1/auth/logout",
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization], header.count > 7,
            header.prefix(7).lowercased() == "bearer "
        else { throw WardenError.unauthenticated }
        var context = context
        let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        let path = request.uri.path.hasSuffix("/") ? String(request.uri.path.dropLast()) : request.uri.path
        let principal: Principal
        if token.hasPrefix(AccessTokens.prefix) {
            principal = try await accessTokens.authenticate(token)
            if let scope = principal.scope, !scope.allows(method: request.method.rawValue, path: path) {
                throw WardenError(
                    .forbidden, code: "token_scope",
                    "this access token's scope (\(scope.rawValue)) does not allow \(request.method.rawValue) \(path)")
            }
        } else {
            principal = try await accounts.authenticate(token: token)
        }
        if principal.user.mustChangePassword {
            guard Self.allowedBeforePasswordChange.contains("\(request.method.rawValue) \(path)") else {
                throw WardenError.passwordChangeRequired
            }
        }
        context.principal = principal
        return try await next(request, context)
    }
}
