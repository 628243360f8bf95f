import Foundation
import Testing
import WardenCore
@testable import WardenServer

/// User A can read, change or use nothing of user B's; grantees cannot exceed their grant.
@Suite struct AuthorizationTests {
    @Test func usersCannotReachEachOthersResources() async throws {
        let h = try await APIHarness()
        try await h.createUser("a@example.com")
        try await h.createUser("b@example.com")
        try await h.createUser("c@example.com")
        try await h.run { api in
            let a = try await api.login("a@example.com")
            let b = try await api.login("b@example.com")
            let c = try await api.login("c@example.com")
            let cred = try await api.call(
                .post, "/api/v1/credentials", token: b,
                json: ["venue": "openai", "label": "b-key", "secret": ["api_key": "sk-b"]])
            let id = try #require(cred.json["id"] as? String)
            let key = try await api.call(
                .post, "/api/v1/agent-keys", token: b, json: ["name": "k", "credential_ids": [id], "access": "read"])
            let keyID = try #require(key.json["id"] as? String)
            let grant = try await api.call(
                .post, "/api/v1/credentials/\(id)/grants", token: b, json: ["email": "c@example.com", "access": "read"])
            let grantID = try #require(grant.json["id"] as? String)

            // A: 404 everywhere, so ids cannot be probed; nothing changes.
            #expect(try await api.call(.get, "/api/v1/credentials/\(id)", token: a).status == .notFound)
            #expect(try await api.call(.patch, "/api/v1/credentials/\(id)", token: a, json: ["label": "mine"]).status == .notFound)
            #expect(try await api.call(.delete, "/api/v1/credentials/\(id)", token: a).status == .notFound)
            #expect(try await api.call(.get, "/api/v1/credentials/\(id)/grants", token: a).status == .notFound)
            #expect(
                try await api.call(
                    .post, "/api/v1/credentials/\(id)/grants", token: a, json: ["email": "a@example.com", "access": "trade"]
                ).status == .notFound)
            #expect(try await api.call(.delete, "/api/v1/credentials/\(id)/grants/\(grantID)", token: a).status == .notFound)
            #expect(try await api.call(.delete, "/api/v1/agent-keys/\(keyID)", token: a).status == .notFound)
            #expect(
                try await api.call(.post, "/api/v1/agent-keys", token: a, json: ["name": "x", "credential_ids": [id], "access": "read"])
                    .status == .notFound)
            let aList = try await api.call(.get, "/api/v1/credentials", token: a)
            #expect(!aList.text.contains(id))
            #expect(!(try await api.call(.get, "/api/v1/agent-keys", token: a)).text.contains(keyID))
            let aAudit = try await api.call(.get, "/api/v1/audit?limit=500", token: a)
            #expect(!aAudit.text.contains(id) && !aAudit.text.contains(keyID))
            #expect(try await api.call(.get, "/api/v1/credentials/\(id)", token: b).json["label"] as? String == "b-key")

            // C holds a read grant: sees metadata, cannot change, re-share, upgrade or trade with it.
            let seen = try await api.call(.get, "/api/v1/credentials/\(id)", token: c)
            #expect(seen.status == .ok && seen.json["access"] as? String == "read" && !seen.text.contains("sk-b"))
            #expect(try await api.call(.patch, "/api/v1/credentials/\(id)", token: c, json: ["label": "x"]).status == .forbidden)
            #expect(try await api.call(.delete, "/api/v1/credentials/\(id)", token: c).status == .forbidden)
            #expect(
                try await api.call(.post, "/api/v1/credentials/\(id)/grants", token: c, json: ["email": "a@example.com", "access": "read"])
                    .status == .forbidden)
            #expect(
                try await api.call(
                    .post, "/api/v1/credentials/\(id)/grants", token: c, json: ["email": "c@example.com", "access": "trade"]
                ).status == .forbidden)
            let tradeKey = try await api.call(
                .post, "/api/v1/agent-keys", token: c, json: ["name": "t", "credential_ids": [id], "access": "trade"])
            #expect(tradeKey.status == .forbidden && tradeKey.code == "grant_too_narrow")
            #expect(
                try await api.call(.post, "/api/v1/agent-keys", token: c, json: ["name": "r", "credential_ids": [id], "access": "read"])
                    .status == .created)

            // B revokes the share: C no longer sees it.
            #expect(try await api.call(.delete, "/api/v1/credentials/\(id)/grants/\(grantID)", token: b).status == .noContent)
            #expect(try await api.call(.get, "/api/v1/credentials/\(id)", token: c).status == .notFound)
            #expect(try await api.call(.get, "/api/v1/credentials/\(id)", token: b).status == .ok)
        }
        try await h.close()
    }

    @Test func aDisabledUsersTokenStopsAtOnce() async throws {
        let h = try await APIHarness()
        try await h.createUser("d@example.com")
        try await h.run { api in
            let token = try await api.login("d@example.com")
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .ok)
            _ = try await h.services.accounts.setDisabled(email: "d@example.com", true)
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .unauthorized)
            let again = try await api.call(.post, "/api/v1/auth/login", json: ["email": "d@example.com", "password": "initial-password-1"])
            #expect(again.status == .unauthorized)
            _ = try await h.services.accounts.setDisabled(email: "d@example.com", false)
            #expect(try await api.call(.get, "/api/v1/me", token: try await api.login("d@example.com")).status == .ok)
        }
        try await h.close()
    }

    @Test func aPasswordResetEndsSessions() async throws {
        let h = try await APIHarness()
        try await h.createUser("r@example.com")
        try await h.run { api in
            let token = try await api.login("r@example.com")
            let password = try await h.services.accounts.resetPassword(email: "r@example.com")
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .unauthorized)
            let fresh = try await api.login("r@example.com", password)
            #expect(try await api.call(.get, "/api/v1/profile", token: fresh).code == "password_change_required")
        }
        try await h.close()
    }

    @Test func onlyAdminsSeeEveryonesAudit() async throws {
        let h = try await APIHarness()
        let admin = try await h.createUser("admin@example.com", admin: true)
        let user = try await h.createUser("user@example.com")
        try await h.run { api in
            let adminRows = try await api.call(.get, "/api/v1/audit?limit=500", token: try await api.login("admin@example.com"))
            #expect(adminRows.text.contains(user.id))
            let userRows = try await api.call(.get, "/api/v1/audit?limit=500", token: try await api.login("user@example.com"))
            #expect(!userRows.text.contains(admin.id))
            #expect(userRows.text.contains(user.id))
        }
        try await h.close()
    }
}
