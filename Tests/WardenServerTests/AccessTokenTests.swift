import Foundation
import HTTPTypes
import SQLKit
import Testing
import WardenCore
import WardenStore
@testable import WardenServer

/// Personal access tokens: scoped, expiring, revocable, never stored as given, and no way past their scope.
@Suite struct AccessTokenTests {
    func make(_ api: APIClient, _ session: String, scope: String, days: Int = 30) async throws -> (id: String, token: String) {
        let reply = try await api.call(
            .post, "/api/v1/tokens", token: session, json: ["name": "ci \(scope)", "scope": scope, "expires_in_days": days])
        #expect(reply.status == .created, "\(reply.text)")
        #expect(reply.headers[.cacheControl] == "no-store")
        return (try #require(reply.json["id"] as? String), try #require(reply.json["token"] as? String))
    }

    @Test func eachScopeReachesOnlyWhatItNames() async throws {
        let h = try await APIHarness(config: "")
        try await h.createUser("u@example.com")
        try await h.createUser("root@example.com", admin: true)
        try await h.run { api in
            let session = try await api.login("u@example.com")
            let cred = try await api.call(
                .post, "/api/v1/credentials", token: session, json: ["venue": "openai", "label": "o", "secret": ["api_key": "sk-u"]])
            let credID = try #require(cred.json["id"] as? String)
            let read = try await make(api, session, scope: "read")
            let keys = try await make(api, session, scope: "manage-keys")
            #expect(read.token.hasPrefix("wdp_") && read.token.count == 68)

            // read: every GET, no change anywhere.
            #expect(try await api.call(.get, "/api/v1/me", token: read.token).status == .ok)
            #expect(try await api.call(.get, "/api/v1/credentials", token: read.token).status == .ok)
            #expect(try await api.call(.head, "/api/v1/audit", token: read.token).status == .ok)
            let refused = try await api.call(
                .post, "/api/v1/agent-keys", token: read.token, json: ["name": "k", "credential_ids": [credID], "access": "read"])
            #expect(refused.status == .forbidden && refused.code == "token_scope", "\(refused.text)")
            #expect(try await api.call(.put, "/api/v1/profile", token: read.token, json: [:]).code == "token_scope")
            #expect(try await api.call(.post, "/api/v1/freeze", token: read.token, json: [:]).code == "token_scope")
            #expect(try await api.call(.delete, "/api/v1/credentials/\(credID)/", token: read.token).code == "token_scope")

            // manage-keys: agent keys made and revoked; nothing else changed.
            let key = try await api.call(
                .post, "/api/v1/agent-keys", token: keys.token, json: ["name": "k", "credential_ids": [credID], "access": "read"])
            #expect(key.status == .created, "\(key.text)")
            let keyID = try #require(key.json["id"] as? String)
            #expect(try await api.call(.delete, "/api/v1/agent-keys/\(keyID)", token: keys.token).status == .noContent)
            #expect(
                try await api.call(.patch, "/api/v1/credentials/\(credID)", token: keys.token, json: ["label": "x"]).code == "token_scope")
            #expect(try await api.call(.delete, "/api/v1/credentials/\(credID)", token: keys.token).code == "token_scope")

            // No token makes, lists or revokes tokens, changes the password, logs out, approves or goes live.
            for token in [read.token, keys.token] {
                #expect(try await api.call(.get, "/api/v1/tokens", token: token).code == "token_scope")
                #expect(
                    try await api.call(.post, "/api/v1/tokens", token: token, json: ["name": "n", "scope": "read"]).code == "token_scope")
                #expect(try await api.call(.delete, "/api/v1/tokens/\(read.id)", token: token).code == "token_scope")
                #expect(
                    try await api.call(
                        .post, "/api/v1/auth/password", token: token, json: ["current_password": "x", "new_password": "y"]
                    ).code == "token_scope")
                #expect(try await api.call(.post, "/api/v1/auth/logout", token: token).code == "token_scope")
            }
            #expect(TokenScope.admin.allows(method: "POST", path: "/api/v1/approvals/x/approve") == false)
            #expect(TokenScope.admin.allows(method: "POST", path: "/api/v1/profile/go-live/") == false)
            #expect(TokenScope.admin.allows(method: "POST", path: "/api/v1/tokens") == false)
            #expect(TokenScope.admin.allows(method: "PUT", path: "/api/v1/profile"))

