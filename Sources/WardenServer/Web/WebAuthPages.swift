import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenCrypto

/// Log in, the forced password change, log out. Before login the CSRF token is bound to a random
/// pre-session cookie, so a login form cannot be posted from another site either.
struct WebAuthPages {
    let app: WebApp
    /// Single sign-on and the URL the provider sends the browser back to, when configured.
    var singleSignOn: (SingleSignOn, redirect: String)?

    func addRoutes(to web: RouterGroup<WardenContext>) {
        web.get("/") { request, _ in
            WebApp.redirect(await app.session.principal(request) == nil ? "/login" : "/activity")
        }
        web.get("/login") { request, context in
            if await app.session.principal(request) != nil { return WebApp.redirect("/activity") }
            return loginPage(request, context, email: nil, error: nil)
        }
        web.post("/login") { request, context in
            let form = try await WebForm(request)
            guard let pre = request.cookies[WebSession.preCookie]?.value, app.session.validCSRF(form, binding: "pre:" + pre) else {
                return app.forbidden(nil)
            }
            let email = form.text("email") ?? ""
            do {
                let result = try await app.services.accounts.login(
                    email: email, password: form["password"] ?? "",
                    clientAddress: context.clientAddress,
                    device: request.cookies[WebSession.deviceCookie]?.value,
                    rememberDevice: true)
                var cookies = [app.session.setCookie(WebSession.cookie, result.accessToken, maxAge: result.maxLifetime, context)]
                // Lets this browser log in while a stranger's failures hold its address or the account back.
                if let device = result.deviceToken {
                    cookies.append(app.session.setCookie(WebSession.deviceCookie, device, maxAge: 30 * 86_400, context))
                }
                return WebApp.redirect(result.mustChangePassword ? "/password" : "/activity", cookies: cookies)
            } catch {
                return loginPage(request, context, email: email, error: WebApp.message(error), status: .unauthorized)
            }
        }
        web.get("/password") { request, _ in
            guard let principal = await app.session.principal(request) else { return WebApp.redirect("/login") }
            return app.page("password", title: "Change your password", nav: nil, principal)
        }
        app.post(web, "/password", allowedBeforePasswordChange: true) { form, principal, context in
            do {
                try await app.services.accounts.changePassword(
                    principal, current: form["current_password"] ?? "",
                    new: form["new_password"] ?? "", clientAddress: context.clientAddress)
            } catch {
                return app.page(
                    "password", title: "Change your password", nav: nil, principal, status: .badRequest,
                    ["error": WebApp.message(error)])
            }
            return WebApp.redirect("/activity")
        }
        app.post(web, "/logout", allowedBeforePasswordChange: true) { _, principal, context in
            try? await app.services.accounts.logout(principal)
            return WebApp.redirect("/login", cookies: [app.session.setCookie(WebSession.cookie, "", maxAge: 0, context)])
        }
        if let singleSignOn {
            WebSingleSignOnPages(app: app, sso: singleSignOn.0, redirect: singleSignOn.redirect, auth: self).addRoutes(to: web)
        }
    }

    func loginPage(_ request: Request, _ context: WardenContext, email: String?, error: String?, status: HTTPResponse.Status = .ok)
        -> Response
    {
        let pre = request.cookies[WebSession.preCookie]?.value ?? Hex.encode((0..<16).map { _ in UInt8.random(in: 0...255) })
        var data: [String: Any] = ["email_value": email ?? ""]
        if let error { data["error"] = error }
        if let (sso, _) = singleSignOn { data["sso_name"] = sso.settings.name }
        var response = app.render("login", title: "Log in", principal: nil, csrf: app.session.csrf(for: "pre:" + pre), status: status, data)
        response.headers.append(HTTPField(name: .setCookie, value: app.session.setCookie(WebSession.preCookie, pre, maxAge: 3600, context)))
        return response
    }
}
