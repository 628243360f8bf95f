import Hummingbird
import WardenCore

/// `/auth/*` and `/me`.
struct AuthController {
    let accounts: Accounts
    let bodyLimit: Int

    struct LoginRequest: Decodable { let email: String; let password: String }
    struct LoginResponse: Encodable {
        let accessToken: String, tokenType: String, expiresIn: Int, mustChangePassword: Bool
        enum CodingKeys: String, CodingKey {
            case accessToken = "access_token", tokenType = "token_type", expiresIn = "expires_in"
            case mustChangePassword = "must_change_password"
        }
    }
    struct PasswordRequest: Decodable {
        let currentPassword: String, newPassword: String
        enum CodingKeys: String, CodingKey { case currentPassword = "current_password", newPassword = "new_password" }
    }
    struct MeResponse: Encodable {
        let id: String, email: String, isAdmin: Bool, mustChangePassword: Bool, createdAt: String?
        enum CodingKeys: String, CodingKey {
            case id, email, isAdmin = "is_admin", mustChangePassword = "must_change_password", createdAt = "created_at"
        }
    }

    func addPublicRoutes(to api: RouterGroup<WardenContext>) {
        api.post("auth/login") { request, context in
            let body = try await JSONBody.decode(LoginRequest.self, from: request, limit: bodyLimit)
            let result = try await accounts.login(email: body.email, password: body.password, clientAddress: context.clientAddress)
            return try Response.json(
                LoginResponse(
                    accessToken: result.accessToken, tokenType: "Bearer",
                    expiresIn: result.expiresIn, mustChangePassword: result.mustChangePassword))
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.post("auth/logout") { _, context in
            try await accounts.logout(try context.requirePrincipal())
            return Response.noContent
        }
        api.post("auth/password") { request, context in
            let body = try await JSONBody.decode(PasswordRequest.self, from: request, limit: bodyLimit)
            try await accounts.changePassword(
                try context.requirePrincipal(), current: body.currentPassword, new: body.newPassword, clientAddress: context.clientAddress)
            return Response.noContent
        }
        api.get("me") { _, context in
            let user = try context.requirePrincipal().user
            return try Response.json(
                MeResponse(
                    id: user.id, email: user.email, isAdmin: user.isAdmin,
                    mustChangePassword: user.mustChangePassword, createdAt: Timestamp.iso(user.createdAt)))
        }
    }
}
