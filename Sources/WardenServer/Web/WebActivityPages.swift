import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenStore

/// What the user's bots and the user did, newest first, with the reason for every refusal, and today's
/// order volume and LLM spend against their limits.
struct WebActivityPages {
    let app: WebApp

    func addRoutes(to web: RouterGroup<WardenContext>) {
        addExportRoute(to: web)
        app.get(web, "/activity") { request, principal, _ in
            let query = request.uri.queryParameters
            let venue = query["venue"].map(String.init) ?? ""
            let decision = query["decision"].map(String.init) ?? ""
            let day = query["day"].map(String.init).flatMap {
                $0.range(of: "^\\d{4}-\\d{2}-\\d{2}$", options: .regularExpression) != nil ? $0 : nil
            }
            let rows = try await app.activity.auditPage(principal, limit: 500)
            let shown = rows.filter { row in
                (venue.isEmpty || row.target == venue) && Self.matches(decision, row.outcome)
                    && (day.map { SpendRepository.day(of: Date(timeIntervalSince1970: Double(row.at) / 1000)) == $0 } ?? true)
            }.prefix(200).map(Self.row)
            var data = try await bars(principal)
            let venues = [""] + app.gateway.registry.names
            data["venue_options"] = venues.map { ["value": $0, "label": $0.isEmpty ? "All" : $0, "selected": $0 == venue] }
            data["decision_options"] =
                [["value": "", "label": "All", "selected": decision.isEmpty]]
                + Outcome.Verdict.allCases.map { ["value": $0.rawValue, "label": $0.label, "selected": $0.rawValue == decision] }
            data["day"] = day ?? ""
            data["rows"] = Array(shown)
            return app.page("activity", title: "Activity", nav: "activity", principal, data)
        }
    }

    func addExportRoute(to web: RouterGroup<WardenContext>) {
        app.get(web, "/activity/export") { request, principal, _ in
            guard principal.user.isAdmin else {
                return app.page(
                    "message", title: "Administrators only", nav: "activity", principal, status: .forbidden,
                    ["error": "Only administrators export the audit log."])
            }
            return try AuditController.export(request, principal: principal, activity: app.activity)
        }
    }

    /// Every outcome is under exactly one verdict (see `Outcome.verdict`); no verdict asked shows them all.
    static func matches(_ decision: String, _ outcome: String) -> Bool {
        guard let verdict = Outcome.Verdict(rawValue: decision) else { return true }
        return Outcome(rawValue: outcome)?.verdict == verdict
    }

    static func row(_ record: AuditRecord) -> [String: Any] {
        let detail = record.detail.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] } ?? [:]
        let venue = record.action.hasPrefix("gateway.") || record.action == "profile.go_live" ? record.target ?? "" : detail["venue"] ?? ""
        return [
            "time": WebApp.time(record.at), "action": describe(record.action, outcome: record.outcome), "venue": venue,
            "outcome": record.outcome, "details": details(detail),
        ]
    }

    static func describe(_ action: String, outcome: String) -> String {
        if outcome == Outcome.failed.rawValue { return (failures[action] ?? action + " failed") }
        return [
            "gateway.forward": "call sent", "gateway.result": "venue answered", "gateway.refuse": "call refused",
            "gateway.stream_open": "stream opened", "gateway.stream_close": "stream closed",
            "gateway.simulate": "order simulated", "credential.create": "credential added", "credential.update": "credential changed",
            "credential.delete": "credential deleted", "agent_key.create": "agent key created", "agent_key.revoke": "agent key revoked",
            "profile.update": "settings changed", "profile.go_live": "go-live checks", "auth.login": "logged in",
            "auth.logout": "logged out",
            "auth.password_change": "password changed", "grant.create": "credential shared", "grant.revoke": "share revoked",
            "credential.rotate": "credential rotated", "credential.rename": "credential renamed", "user.create": "user created",
            "user.disable": "user disabled", "user.enable": "user enabled", "user.reset_password": "password reset",
            "agent_key.create_child": "run key created", "agent_key.revoke_self": "run key ended",
        ][action] ?? action.replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: ".", with: ": ")
    }

    static let failures = ["auth.login": "login failed", "auth.password_change": "password change failed"]

    /// The details a person needs, in words: the refusal's reason first.
    static func details(_ detail: [String: String]) -> String {
        var parts: [String] = []
        if let reason = detail["reason"] { parts.append("Refused: \(reason)") }
        if let method = detail["method"], let path = detail["path"] { parts.append("\(method) \(path)") }
        if let checks = detail["checks"] {
            let failed = checks.split(separator: ",").filter { $0.hasSuffix("=fail") }.map {
                $0.dropLast(5).replacingOccurrences(of: "_", with: " ")
            }
            parts.append(failed.isEmpty ? "every check passed" : "failed checks: " + failed.joined(separator: ", "))
        }
        for key in [
            "instrument", "side", "notional_usd", "client_order_id", "mode", "status", "cost_usd", "reservation", "changed", "request",
        ] {
            if let value = detail[key] { parts.append("\(key.replacingOccurrences(of: "_", with: " ")) \(value)") }
        }
        return parts.joined(separator: " · ")
    }

    func bars(_ principal: Principal) async throws -> [String: Any] {
        let today = try await app.activity.today(principal)
        let traded = ((today.volume[.live] ?? .zero) + (today.volume[.paper] ?? .zero)).double
        let spent = today.llm.reduce(USD.zero) { $0 + $1.spent }.double
        let cap = today.dailyCap.double
        let keys = try await app.services.agentKeys.list(principal)
        let budget = keys.filter { $0.revokedAt == nil && $0.parentID == nil }.compactMap(\.dailyBudgetUSD).reduce(USD.zero, +).double
        var data: [String: Any] = [
            "volume": String(format: "%.2f", traded), "cap": String(format: "%.2f", cap),
            "volume_value": min(traded, cap), "cap_max": max(cap, 0.01),
            "spend": String(format: "%.4f", spent), "spend_value": budget > 0 ? min(spent, budget) : 0, "spend_max": max(budget, 0.01),
        ]
        if budget > 0 { data["budget"] = String(format: "%.2f", budget) }
        return data
    }
}
