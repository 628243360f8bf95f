import Foundation
import Testing
import WardenCore
@testable import WardenServer

/// Child keys for `warden run`: never wider than whoever minted them.
@Suite struct ChildKeyTests {
    @Test func childKeysNarrowAndNeverWiden() async throws {
        let h = try await APIHarness()
        try await h.createUser("run@example.com")
        try await h.run { api in
            let token = try await api.login("run@example.com")
            let openai = try await api.call(
                .post, "/api/v1/credentials", token: token, json: ["venue": "openai", "label": "o", "secret": ["api_key": "sk"]])
            let github = try await api.call(
                .post, "/api/v1/credentials", token: token, json: ["venue": "github", "label": "g", "secret": ["token": "t"]])
            let openaiID = try #require(openai.json["id"] as? String), githubID = try #require(github.json["id"] as? String)

            // From a session: all own venues by default.
            let all = try await api.call(.post, "/api/v1/agent-keys/child", token: token, json: ["ttl_seconds": 3600])
            #expect(all.status == .created)
            #expect(Set(all.json["venues"] as? [String] ?? []) == ["openai", "github"])

            // A read key with an expiry, bound to OpenAI only...
            let parent = try await api.call(
                .post, "/api/v1/agent-keys", token: token,
                json: ["name": "p", "credential_ids": [openaiID], "access": "read", "expires_in_days": 1, "daily_budget_usd": 2])
            let parentKey = try #require(parent.json["key"] as? String)
            // ...mints a narrower child: same access, no later expiry, same budget, a parent link.
            let child = try await api.call(
                .post, "/api/v1/agent-keys/child", json: ["ttl_seconds": 30 * 86_400], headers: [.init("X-Warden-Key")!: parentKey])
            #expect(child.status == .created, "\(child.text)")
            #expect(child.json["access"] as? String == "read")
            #expect(child.json["venues"] as? [String] == ["openai"])
            #expect(child.json["daily_budget_usd"] as? Double == 2)
            let childKey = try #require(child.json["key"] as? String)
            let childRecord = try #require(try await h.services.agentKeys.lookup(childKey))
            let parentRecord = try #require(try await h.services.agentKeys.lookup(parentKey))
            #expect(childRecord.expiresAt! <= parentRecord.expiresAt!)
            #expect(childRecord.parentID == parentRecord.id)

            // It cannot reach beyond its parent, nor reach the management API.
            let wider = try await api.call(
                .post, "/api/v1/agent-keys/child", json: ["venues": ["github"]], headers: [.init("X-Warden-Key")!: childKey])
            #expect(wider.status == .forbidden && wider.code == "outside_scope")
            #expect(
                try await api.call(
                    .post, "/api/v1/agent-keys", token: childKey,
                    json: ["name": "x", "credential_ids": [githubID], "access": "trade"]
                ).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/credentials", token: childKey).status == .unauthorized)
            let grandchild = try await api.call(.post, "/api/v1/agent-keys/child", token: childKey, json: ["ttl_seconds": 600])
            #expect(grandchild.status == .created && grandchild.json["access"] as? String == "read")

            // Bad TTLs are named; revoking itself works once.
            let badTTL = try await api.call(.post, "/api/v1/agent-keys/child", token: token, json: ["ttl_seconds": 4])
            #expect(badTTL.status == .badRequest && badTTL.field == "ttl_seconds")
            #expect(
                try await api.call(.delete, "/api/v1/agent-keys/self", headers: [.init("X-Warden-Key")!: childKey]).status == .noContent)
            #expect(try await h.services.agentKeys.lookup(childKey) == nil)
            #expect(
                try await api.call(.delete, "/api/v1/agent-keys/self", headers: [.init("X-Warden-Key")!: childKey]).status == .unauthorized)
        }
        try await h.close()
    }
}
