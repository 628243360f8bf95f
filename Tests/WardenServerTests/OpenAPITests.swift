import Foundation
import Hummingbird
import Testing
import WardenCore
import WardenStore
@testable import WardenServer

/// The served OpenAPI document is true: it lists exactly the routes the server has, and each route
/// answers with a status the document lists for it.
@Suite struct OpenAPITests {
    struct Operation: Sendable {
        let method: String
        let path: String
        let documented: Set<Int>
        let secured: Bool
    }

    static func operations() throws -> [Operation] {
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(buffer: OpenAPIController.document)) as? [String: Any])
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: [String: Any]])
        return paths.flatMap { path, item in
            item.compactMap { method, spec -> Operation? in
                guard let spec = spec as? [String: Any], method != "parameters" else { return nil }
                let responses = Set(((spec["responses"] as? [String: Any]) ?? [:]).keys.compactMap(Int.init))
                return Operation(
                    method: method.uppercased(), path: path, documented: responses,
                    secured: (spec["security"] as? [Any])?.isEmpty != true)
            }
        }
    }

    static func documented(_ op: Operation) -> Set<Int> { op.documented }

    @Test func documentListsExactlyTheRoutes() async throws {
        let h = try await APIHarness()
        let router = buildRouter(h.env)
        // The gateway (`/proxy/…`) forwards venues' own APIs, and the dashboard's pages are HTML: neither is in this document.
        let machine = ["/api/", "/healthz", "/metrics"]
        let served = Set(
            router.routes.map { "\($0.method.rawValue) \(String(describing: $0.path))" }
                .filter { route in machine.contains { route.contains(" \($0)") } })
        let specified = Set(try Self.operations().map { "\($0.method) \($0.path)" })
        #expect(
            served == specified,
            "served but undocumented: \(served.subtracting(specified)); documented but missing: \(specified.subtracting(served))")
        try await h.close()
    }

    @Test func everyOperationAnswersAsDocumented() async throws {
        let h = try await APIHarness()
        let spec = try await h.createUser("spec@example.com", admin: true)
        // Two orders held for approval (one to approve, one to reject); the first cannot be sent: its key is gone.
        for id in ["held-1", "held-2"] {
            let now = Clock.nowMillis()
            let held = ApprovalRecord(
                id: id, ownerID: spec.id, keyID: "gone", rootID: "gone", venue: "binance", method: "POST", path: "/api/v3/order",
                query: "", body: Data("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1".utf8), contentType: nil,
                clientOrderID: id, notional: USD(dollars: 1), reservationID: nil, createdAt: now, expiresAt: now + 600_000)
            _ = try await h.env.database.transaction { db in try await ApprovalRepository(h.env.database).insert(held, on: db) }
        }
        try await h.createUser("other@example.com")
        let operations = try Self.operations()
        try await h.run { api in
            // Without a token every protected operation is 401, and says so in the document.
            for op in operations where op.secured {
                let path = op.path.replacingOccurrences(of: "{id}", with: "x").replacingOccurrences(of: "{grant_id}", with: "y")
                let reply = try await api.call(HTTPRequest.Method(op.method)!, path)
                #expect(reply.status == .unauthorized, "\(op.method) \(op.path) without a token: \(reply.status)")
                #expect(Self.documented(op).contains(401), "\(op.method) \(op.path) does not document 401")
            }
            // With one, each operation (in an order that creates what later ones need) answers a documented status.
            let token = try await api.login("spec@example.com")
            var ids: [String: String] = [:]
            let sequence: [(String, String, Any?)] = [
                ("GET", "/healthz", nil), ("GET", "/api/v1/openapi.json", nil),
                ("POST", "/api/v1/auth/login", ["email": "spec@example.com", "password": "initial-password-1"]),
                ("POST", "/api/v1/auth/device", nil), ("POST", "/api/v1/auth/device/token", ["device_code": "{device_code}"]),
                ("GET", "/api/v1/me", nil), ("GET", "/api/v1/profile", nil),
                ("PUT", "/api/v1/profile", ["risk": ["max_leg_usd": 10]]),
                ("POST", "/api/v1/credentials", ["venue": "openai", "label": "l", "secret": ["api_key": "sk"]]),
                ("GET", "/api/v1/credentials", nil), ("GET", "/api/v1/credentials/{id}", nil),
                ("PATCH", "/api/v1/credentials/{id}", ["label": "renamed"]),
                ("POST", "/api/v1/credentials/{id}/grants", ["email": "other@example.com", "access": "read"]),
                ("GET", "/api/v1/credentials/{id}/grants", nil),
                ("DELETE", "/api/v1/credentials/{id}/grants/{grant_id}", nil),
                ("POST", "/api/v1/agent-keys", ["name": "k", "credential_ids": ["{id}"], "access": "trade"]),
                ("GET", "/api/v1/agent-keys", nil), ("DELETE", "/api/v1/agent-keys/{key_id}", nil),
                ("POST", "/api/v1/agent-keys/child", ["venues": ["openai"], "ttl_seconds": 600]),
                ("DELETE", "/api/v1/agent-keys/self", nil),
                ("GET", "/api/v1/audit", nil), ("GET", "/api/v1/audit/export", nil), ("GET", "/api/v1/usage", nil),
                ("GET", "/metrics", nil),
                ("GET", "/api/v1/paper/orders", nil), ("GET", "/api/v1/paper/balances", nil),
                ("POST", "/api/v1/profile/go-live", ["venue": "binance"]),
                ("POST", "/api/v1/honey-tokens", ["label": "decoy", "kind": "openai"]), ("GET", "/api/v1/honey-tokens", nil),
                ("DELETE", "/api/v1/honey-tokens/{honey_id}", nil),
                ("POST", "/api/v1/tokens", ["name": "ci", "scope": "read"]), ("GET", "/api/v1/tokens", nil),
                ("DELETE", "/api/v1/tokens/{token_id}", nil),
                ("POST", "/api/v1/freeze", ["reason": "spec"]), ("GET", "/api/v1/freeze", nil),
                ("POST", "/api/v1/unfreeze", [String: String]()), ("GET", "/api/v1/alarms", nil),
                ("GET", "/api/v1/approvals", nil), ("GET", "/api/v1/approvals/held-1", nil),
                ("POST", "/api/v1/approvals/held-1/approve", nil), ("POST", "/api/v1/approvals/held-2/reject", nil),
                ("DELETE", "/api/v1/credentials/{id}", nil),
                ("POST", "/api/v1/auth/password", ["current_password": "initial-password-1", "new_password": "changed-password-2"]),
                ("POST", "/api/v1/auth/logout", nil),
            ]
            var covered = Set<String>()
            for (method, template, body) in sequence {
                var path = template
                for (name, value) in ids { path = path.replacingOccurrences(of: "{\(name)}", with: value) }
                var json = body
                if let text = body.flatMap({ try? JSONSerialization.data(withJSONObject: $0) }).map({ String(decoding: $0, as: UTF8.self) })
                {
                    var filled = text
                    for (name, value) in ids { filled = filled.replacingOccurrences(of: "{\(name)}", with: value) }
                    json = try JSONSerialization.jsonObject(with: Data(filled.utf8))
                }
                let caller = template.hasSuffix("/self") ? ids["child_key"] : token
                let reply = try await api.call(HTTPRequest.Method(method)!, path, token: caller, json: json)
                let specPath = template.replacingOccurrences(of: "{key_id}", with: "{id}")
                    .replacingOccurrences(of: "{honey_id}", with: "{id}").replacingOccurrences(of: "{token_id}", with: "{id}")
                    .replacingOccurrences(of: "held-1", with: "{id}").replacingOccurrences(of: "held-2", with: "{id}")
                let op = try #require(
                    operations.first { $0.method == method && $0.path == specPath }, "\(method) \(specPath) not in the document")
                #expect(
                    Self.documented(op).contains(reply.status.code), "\(method) \(template) answered \(reply.status.code): \(reply.text)")
                if template.hasSuffix("/audit/export") {
                    let lines = reply.text.split(separator: "\n")
                    #expect(
                        lines.first?.contains(#""type":"header""#) == true && lines.last?.contains(#""type":"end""#) == true,
                        "\(reply.text)")
                }
                if template.hasSuffix("/device/token") {
                    // Nobody approved the code: the poll is told to wait, as RFC 8628 says.
                    #expect(reply.status.code == 400 && reply.text.contains("authorization_pending"), "\(reply.text)")
                } else if template.hasSuffix("/go-live") {
                    // No Binance credential is on file: the checks fail, and say which.
                    #expect(reply.status.code == 422 && reply.text.contains(#""name":"credential","passed":false"#), "\(reply.text)")
                } else {
                    #expect(reply.status.code < 400, "\(method) \(template): \(reply.text)")
                }
                covered.insert("\(method) \(specPath)")
                if template == "/api/v1/credentials" && method == "POST" { ids["id"] = reply.json["id"] as? String }
                if template.hasSuffix("/grants") && method == "POST" { ids["grant_id"] = reply.json["id"] as? String }
                if template == "/api/v1/agent-keys" && method == "POST" { ids["key_id"] = reply.json["id"] as? String }
                if template.hasSuffix("/child") { ids["child_key"] = reply.json["key"] as? String }
                if template.hasSuffix("/auth/device") { ids["device_code"] = reply.json["device_code"] as? String }
                if template == "/api/v1/honey-tokens" && method == "POST" { ids["honey_id"] = reply.json["id"] as? String }
                if template == "/api/v1/tokens" && method == "POST" { ids["token_id"] = reply.json["id"] as? String }
            }
            #expect(covered == Set(operations.map { "\($0.method) \($0.path)" }), "operations not exercised")
            // The export is an administrator's: another user is refused, and says so.
            let other = try await api.login("other@example.com")
            let refused = try await api.call(.get, "/api/v1/audit/export", token: other)
            #expect(refused.status.code == 403 && refused.text.contains("not_admin"), "\(refused.text)")
        }
        try await h.close()
    }
}
