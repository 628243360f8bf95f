import Foundation
import Testing
import WardenCore
@testable import WardenServer

/// The whole management flow over HTTP, with the audit chain checked at the end.
@Suite struct FlowTests {
    @Test func onboardingToAgentKeyAndAudit() async throws {
        let h = try await APIHarness()
        let planted = "PLANTED-SECRET-\(UUID().uuidString)"
        try await h.createUser("owner@example.com", password: "first-password-1", mustReset: true)
        try await h.createUser("friend@example.com")
        try await h.run { api in
            var token = try await api.login("owner@example.com", "first-password-1")
            // Forced password change: everything but /me, logout and the change is refused.
            let blocked = try await api.call(.get, "/api/v1/profile", token: token)
            #expect(blocked.status == .forbidden && blocked.code == "password_change_required")
            #expect(try await api.call(.get, "/api/v1/credentials", token: token).code == "password_change_required")
            let me = try await api.call(.get, "/api/v1/me", token: token)
            #expect(me.status == .ok && me.json["must_change_password"] as? Bool == true)
            let short = try await api.call(
                .post, "/api/v1/auth/password", token: token,
                json: ["current_password": "first-password-1", "new_password": "short"])
            #expect(short.status == .badRequest && short.field == "new_password" && short.text.contains("12 characters"))
            let sameAsEmail = try await api.call(
                .post, "/api/v1/auth/password", token: token,
                json: ["current_password": "first-password-1", "new_password": "OWNER@example.com"])
            #expect(sameAsEmail.status == .badRequest && sameAsEmail.text.contains("email"))
            let wrongCurrent = try await api.call(
                .post, "/api/v1/auth/password", token: token,
                json: ["current_password": "nope-nope-nope", "new_password": "second-password-2"])
            #expect(wrongCurrent.status == .forbidden)
            #expect(
                try await api.call(
                    .post, "/api/v1/auth/password", token: token,
                    json: ["current_password": "first-password-1", "new_password": "second-password-2"]
                ).status == .noContent)
            token = try await api.login("owner@example.com", "second-password-2")

            // Profile.
            let profile = try await api.call(
                .put, "/api/v1/profile", token: token,
                json: ["risk": ["max_leg_usd": 25, "daily_cap_usd": 200], "simulator": ["fee_bps": 7]])
            #expect(profile.status == .ok)
            let risk = try #require(profile.json["risk"] as? [String: Any])
            #expect(risk["max_leg_usd"] as? Double == 25 && risk["allow_live_trading"] as? Bool == false)
            let live = try await api.call(.put, "/api/v1/profile", token: token, json: ["risk": ["allow_live_trading": true]])
            #expect(live.status == .forbidden && live.code == "go_live_required")

            // A Binance credential, shared read-only.
            let created = try await api.call(
                .post, "/api/v1/credentials", token: token,
                json: ["venue": "binance", "label": "main", "secret": ["api_key": "AK-\(planted)", "api_secret": planted]])
            #expect(created.status == .created)
            #expect(!created.text.contains(planted))
            let credentialID = try #require(created.json["id"] as? String)
            let share = try await api.call(
                .post, "/api/v1/credentials/\(credentialID)/grants", token: token,
                json: ["email": "friend@example.com", "access": "read"])
            #expect(share.status == .created && share.json["access"] as? String == "read")

            // An agent key, shown once.
            let key = try await api.call(
                .post, "/api/v1/agent-keys", token: token,
                json: ["name": "bot", "credential_ids": [credentialID], "access": "trade", "expires_in_days": 30])
            #expect(key.status == .created)
            let agentKey = try #require(key.json["key"] as? String)
            h.stash["agentKey"] = agentKey
            #expect(agentKey.hasPrefix("wdn_") && agentKey.count >= 47)
            let keyID = try #require(key.json["id"] as? String)

            // Listing everything reveals neither the secret nor the key.
            let lists = [
                try await api.call(.get, "/api/v1/credentials", token: token),
                try await api.call(.get, "/api/v1/credentials/\(credentialID)", token: token),
                try await api.call(.get, "/api/v1/credentials/\(credentialID)/grants", token: token),
                try await api.call(.get, "/api/v1/agent-keys", token: token),
            ]
            for list in lists { #expect(list.status == .ok) }
            #expect(lists[3].text.contains(keyID) && !lists[3].text.contains(agentKey))
            #expect(try await h.services.agentKeys.lookup(agentKey)?.id == keyID)

            // Rotation keeps the id and changes the fingerprint.
            let rotated = try await api.call(
                .patch, "/api/v1/credentials/\(credentialID)", token: token,
                json: ["secret": ["api_key": "AK2", "api_secret": "rotated-\(planted)"]])
            #expect(rotated.status == .ok && rotated.json["fingerprint"] as? String != created.json["fingerprint"] as? String)

            // Revocation takes effect on the next lookup.
            #expect(try await api.call(.delete, "/api/v1/agent-keys/\(keyID)", token: token).status == .noContent)
            #expect(try await h.services.agentKeys.lookup(agentKey) == nil)

            // Every step left an audit row.
            let audit = try await api.call(.get, "/api/v1/audit?limit=100", token: token)
            let actions = Set((audit.json["entries"] as? [[String: Any]] ?? []).compactMap { $0["action"] as? String })
            for action in [
                "user.create", "auth.login", "auth.password_change", "profile.update", "credential.create",
                "grant.create", "agent_key.create", "credential.rotate", "agent_key.revoke",
            ] {
                #expect(actions.contains(action), "missing audit row \(action)")
            }
            #expect(try await api.call(.post, "/api/v1/auth/logout", token: token).status == .noContent)
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .unauthorized)
        }
        #expect(try await h.services.audit.verify() == .intact(rows: try await auditCount(h)))
        // Secrets never came back: not the API secret, not the passwords; the key only in its creation response.
        let all = h.bodies.joined(separator: "\n")
        #expect(!all.contains(planted))
        #expect(!all.contains("second-password-2") && !all.contains("first-password-1"))
        let agentKey = try #require(h.stash["agentKey"])
        #expect(h.bodies.filter { $0.contains(agentKey) }.count == 1)
        try await h.close()
    }

    private func auditCount(_ h: APIHarness) async throws -> Int64 {
        try await h.env.database.withConnection { db in
            try await db.raw("SELECT COUNT(*) AS n FROM audit").first(decodingColumn: "n", as: Int64.self) ?? 0
        }
    }
}
