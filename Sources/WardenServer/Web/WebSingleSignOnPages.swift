import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenCrypto

/// "Sign in with …": `/oidc/start` sends the browser to the identity provider with a fresh state, nonce and
/// PKCE verifier (kept in a short-lived cookie for `/oidc` only), and `/oidc/callback` checks the state,
/// redeems the code and opens the dashboard session.
struct WebSingleSignOnPages {
    let app: WebApp
    let sso: SingleSignOn
    let redirect: String
    let auth: WebAuthPages

    static let cookie = "warden_oidc"

    func addRoutes(to web: RouterGroup<WardenContext>) {
        web.get("/oidc/start") { request, context in
            do {
                let start = try await sso.start(redirectURI: redirect)
                // Lax: the provider's redirect back is a top-level navigation from another site.
                let cookie = app.session.setCookie(
                    Self.cookie, "\(start.state).\(start.nonce).\(start.verifier)", maxAge: 600, context, sameSite: "Lax", path: "/oidc")
                return WebApp.redirect(start.url, cookies: [cookie])
            } catch {
                return auth.loginPage(request, context, email: nil, error: WebApp.message(error), status: .serviceUnavailable)
            }
        }
        web.get("/oidc/callback") { request, context in
            let cleared = app.session.setCookie(Self.cookie, "", maxAge: 0, context, sameSite: "Lax", path: "/oidc")
            var answer = await callback(request, context)
            answer.headers.append(HTTPField(name: .setCookie, value: cleared))
            return answer
        }
    }

    private func callback(_ request: Request, _ context: WardenContext) async -> Response {
        let query = request.uri.queryParameters
        let kept = request.cookies[Self.cookie]?.value.split(separator: ".").map(String.init) ?? []
        guard kept.count == 3, let state = query["state"].map(String.init),
            ConstantTime.equals(Array(state.utf8), Array(kept[0].utf8))
        else {
            return refused(request, context, "This sign-in did not start here, or took longer than 10 minutes: try again.")
        }
        if let error = query["error"] {
            let code = String(error.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || $0 == "_") }.prefix(64))
            return refused(request, context, "The identity provider did not sign you in (\(code)).")
        }
        guard let code = query["code"].map(String.init), !code.isEmpty, code.utf8.count <= 2048 else {
            return refused(request, context, "The identity provider sent no code back.")
        }
        do {
            let result = try await sso.finish(
                code: code, redirectURI: redirect, nonce: kept[1], verifier: kept[2], clientAddress: context.clientAddress)
            let session = app.session.setCookie(WebSession.cookie, result.accessToken, maxAge: result.maxLifetime, context)
            // The session cookie is SameSite=Strict: a redirect chain that began at the provider would not carry
            // it, so this page (on Warden's own site) moves on.
            var page = app.render(
                "message", title: "Signed in", principal: nil, csrf: "", ["notice": "You are signed in.", "next": "/activity"])
            page.headers.append(HTTPField(name: .setCookie, value: session))
            page.headers[HTTPField.Name("Refresh")!] = "0; url=/activity"
            return page
        } catch {
            return refused(request, context, WebApp.message(error))
        }
    }

    private func refused(_ request: Request, _ context: WardenContext, _ message: String) -> Response {
        auth.loginPage(request, context, email: nil, error: message, status: .forbidden)
    }
}
