import Foundation
import Hummingbird
import HTTPTypes
import WardenCore

/// Administrators: every user, create one (the generated password shown once), disable, enable, reset.
struct WebAdminPages {
    let app: WebApp

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/admin/users") { _, principal, _ in
            guard principal.user.isAdmin else { return notAdmin(principal) }
            return try await list(principal)
        }
        app.post(web, "/admin/users") { form, principal, _ in
            guard principal.user.isAdmin else { return notAdmin(principal) }
            do {
                let (user, password) = try await app.services.accounts.createUser(
                    email: form.text("email") ?? "", password: nil, mustReset: true, admin: form["admin"] == "on", by: principal)
                return try await list(principal, password: password.map { (user.email, $0) })
            } catch {
                return try await list(principal, error: WebApp.message(error), status: .badRequest)
            }
        }
        for action in ["disable", "enable", "reset"] {
            app.post(web, RouterPath("/admin/users/{id}/\(action)")) { _, principal, context in
                guard principal.user.isAdmin else { return notAdmin(principal) }
                guard let user = try await app.services.accounts.listUsers().first(where: { $0.id == context.parameters.get("id") }) else {
                    return try await list(principal, error: "No such user.", status: .notFound)
                }
                do {
                    switch action {
                    case "reset":
                        let password = try await app.services.accounts.resetPassword(email: user.email, by: principal)
                        return try await list(principal, password: (user.email, password))
                    default:
                        guard user.id != principal.user.id else { return try await list(principal, error: "You cannot disable yourself.") }
                        _ = try await app.services.accounts.setDisabled(email: user.email, action == "disable", by: principal)
                        return try await list(principal, notice: "\(user.email) is \(action)d.")
                    }
                } catch {
                    return try await list(principal, error: WebApp.message(error), status: .badRequest)
                }
            }
        }
    }

    func notAdmin(_ principal: Principal) -> Response {
        app.page(
            "message", title: "Administrators only", nav: nil, principal, status: .forbidden,
            ["error": "Only administrators manage users."])
    }

    func list(
        _ principal: Principal, password: (String, String)? = nil, notice: String? = nil, error: String? = nil,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let users = try await app.services.accounts.listUsers().map { user -> [String: Any] in
            [
                "id": user.id, "email": user.email, "role": user.isAdmin ? "administrator" : "user",
                "state": user.disabled ? "disabled" : user.mustChangePassword ? "must change password" : "active",
                "created": WebApp.time(user.createdAt), "toggle_action": user.disabled ? "enable" : "disable",
                "toggle_label": user.disabled ? "Enable" : "Disable", "toggle": user.id != principal.user.id,
            ]
        }
        var data: [String: Any] = ["users": users]
        if let (email, secret) = password { data["new_password"] = secret; data["new_password_email"] = email }
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("users", title: "Users", nav: "users", principal, status: status, data)
    }
}
