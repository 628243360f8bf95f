import Foundation
import Hummingbird
import HTTPTypes
import WardenCore

/// The kill switch (a user's own keys; every key for administrators), decoys, and the alarms page.
struct WebSafetyPages {
    let app: WebApp
    let keys: WebKeyPages

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.post(web, "/keys/freeze") { form, principal, _ in
            try await change(principal, form, freeze: true, scope: .user(principal.user.id), back: keys.list)
        }
        app.post(web, "/keys/unfreeze") { form, principal, _ in
            try await change(principal, form, freeze: false, scope: .user(principal.user.id), back: keys.list)
        }
        app.post(web, "/admin/freeze-all") { form, principal, _ in
            try await change(principal, form, freeze: true, scope: .all, back: alarms)
        }
        app.post(web, "/admin/unfreeze-all") { form, principal, _ in
            try await change(principal, form, freeze: false, scope: .all, back: alarms)
        }
        app.post(web, "/keys/honey") { form, principal, _ in
            do {
                let (record, token) = try await app.services.honeyTokens.create(
                    principal, label: form.text("label") ?? "", kind: form["kind"] ?? HoneyTokens.Kind.agentKey.rawValue)
                return app.page(
                    "honey_created", title: "Decoy \(record.label) created", nav: "keys", principal, ["token": token, "kind": record.kind])
            } catch {
                return try await keys.list(principal, error: WebApp.message(error), status: .badRequest)
            }
        }
        app.post(web, "/keys/honey/{id}/delete") { _, principal, context in
            do { try await app.services.honeyTokens.delete(principal, id: context.parameters.get("id") ?? "") } catch {
                return try await keys.list(principal, error: WebApp.message(error), status: .badRequest)
            }
            return try await keys.list(principal, notice: "Decoy deleted.")
        }
        app.get(web, "/admin/alarms") { _, principal, _ in try await alarms(principal) }
    }

    func change(
        _ principal: Principal, _ form: WebForm, freeze: Bool, scope: FreezeScope,
        back: (Principal, String?, String?, HTTPResponse.Status) async throws -> Response
    ) async throws -> Response {
        do {
            let changed =
                freeze
                ? try await app.services.killSwitch.freeze(
                    scope, reason: form.text("reason") ?? "frozen from the dashboard", by: .person(principal))
                : try await app.services.killSwitch.unfreeze(scope, by: .person(principal))
            let (what, are, were) = scope == .all ? ("Every agent key", "is", "was") : ("Your agent keys", "are", "were")
            let notice =
                freeze
                ? (changed ? "\(what) \(are) frozen." : "\(what) \(were) already frozen.")
                : (changed ? "\(what) \(are) live again." : "Nothing was frozen.")
            return try await back(principal, notice, nil, .ok)
        } catch {
            return try await back(principal, nil, WebApp.message(error), .forbidden)
        }
    }

    func alarms(_ principal: Principal, notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok) async throws
        -> Response
    {
        guard principal.user.isAdmin else {
            return app.page(
                "message", title: "Administrators only", nav: nil, principal, status: .forbidden,
                ["error": "Only administrators see alarms."])
        }
        let recent = try await app.services.alarms.recent(principal, limit: 200).map { alarm, deliveries -> [String: Any] in
            [
                "time": WebApp.time(alarm.createdAt), "event": alarm.event, "severity": alarm.severity, "summary": alarm.summary,
                "deliveries": deliveries.map { d -> [String: Any] in
                    ["channel": d.channel, "state": d.state.rawValue, "attempts": d.attempts, "error": d.lastError ?? ""]
                },
            ]
        }
        let allFrozen = try await app.services.killSwitch.list().contains { $0.scope == "all" }
        var data: [String: Any] = [
            "alarms": recent, "all_frozen": allFrozen,
            "channels": app.services.alarms.channels.values.sorted { $0.name < $1.name }.map {
                ["name": $0.name, "kind": $0.kind.rawValue]
            },
        ]
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("alarms", title: "Alarms", nav: "alarms", principal, status: status, data)
    }
}