            // Paths spelled with empty segments reach the same routes, and the same refusals.
            for spelling in [
                "/api/v1//approvals/x/approve", "/api/v1/approvals/x/reject///", "//api//v1///profile/go-live",
                "/api/v1//auth/password", "/api/v1/auth//logout/", "/api/v1//tokens", "/api/v1//unfreeze",
            ] {
                #expect(TokenScope.admin.allows(method: "POST", path: spelling) == false, "\(spelling)")
            }
            #expect(TokenScope.manageKeys.allows(method: "POST", path: "/api/v1//agent-keys/"))
            #expect(TokenScope.read.allows(method: "POST", path: "//api/v1/agent-keys") == false)

            // admin: only an administrator makes one, and it does what the administrator may.
            let notAdmin = try await api.call(.post, "/api/v1/tokens", token: session, json: ["name": "n", "scope": "admin"])
            #expect(notAdmin.status == .forbidden && notAdmin.field == "scope")
            let rootSession = try await api.login("root@example.com")
            let admin = try await make(api, rootSession, scope: "admin")
            let made = try await api.call(
                .post, "/api/v1/credentials", token: admin.token, json: ["venue": "openai", "label": "r", "secret": ["api_key": "sk-r"]])
            #expect(made.status == .created)
            // ...but nothing only a person does, however the path is spelled.
            for (method, path) in [
                (HTTPRequest.Method.post, "/api/v1//profile/go-live"), (.post, "/api/v1/profile/go-live///"),
                (.post, "/api/v1//approvals/held/approve"), (.post, "/api/v1//approvals/held/reject"),
                (.post, "/api/v1//auth/password"), (.post, "/api/v1//auth/logout"), (.post, "/api/v1//unfreeze"),
                (.get, "/api/v1//tokens"),
            ] {
                let reply = try await api.call(
                    method, path, token: admin.token,
                    json: ["venue": "binance", "current_password": "initial-password-1", "new_password": "taken-over-1234"])
                #expect(reply.status == .forbidden && reply.code == "token_scope", "\(method) \(path): \(reply.text)")
            }
            #expect(try await api.call(.get, "/api/v1/me", token: rootSession).status == .ok, "the administrator's session ended")
            // Another user's things stay out of reach of a token as of its user.
            #expect(try await api.call(.get, "/api/v1/credentials/\(credID)", token: admin.token).status == .notFound)
        }
        try await h.close()
    }

    @Test func aTokenEndsWhenRevokedExpiredOrItsUserIsDisabledOrChangesPassword() async throws {
        let h = try await APIHarness(config: "")
        try await h.createUser("u@example.com")
        let database = h.services.database
        let accounts = h.services.accounts
        try await h.run { api in
            let session = try await api.login("u@example.com")
            let a = try await make(api, session, scope: "read")
            let b = try await make(api, session, scope: "read")
            let c = try await make(api, session, scope: "read")
            #expect(try await api.call(.get, "/api/v1/me", token: a.token).status == .ok)
            // Revoked: refused at once; revoking again, or another's id, is a 404.
            #expect(try await api.call(.delete, "/api/v1/tokens/\(a.id)", token: session).status == .noContent)
            #expect(try await api.call(.get, "/api/v1/me", token: a.token).status == .unauthorized)
            #expect(try await api.call(.delete, "/api/v1/tokens/\(a.id)", token: session).status == .notFound)
            // Expired.
            try await database.withConnection { db in
                try await db.raw("UPDATE access_tokens SET expires_at = \(bind: Clock.nowMillis() - 1) WHERE id = \(bind: b.id)").run()
            }
            #expect(try await api.call(.get, "/api/v1/me", token: b.token).status == .unauthorized)
            // Listed without the token; last use noted.
            let list = try await api.call(.get, "/api/v1/tokens", token: session)
            let tokens = try #require(list.json["tokens"] as? [[String: Any]])
            #expect(tokens.count == 3 && !list.text.contains("wdp_"))
            #expect(tokens.first { $0["id"] as? String == c.id }?["last_used_at"] is NSNull)
            // A password change ends every token (and every other session).
            #expect(try await api.call(.get, "/api/v1/me", token: c.token).status == .ok)
            let changed = try await api.call(
                .post, "/api/v1/auth/password", token: session,
                json: ["current_password": "initial-password-1", "new_password": "a-new-password-2"])
            #expect(changed.status == .noContent || changed.status == .ok, "\(changed.text)")
            #expect(try await api.call(.get, "/api/v1/me", token: c.token).status == .unauthorized)
            // Disabling the user ends a token made after.
            let d = try await make(api, session, scope: "read")
            _ = try await accounts.setDisabled(email: "u@example.com", true)
            #expect(try await api.call(.get, "/api/v1/me", token: d.token).status == .unauthorized)
        }
        try await h.close()
    }

    /// A stolen session cannot guess the password through the password change faster than a login could.
    @Test func passwordChangeGuessesAreThrottledAsLoginsAre() async throws {
        let h = try await APIHarness(config: "")
        try await h.createUser("u@example.com")
        try await h.run { api in
            let session = try await api.login("u@example.com")
            var statuses: [Int] = []
            for i in 0..<12 {
                let reply = try await api.call(
                    .post, "/api/v1/auth/password", token: session,
                    json: ["current_password": "guess-\(i)", "new_password": "a-new-password-2"])
                statuses.append(Int(reply.status.code))
            }
            #expect(statuses.filter { $0 == 403 }.count == 10 && statuses.suffix(2) == [429, 429], "\(statuses)")
            let right = try await api.call(
                .post, "/api/v1/auth/password", token: session,
                json: ["current_password": "initial-password-1", "new_password": "a-new-password-2"])
            #expect(right.status == .tooManyRequests && right.headers[.retryAfter] != nil, "\(right.text)")
        }
        try await h.close()
    }

    @Test func badRequestsAreNamedAndTheLimitHolds() async throws {
        let h = try await APIHarness(config: "")
        try await h.createUser("u@example.com")
        try await h.run { api in
            let session = try await api.login("u@example.com")
            for (body, field) in [
                (["name": "n", "scope": "root"], "scope"), (["name": "", "scope": "read"], "name"),
                (["name": "n", "scope": "read", "expires_in_days": 0], "expires_in_days"),
                (["name": "n", "scope": "read", "expires_in_days": 366], "expires_in_days"),
            ] as [([String: Any], String)] {
                let reply = try await api.call(.post, "/api/v1/tokens", token: session, json: body)
                #expect(reply.status == .badRequest && reply.field == field, "\(body): \(reply.text)")
            }
            #expect(try await api.call(.get, "/api/v1/me", token: "wdp_" + String(repeating: "0", count: 64)).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", token: "wdp_").status == .unauthorized)
            for _ in 0..<AccessTokens.maxLivePerUser { _ = try await make(api, session, scope: "read", days: 1) }
            let over = try await api.call(.post, "/api/v1/tokens", token: session, json: ["name": "n", "scope": "read"])
            #expect(over.status == .conflict && over.code == "too_many_tokens")
        }
        try await h.close()
    }

    @Test func aTokenIsStoredOnlyAsItsHash() async throws {
        let h = try await APIHarness(config: "")
        try await h.createUser("u@example.com")
        let database = h.services.database
        var token = ""
        try await h.run { api in
            let session = try await api.login("u@example.com")
            h.stash["token"] = try await make(api, session, scope: "read").token
        }
        token = try #require(h.stash["token"])
        let stored = try await database.withConnection { db in
            try await db.raw("SELECT token_hash FROM access_tokens").all(decodingColumn: "token_hash", as: String.self)
        }
        #expect(stored.count == 1 && !stored[0].contains(String(token.dropFirst(4))))
        guard case .sqlite(let path) = database.location else { Issue.record("the harness is not on SQLite"); return }
        try await h.close()
        let raw =
            try Data(contentsOf: URL(fileURLWithPath: path)) + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
        #expect(raw.range(of: Data(String(token.dropFirst(4)).utf8)) == nil)
    }
}
