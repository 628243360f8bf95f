import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenVenues

/// Credentials: list (metadata only), add with the venue's fields, rotate, delete after confirmation,
/// share and revoke shares. Secret fields are write-only: no page ever renders a stored value.
struct WebCredentialPages {
    let app: WebApp

    var venues: VenueRegistry { app.gateway.registry }

    func fields(_ venue: String) -> [String] { venues.venue(named: venue)?.secretFields ?? [] }

    func optionalFields(_ venue: String) -> [String] { venues.venue(named: venue)?.optionalSecretFields ?? [] }

    func title(_ venue: String) -> String { venues.venue(named: venue)?.title ?? venue }

    /// The secret typed into a form: every required field, and the optional ones that were filled in.
    func secret(_ form: WebForm, venue: String) -> [String: String] {
        var secret: [String: String] = [:]
        for field in fields(venue) { secret[field] = form[field] ?? "" }
        for field in optionalFields(venue) { if let value = form.text(field) { secret[field] = value } }
        return secret
    }

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/credentials") { _, principal, _ in try await list(principal) }
        app.get(web, "/credentials/new") { request, principal, _ in
            let venue = request.uri.queryParameters["venue"].map(String.init) ?? ""
            guard !fields(venue).isEmpty else { return try await list(principal, error: "Unknown venue \(venue).") }
            return newForm(principal, venue: venue, label: "", error: nil)
        }
        app.post(web, "/credentials") { form, principal, _ in
            let venue = form["venue"] ?? ""
            let label = form.text("label") ?? ""
            do {
                _ = try await app.services.credentials.create(principal, venue: venue, label: label, secret: secret(form, venue: venue))
            } catch {
                return newForm(principal, venue: venue, label: label, error: WebApp.message(error), status: .badRequest)
            }
            return WebApp.redirect("/credentials")
        }
        app.post(web, "/credentials/{id}/rotate") { form, principal, context in
            let id = context.parameters.get("id") ?? ""
            return try await outcome(principal) {
                let venue = try await app.services.credentials.get(principal, id: id).venue
                _ = try await app.services.credentials.update(principal, id: id, label: nil, secret: secret(form, venue: venue))
                return "Rotated."
            }
        }
        app.get(web, "/credentials/{id}/delete") { _, principal, context in
            guard let credential = try? await app.services.credentials.get(principal, id: context.parameters.get("id") ?? "") else {
                return try await list(principal, error: "No such credential.", status: .notFound)
            }
            return app.page(
                "credential_delete", title: "Delete a credential", nav: "credentials", principal,
                ["id": credential.id, "venue": credential.venue, "label": credential.label])
        }
        app.post(web, "/credentials/{id}/delete") { _, principal, context in
            try await outcome(principal) {
                try await app.services.credentials.delete(principal, id: context.parameters.get("id") ?? "")
                return "Deleted."
            }
        }
        app.post(web, "/credentials/{id}/grants") { form, principal, context in
            try await outcome(principal) {
                _ = try await app.services.credentials.grant(
                    principal, credentialID: context.parameters.get("id") ?? "",
                    email: form["email"] ?? "", access: form["access"] ?? "")
                return "Shared."
            }
        }
        app.post(web, "/credentials/{id}/grants/{grant}/delete") { _, principal, context in
            try await outcome(principal) {
                try await app.services.credentials.revokeGrant(
                    principal, credentialID: context.parameters.get("id") ?? "",
                    grantID: context.parameters.get("grant") ?? "")
                return "Share revoked."
            }
        }
    }

    /// Runs a change, then shows the list with its outcome.
    func outcome(_ principal: Principal, _ change: () async throws -> String) async throws -> Response {
        let notice: String
        do { notice = try await change() } catch {
            return try await list(principal, error: WebApp.message(error), status: .badRequest)
        }
        return try await list(principal, notice: notice)
    }

    func list(_ principal: Principal, notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok) async throws
        -> Response
    {
        var rows: [[String: Any]] = []
        for credential in try await app.services.credentials.list(principal) {
            var row: [String: Any] = [
                "id": credential.id, "venue": credential.venue, "label": credential.label,
                "fingerprint": credential.fingerprint, "access": credential.holding.name,
                "created": WebApp.time(credential.createdAt), "last_used": WebApp.time(credential.lastUsedAt),
            ]
            if credential.holding == .owner {
                let grants = try await app.services.credentials.listGrants(principal, credentialID: credential.id)
                row["owned"] = [
                    [
                        "id": credential.id, "label": credential.label,
                        "fields": fields(credential.venue).map { ["name": $0, "id": credential.id] },
                        "grants": grants.map {
                            ["id": $0.0.id, "credential_id": credential.id, "email": $0.1, "access": $0.0.access.rawValue]
                        },
                    ] as [String: Any]
                ]
            }
            rows.append(row)
        }
        let venues = venues.names.map {
            let title = title($0)
            return ["name": $0, "title": ("AEIOU".contains(title.prefix(1)) ? "an " : "a ") + title]
        }
        var data: [String: Any] = ["credentials": rows, "venues": venues]
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("credentials", title: "Credentials", nav: "credentials", principal, status: status, data)
    }

    func newForm(_ principal: Principal, venue: String, label: String, error: String?, status: HTTPResponse.Status = .ok) -> Response {
        var data: [String: Any] = [
            "venue": venue, "label_value": label,
            "fields": fields(venue).map { ["name": $0, "multiline": $0.hasSuffix("_pem"), "required": true] }
                + optionalFields(venue).map { ["name": $0, "multiline": false, "required": false] },
        ]
        if let error { data["error"] = error }
        return app.page(
            "credential_new", title: "Add a \(title(venue)) credential", nav: "credentials", principal,
            status: status, data)
    }
}
