import Foundation
import Testing
import WardenCore
@testable import WardenServer

/// Each bad request gets a 4xx problem naming what is wrong, and nothing stored changes.
@Suite struct BadInputTests {
    @Test func badCredentialRequestsAreRefusedAndChangeNothing() async throws {
        let h = try await APIHarness()
        try await h.createUser("in@example.com")
        try await h.run { api in
            let token = try await api.login("in@example.com")
            let pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"
            let cases: [(String, Any?, String?, String)] = [
                // (name, json, raw body, expected field or code)
                ("malformed JSON", nil, "{\"venue\": ", "malformed_json"),
                ("not an object", nil, "[1,2]", "malformed_json"),
                ("empty body", nil, "", "malformed_json"),
                ("label wrong type", ["venue": "openai", "label": 7, "secret": ["api_key": "k"]], nil, "label"),
                ("secret wrong type", ["venue": "openai", "label": "x", "secret": "k"], nil, "secret"),
                ("secret value wrong type", ["venue": "openai", "label": "x", "secret": ["api_key": 5]], nil, "secret.api_key"),
                ("missing venue", ["label": "x", "secret": ["api_key": "k"]], nil, "venue"),
                ("missing secret", ["venue": "openai", "label": "x"], nil, "secret"),
                ("null label", ["venue": "openai", "label": NSNull(), "secret": ["api_key": "k"]], nil, "label"),
                ("unknown venue", ["venue": "bitmex", "label": "x", "secret": ["api_key": "k"]], nil, "venue"),
                ("missing field", ["venue": "binance", "label": "x", "secret": ["api_key": "k"]], nil, "secret.api_secret"),
                ("extra field", ["venue": "openai", "label": "x", "secret": ["api_key": "k", "password": "p"]], nil, "secret.password"),
                ("empty field", ["venue": "openai", "label": "x", "secret": ["api_key": "  "]], nil, "secret.api_key"),
                (
                    "bad PEM", ["venue": "kalshi", "label": "x", "secret": ["key_id": "k", "private_key_pem": pem]], nil,
                    "secret.private_key_pem"
                ),
                (
                    "bad address",
                    [
                        "venue": "polymarket", "label": "x",
                        "secret": ["api_key": "a", "api_secret": "b", "passphrase": "c", "address": "0x12"],
                    ], nil, "secret.address"
                ),
                ("empty label", ["venue": "openai", "label": "", "secret": ["api_key": "k"]], nil, "label"),
                ("long label", ["venue": "openai", "label": String(repeating: "x", count: 101), "secret": ["api_key": "k"]], nil, "label"),
                ("control char in label", ["venue": "openai", "label": "a\u{0007}b", "secret": ["api_key": "k"]], nil, "label"),
                ("bidi override in label", ["venue": "openai", "label": "abc\u{202E}gpj.exe", "secret": ["api_key": "k"]], nil, "label"),
                ("zero-width in label", ["venue": "openai", "label": "ma\u{200B}in", "secret": ["api_key": "k"]], nil, "label"),
            ]
            for (name, json, raw, expected) in cases {
                let reply = try await api.call(.post, "/api/v1/credentials", token: token, json: json, raw: raw)
                #expect(reply.status == .badRequest, "\(name): \(reply.status) \(reply.text)")
                #expect(reply.headers[.contentType] == "application/problem+json", "\(name)")
                #expect(reply.field == expected || reply.code == expected, "\(name): \(reply.text)")
            }
            let big = try await api.call(
                .post, "/api/v1/credentials", token: token,
                raw: "{\"venue\":\"openai\",\"label\":\"" + String(repeating: "x", count: 1_000_000) + "\"}")
            #expect(big.status == .contentTooLarge && big.code == "payload_too_large")
            let list = try await api.call(.get, "/api/v1/credentials", token: token)
            #expect((list.json["credentials"] as? [Any])?.isEmpty == true, "a refused request stored something")
            // Unicode that is fine is kept as sent.
            let ok = try await api.call(
                .post, "/api/v1/credentials", token: token,
                json: ["venue": "github", "label": "Zürich 東京 🚀", "secret": ["token": "ghp_x"]])
            #expect(ok.status == .created && ok.json["label"] as? String == "Zürich 東京 🚀")
        }
        try await h.close()
    }

