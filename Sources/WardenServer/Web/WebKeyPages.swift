import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenVenues
import WardenStore

/// Agent keys: create (the key is shown once, with how to use it), list, revoke.
struct WebKeyPages {
    let app: WebApp
    /// Where agents reach the gateway, for the snippets.
    let gatewayURL: String

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/keys") { _, principal, _ in try await list(principal) }
        app.post(web, "/keys") { form, principal, _ in
            let days = form.text("expires_in_days")
            guard days.map({ Int($0) != nil }) ?? true else {
                return try await list(principal, error: "expires_in_days: must be a whole number of days", status: .badRequest)
            }
            do {
                let (record, key) = try await app.services.agentKeys.create(
                    principal, name: form.text("name") ?? "", credentialIDs: form.all("credential_ids"),
                    access: form["access"] ?? "", expiresInDays: days.flatMap { Int($0) })
                return app.page(
                    "key_created", title: "Agent key \(record.name) created", nav: "keys", principal,
                    ["key": key, "snippets": snippets(key: key, venues: record.credentials.keys.sorted())])
            } catch {
                return try await list(principal, error: WebApp.message(error), status: .badRequest)
            }
        }
        app.post(web, "/keys/{id}/revoke") { _, principal, context in
            do { try await app.services.agentKeys.revoke(principal, id: context.parameters.get("id") ?? "") } catch {
                return try await list(principal, error: WebApp.message(error), status: .badRequest)
            }
            return try await list(principal, notice: "Revoked.")
        }
    }

    func list(_ principal: Principal, notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok) async throws
        -> Response
    {
        let now = Clock.nowMillis()
        let keys = try await app.services.agentKeys.list(principal).map { key -> [String: Any] in
            let state = key.revokedAt != nil ? "revoked" : (key.expiresAt.map { $0 <= now } ?? false) ? "expired" : "live"
            return [
                "id": key.id, "name": key.name, "prefix": key.keyPrefix, "access": key.access.rawValue,
                "venues": key.credentials.keys.sorted().joined(separator: ", "), "expires": WebApp.time(key.expiresAt),
                "last_used": WebApp.time(key.lastUsedAt), "state": state, "live": state == "live",
            ]
        }
        let credentials = try await app.services.credentials.list(principal).map {
            ["id": $0.id, "venue": $0.venue, "label": $0.label]
        }
        let freezes = try await app.services.killSwitch.list(principal).map { freeze -> [String: Any] in
            [
                "what": freeze.scope == "all" ? "Every agent key" : "Your agent keys", "reason": freeze.reason,
                "since": WebApp.time(freeze.frozenAt), "scope_all": freeze.scope == "all",
            ]
        }
        let decoys = try await app.services.honeyTokens.list(principal).map { token -> [String: Any] in
            [
                "id": token.id, "label": token.label, "kind": token.kind, "created": WebApp.time(token.createdAt),
                "used": WebApp.time(token.lastUsedAt),
            ]
        }
        var data: [String: Any] = [
            "keys": keys, "credentials": credentials, "freezes": freezes,
            "own_frozen": freezes.contains { $0["scope_all"] as? Bool == false },
            "honey_tokens": decoys, "honey_kinds": HoneyTokens.Kind.allCases.map { ["kind": $0.rawValue] },
        ]
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("keys", title: "Agent keys", nav: "keys", principal, status: status, data)
    }

    /// How to use the key: `warden run`, and each bound venue's SDK settings.
    func snippets(key: String, venues: [String]) -> String {
        let proxy = gatewayURL + "/proxy"
        var lines = [
            "# Run a bot with the key (the venues' SDK variables are set for it):",
            "WARDEN_URL=\(gatewayURL) WARDEN_TOKEN=\(key) warden run -- python bot.py", "",
        ]
        for venue in venues.compactMap(app.gateway.registry.venue(named:)) {
            lines += venue.sdkSnippet(proxyURL: proxy, key: key) + [""]
        }
        return lines.joined(separator: "\n")
    }
}
