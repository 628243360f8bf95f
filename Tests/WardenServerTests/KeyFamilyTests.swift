import Foundation
import HTTPTypes
import Testing
@testable import WardenCore
import WardenStore
import WardenVenues
@testable import WardenServer

/// Key families: a key and every key minted below it, at any depth. Revoking a key stops all of them at
/// once; minting needs a live ancestry and an enabled owner, and is limited per family; a family shares
/// one budget and one rate-limit bucket per service.
@Suite struct KeyFamilyTests {
    static let xKey = HTTPField.Name("X-Warden-Key")!

    /// A family of keys over one GitHub credential: the top key made by its owner, and `mint` below it.
    struct Family {
        let token: String
        let credentialID: String
        let rootKey: String
        let rootID: String
    }

    static func family(
        _ api: APIClient, _ email: String, credential: (venue: String, secret: [String: String]) = ("github", ["token": "t"]),
        budget: Double? = nil
    ) async throws -> Family {
        let token = try await api.login(email)
        let made = try await api.call(
            .post, "/api/v1/credentials", token: token,
            json: ["venue": credential.venue, "label": "c", "secret": credential.secret])
        let credentialID = try #require(made.json["id"] as? String)
        var body: [String: Any] = ["name": "root", "credential_ids": [credentialID], "access": "trade"]
        if let budget { body["daily_budget_usd"] = budget }
        let root = try await api.call(.post, "/api/v1/agent-keys", token: token, json: body)
        return Family(
            token: token, credentialID: credentialID, rootKey: try #require(root.json["key"] as? String),
            rootID: try #require(root.json["id"] as? String))
    }

    static func mint(_ api: APIClient, from key: String) async throws -> Reply {
        try await api.call(.post, "/api/v1/agent-keys/child", json: ["ttl_seconds": 600], headers: [xKey: key])
    }

    /// Mints and returns (key, id), expecting success.
    static func child(_ api: APIClient, of key: String) async throws -> (key: String, id: String) {
        let reply = try await mint(api, from: key)
        #expect(reply.status == .created, "\(reply.text)")
        return (try #require(reply.json["key"] as? String), try #require(reply.json["id"] as? String))
    }

    /// What the gateway decides for a GET on the venue with `key` (no upstream is called: `admit` only decides).
    static func admit(_ h: APIHarness, _ key: String, venue: String = "github") async -> HTTPResponse.Status {
        do {
            _ = try await admission(h, key, venue: venue)
            return .ok
        } catch {
            return (error as? GatewayRefusal)?.status ?? .internalServerError
        }
    }

    static func admission(
        _ h: APIHarness, _ key: String, venue: String = "github", method: String = "GET",
        path: String = "/user"
    ) async throws -> Admission {
        let adapter = try #require(h.env.gateway.registry.venue(named: venue))
        return try await h.env.gateway.admit(
            venue: adapter, method: method, rawPath: path, query: nil,
            headers: [xKey: key], requestID: "test")
    }

    @Test func revokingAKeyRevokesEveryKeyMintedFromIt() async throws {
        let h = try await APIHarness()
        try await h.createUser("family@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "family@example.com")
            let child = try await Self.child(api, of: f.rootKey)
            let grandchild = try await Self.child(api, of: child.key)
            let sibling = try await Self.child(api, of: f.rootKey)
            // A grandchild records its real parent, and its family's root.
            let record = try #require(try await h.services.agentKeys.lookup(grandchild.key))
            #expect(record.parentID == child.id && record.rootID == f.rootID)
            for key in [f.rootKey, child.key, grandchild.key, sibling.key] {
                #expect(await Self.admit(h, key) == .ok)  // and now cached
            }

            #expect(try await api.call(.delete, "/api/v1/agent-keys/\(child.id)", token: f.token).status == .noContent)
            #expect(await Self.admit(h, child.key) == .unauthorized)
            #expect(await Self.admit(h, grandchild.key) == .unauthorized)
            #expect(await Self.admit(h, f.rootKey) == .ok)
            #expect(await Self.admit(h, sibling.key) == .ok)
            // Durably: the grandchild's own row is revoked, in the same transaction as its parent's.
            let repository = AgentKeyRepository(h.env.database)
            let childRow = try #require(try await repository.find(id: child.id))
            let grandchildRow = try #require(try await repository.find(id: grandchild.id))
            #expect(childRow.revokedAt != nil && grandchildRow.revokedAt == childRow.revokedAt)
            // Neither mints any more.
            #expect(try await Self.mint(api, from: grandchild.key).status == .unauthorized)
            #expect(try await Self.mint(api, from: child.key).status == .unauthorized)

            // `warden run` ending its key (DELETE /agent-keys/self) takes the keys minted inside the run along.
            let run = try await Self.child(api, of: sibling.key)
            let inner = try await Self.child(api, of: run.key)
            #expect(await Self.admit(h, inner.key) == .ok)
            #expect(try await api.call(.delete, "/api/v1/agent-keys/self", headers: [Self.xKey: run.key]).status == .noContent)
            #expect(await Self.admit(h, inner.key) == .unauthorized)
            #expect(await Self.admit(h, sibling.key) == .ok)
        }
        try await h.close()
    }

    @Test func aKeyBelowARevokedKeyIsRefusedEvenIfItsOwnRowWasMissed() async throws {
        let h = try await APIHarness()
        try await h.createUser("race@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "race@example.com")
            let child = try await Self.child(api, of: f.rootKey)
            #expect(try await api.call(.delete, "/api/v1/agent-keys/\(child.id)", token: f.token).status == .noContent)
            // A key whose mint committed just after the revocation wrote its descendants: its row is unrevoked.
            let key = AgentKeys.generateKey()
            let late = AgentKeyRecord(
                id: UUID().uuidString.lowercased(), ownerID: try #require(try await h.services.agentKeys.lookup(f.rootKey)).ownerID,
                name: "late", keyHash: h.services.agentKeys.hash(key), keyPrefix: String(key.prefix(8)),
                access: .trade, createdAt: Clock.nowMillis(), expiresAt: nil,
                credentials: ["github": f.credentialID], parentID: child.id, rootID: f.rootID)
            try await h.env.database.transaction { db in try await AgentKeyRepository(h.env.database).insert(late, on: db) }
            await h.env.gateway.keys.sync()
            #expect(await Self.admit(h, key) == .unauthorized)
            #expect(try await h.services.agentKeys.lookup(key) == nil)
            #expect(try await Self.mint(api, from: key).status == .unauthorized)
        }
        try await h.close()
    }

    @Test func aDisabledOwnersKeysCannotMint() async throws {
        let h = try await APIHarness()
        try await h.createUser("gone@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "gone@example.com")
            let child = try await Self.child(api, of: f.rootKey)
            _ = try await h.services.accounts.setDisabled(email: "gone@example.com", true)
            for key in [f.rootKey, child.key] {
                let refused = try await Self.mint(api, from: key)
                #expect(refused.status == .unauthorized && refused.code == "owner_disabled", "\(refused.text)")
            }
            _ = try await h.services.accounts.setDisabled(email: "gone@example.com", false)
            #expect(try await Self.mint(api, from: child.key).status == .created)
        }
        try await h.close()
    }

    @Test func mintingIsLimitedPerFamilyAtAnyDepth() async throws {
        let h = try await APIHarness()
        try await h.createUser("mint@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "mint@example.com")
            // Mints from the root and from a child below it count alike: one family, one allowance.
            let child = try await Self.child(api, of: f.rootKey)
            for _ in 1..<(AgentKeys.maxMintsPerWindow / 2) { _ = try await Self.child(api, of: f.rootKey) }
            for _ in 0..<(AgentKeys.maxMintsPerWindow / 2) { _ = try await Self.child(api, of: child.key) }
            let refused = try await Self.mint(api, from: child.key)
            #expect(refused.status == .tooManyRequests && refused.code == "mint_rate_limited", "\(refused.text)")
            let wait = Int(refused.headers[.retryAfter] ?? "") ?? 0
            #expect((1...AgentKeys.mintWindowSeconds).contains(wait))
            #expect(try await Self.mint(api, from: f.rootKey).status == .tooManyRequests)
            // Another key of the same owner is another family.
            let other = try await api.call(
                .post, "/api/v1/agent-keys", token: f.token,
                json: ["name": "other", "credential_ids": [f.credentialID], "access": "read"])
            #expect(try await Self.mint(api, from: try #require(other.json["key"] as? String)).status == .created)
        }
        try await h.close()
    }

    @Test func aFamilyHoldsAtMostTheCapOfLiveChildren() async throws {
        let h = try await APIHarness()
        try await h.createUser("cap@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "cap@example.com")
            let root = try #require(try await h.services.agentKeys.lookup(f.rootKey))
            // Children minted over a minute ago (outside the mint rate's window), one of them at each depth.
            let old = Clock.nowMillis() - 120_000
            var parent = root.id
            var ids: [String] = []
            for i in 0..<AgentKeys.maxLiveChildKeys {
                let id = UUID().uuidString.lowercased()
                let record = AgentKeyRecord(
                    id: id, ownerID: root.ownerID, name: "c\(i)", keyHash: "hash-\(id)", keyPrefix: "wdn_xxxx",
                    access: .trade, createdAt: old, expiresAt: Clock.nowMillis() + 600_000,
                    credentials: root.credentials, parentID: i % 2 == 0 ? root.id : parent, rootID: root.id)
                try await h.env.database.transaction { db in try await AgentKeyRepository(h.env.database).insert(record, on: db) }
                parent = id
                ids.append(id)
            }
            let refused = try await Self.mint(api, from: f.rootKey)
            #expect(refused.status == .tooManyRequests && refused.code == "too_many_child_keys", "\(refused.text)")
            // A revoked key no longer counts (a leaf: revoking a key with children would free more).
            let leaf = try #require(ids.last)
            try await h.env.database.transaction { db in
                try await AgentKeyRepository(h.env.database).revoke(id: leaf, at: Clock.nowMillis(), on: db)
            }
            #expect(try await Self.mint(api, from: f.rootKey).status == .created)
            #expect(try await Self.mint(api, from: f.rootKey).status == .tooManyRequests)
        }
        try await h.close()
    }

    @Test func aFamilySharesOneRateLimitBucketPerService() async throws {
        let h = try await APIHarness(
            config: """
                [services.github]
                base_url = "https://api.github.com"
                rate_limit = 4
                rate_limit_window_seconds = 3600
                """)
        try await h.createUser("bucket@example.com")
        try await h.run { api in
            let f = try await Self.family(api, "bucket@example.com")
            let a = try await Self.child(api, of: f.rootKey), b = try await Self.child(api, of: f.rootKey)
            let deep = try await Self.child(api, of: a.key)
            var passed = 0
            for round in 0..<20 {
                let key = [f.rootKey, a.key, b.key, deep.key][round % 4]
                if await Self.admit(h, key) == .ok { passed += 1 }
            }
            #expect(passed == 4, "a family of 4 keys passed \(passed) calls with a rate limit of 4")
            // Another family keeps its own bucket.
            let other = try await api.call(
                .post, "/api/v1/agent-keys", token: f.token,
                json: ["name": "other", "credential_ids": [f.credentialID], "access": "read"])
            #expect(await Self.admit(h, try #require(other.json["key"] as? String)) == .ok)
        }
        try await h.close()
    }

    @Test func aFamilySpendsFromOneBudgetAtAnyDepth() async throws {
        let h = try await APIHarness(
            config: """
                [prices.openai]
                "m" = { input = 0, output = 1000 }
                """)
        try await h.createUser("budget@example.com")
        try await h.run { api in
            // 1,000 output tokens cost 1 USD: a budget of 2 USD holds two such calls for the whole family.
            let f = try await Self.family(api, "budget@example.com", credential: ("openai", ["api_key": "sk"]), budget: 2)
            let child = try await Self.child(api, of: f.rootKey)
            let grandchild = try await Self.child(api, of: child.key)
            let body = Data(#"{"model": "m", "max_tokens": 1000}"#.utf8)
            var granted: [String] = []
            for key in [grandchild.key, child.key, grandchild.key, f.rootKey] {
                let admission = try await Self.admission(h, key, venue: "openai", method: "POST", path: "/v1/chat/completions")
                do {
                    granted.append(try await h.env.gateway.reserve(admission, method: "POST", body: body, dialect: .openAI).0.keyID)
                } catch {
                    #expect((error as? GatewayRefusal)?.kind == .budget)
                }
            }
            #expect(granted == [f.rootID, f.rootID])
        }
        try await h.close()
    }
}
