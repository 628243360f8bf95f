import Foundation
import Hummingbird
import HTTPTypes
import Mustache
import WardenCore

/// The dashboard's shared machinery: templates, the session, and route helpers that log the browser
/// in, hold it at the password change until it is done, and refuse a form without its CSRF token.
struct WebApp: Sendable {
    let templates: MustacheLibrary
    let session: WebSession
    let services: WardenServices
    let gateway: Gateway
    let activity: Activity

    /// A page for a logged-in user.
    func get(
        _ group: RouterGroup<WardenContext>, _ path: RouterPath,
        _ handler: @escaping @Sendable (Request, Principal, WardenContext) async throws -> Response
    ) {
        group.get(path) { request, context in
            guard let principal = await session.principal(request) else { return Self.redirect("/login") }
            if principal.user.mustChangePassword { return Self.redirect("/password") }
            return try await handler(request, principal, context)
        }
    }

    /// A form post from a logged-in user, checked against the session's CSRF token.
    func post(
        _ group: RouterGroup<WardenContext>, _ path: RouterPath, allowedBeforePasswordChange: Bool = false,
        _ handler: @escaping @Sendable (WebForm, Principal, WardenContext) async throws -> Response
    ) {
        group.post(path) { request, context in
            guard let principal = await session.principal(request) else { return Self.redirect("/login") }
            let form = try await WebForm(request)
            guard session.validCSRF(form, binding: principal.sessionID) else { return forbidden(principal) }
            if principal.user.mustChangePassword && !allowedBeforePasswordChange { return Self.redirect("/password") }
            return try await handler(form, principal, context)
        }
    }

    func render(
        _ template: String, title: String, nav: String? = nil, principal: Principal?, csrf: String,
        status: HTTPResponse.Status = .ok, _ data: [String: Any] = [:]
    ) -> Response {
        var context = data
        context["title"] = title
        context["csrf"] = csrf
        if let principal {
            context["user"] = true
            context["email"] = principal.user.email
            context["is_admin"] = principal.user.isAdmin
        }
        if let nav { context["nav_\(nav)"] = true }
        let html = templates.render(context, withTemplate: template) ?? "<!doctype html><title>Warden</title><p>Page not found.</p>"
        return Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// A page for the user, with their session's CSRF token.
    func page(
        _ template: String, title: String, nav: String?, _ principal: Principal, status: HTTPResponse.Status = .ok,
        _ data: [String: Any] = [:]
    ) -> Response {
        render(template, title: title, nav: nav, principal: principal, csrf: session.csrf(for: principal.sessionID), status: status, data)
    }

    func forbidden(_ principal: Principal?) -> Response {
        render(
            "message", title: "Form expired", principal: principal, csrf: principal.map { session.csrf(for: $0.sessionID) } ?? "",
            status: .forbidden, ["error": "This form has expired or did not come from Warden's own page: reload the page and try again."])
    }

    static func redirect(_ location: String, cookies: [String] = []) -> Response {
        var headers: HTTPFields = [.location: location]
        for cookie in cookies { headers.append(HTTPField(name: .setCookie, value: cookie)) }
        return Response(status: .seeOther, headers: headers)
    }

    /// A core error as a sentence for the page (the field, when one is named, leads).
    static func message(_ error: any Error) -> String {
        guard let error = error as? WardenError else { return "Something went wrong; nothing was changed." }
        return error.field.map { "\($0): \(error.message)" } ?? error.message
    }

    static func time(_ millis: Int64?) -> String {
        guard let millis else { return "—" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }
}

/// Headers on every dashboard response: nothing from elsewhere may load, nothing may frame it, nothing is cached.
struct WebHeadersMiddleware: RouterMiddleware {
    typealias Context = WardenContext
    static let policy =
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; "
        + "frame-ancestors 'none'; base-uri 'none'"

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[HTTPField.Name("Content-Security-Policy")!] = Self.policy
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