    @Test func badEmailsAndProfilesAreRefused() async throws {
        let h = try await APIHarness()
        for email in [
            "no-at-sign", "a@b", "zero\u{200B}width@example.com", "ctl\u{0001}@example.com", "two@@example.com", "sp ace@example.com", "",
        ] {
            await #expect(throws: WardenError.self, "\(email) accepted") {
                try await h.services.accounts.createUser(email: email, password: "long-enough-pass", mustReset: false, admin: false)
            }
        }
        // Case and composition variants are the same account.
        try await h.createUser("Ünïcode@Example.com")
        await #expect(throws: WardenError.self) {
            try await h.services.accounts.createUser(
                email: "u\u{0308}nïcode@example.com".uppercased(), password: "long-enough-pass", mustReset: false, admin: false)
        }
        try await h.createUser("p@example.com")
        try await h.run { api in
            let token = try await api.login("p@example.com")
            let before = try await api.call(.get, "/api/v1/profile", token: token).text
            let cases: [(Any, String)] = [
                (["risk": ["max_leg_usd": -1]], "risk.max_leg_usd"),
                (["risk": ["daily_cap_usd": 1e12]], "risk.daily_cap_usd"),
                (["risk": ["max_leg_usd": "10"]], "risk.max_leg_usd"),
                (["simulator": ["fee_bps": -0.5]], "simulator.fee_bps"),
                (["simulator": ["slippage_bps": 5000]], "simulator.slippage_bps"),
                (["risk": ["max_leg_usd": 600, "daily_cap_usd": 500]], "risk.max_leg_usd"),
                (["risk": ["allow_live_trading": "yes"]], "risk.allow_live_trading"),
                (["risk": 5], "risk"),
                (["risk": ["max_leverage": 0]], "risk.max_leverage"),
                (["risk": ["max_leverage": 126]], "risk.max_leverage"),
                (["risk": ["max_leverage": -3]], "risk.max_leverage"),
                (["risk": ["max_leverage": 2.5]], "risk.max_leverage"),
                (["risk": ["max_leverage": "10"]], "risk.max_leverage"),
            ]
            for (json, field) in cases {
                let reply = try await api.call(.put, "/api/v1/profile", token: token, json: json)
                #expect(reply.status == .badRequest && reply.field == field, "\(json): \(reply.text)")
            }
            let nan = try await api.call(.put, "/api/v1/profile", token: token, raw: "{\"risk\":{\"max_leg_usd\":NaN}}")
            #expect(nan.status == .badRequest)
            #expect(try await api.call(.get, "/api/v1/profile", token: token).text == before)
            let badQuery = try await api.call(.get, "/api/v1/audit?limit=abc", token: token)
            #expect(badQuery.status == .badRequest && badQuery.field == "limit")
        }
        try await h.close()
    }

    /// A stranger guessing from one address is stopped there and slows the account down for new
    /// addresses, but never keeps its owner out of an address they logged in from before.
    @Test func aStrangersFailuresDoNotLockTheOwnerOut() async throws {
        let h = try await APIHarness()
        try await h.createUser("owner@example.com")
        let accounts = h.services.accounts
        _ = try await accounts.login(email: "owner@example.com", password: "initial-password-1", clientAddress: "10.0.0.1")
        func status(_ password: String, from address: String) async -> String {
            do {
                _ = try await accounts.login(email: "owner@example.com", password: password, clientAddress: address)
                return "ok"
            } catch let error as WardenError { return error.code } catch { return "\(error)" }
        }
        var answers: [String] = []
        for _ in 0..<12 { answers.append(await status("wrong-password-123", from: "203.0.113.9")) }
        // 5 free failures, then the account's 30 s spacing; the address never got near its own limit of 10.
        #expect(
            answers == Array(repeating: "invalid_credentials", count: 5) + Array(repeating: "too_many_attempts", count: 7), "\(answers)")
        #expect(await status("initial-password-1", from: "203.0.113.9") == "too_many_attempts")
        #expect(await status("initial-password-1", from: "198.51.100.7") == "too_many_attempts")  // a new address waits its turn
        #expect(await status("initial-password-1", from: "10.0.0.1") == "ok")  // the owner's known address does not
        try await h.close()
    }

    @Test func loginFailuresAreUniformAndThrottled() async throws {
        let h = try await APIHarness()
        try await h.createUser("l@example.com")
        try await h.run { api in
            let unknown = try await api.call(
                .post, "/api/v1/auth/login", json: ["email": "nobody@example.com", "password": "whatever-whatever"])
            let wrong = try await api.call(.post, "/api/v1/auth/login", json: ["email": "l@example.com", "password": "whatever-whatever"])
            #expect(unknown.status == .unauthorized && wrong.status == .unauthorized)
            #expect(unknown.text == wrong.text, "unknown email and wrong password must look the same")
            for _ in 0..<4 {
                _ = try await api.call(.post, "/api/v1/auth/login", json: ["email": "l@example.com", "password": "whatever-whatever"])
            }
            let throttled = try await api.call(
                .post, "/api/v1/auth/login", json: ["email": "l@example.com", "password": "initial-password-1"])
            #expect(throttled.status == .tooManyRequests && throttled.code == "too_many_attempts")
            #expect(Int(throttled.headers[.retryAfter] ?? "") ?? 0 > 0)
        }
        try await h.close()
    }
}
