import Crypto
import Foundation
import Testing
import WardenCore
@testable import WardenServer

/// Only HS256 tokens signed with Warden's key, for Warden's issuer and audience, unexpired, and tied to a
/// live session are accepted.
@Suite struct TokenTests {
    static func b64(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func forge(header: [String: Any], claims: [String: Any], key: String = APIHarness.jwtSecret, sha512: Bool = false) throws
        -> String
    {
        let input = b64(try JSONSerialization.data(withJSONObject: header)) + "." + b64(try JSONSerialization.data(withJSONObject: claims))
        let signature: Data =
            sha512
            ? Data(HMAC<SHA512>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(key.utf8))))
            : Data(HMAC<SHA256>.authenticationCode(for: Data(input.utf8), using: SymmetricKey(data: Data(key.utf8))))
        return input + "." + b64(signature)
    }

    static func claims(_ token: String) throws -> [String: Any] {
        let part = String(token.split(separator: ".")[1])
        var base64 = part.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: base64))) as! [String: Any]
    }

    @Test func forgedAndStaleTokensAreRefused() async throws {
        let h = try await APIHarness()
        try await h.createUser("t@example.com")
        try await h.run { api in
            let good = try await api.login("t@example.com")
            #expect(try await api.call(.get, "/api/v1/me", token: good).status == .ok)
            let real = try Self.claims(good)
            #expect(real["iss"] as? String == "warden")
            let hs256 = ["alg": "HS256", "typ": "JWT"]
            // Re-signing the real claims with the real key works: the forge helper is right.
            #expect(try await api.call(.get, "/api/v1/me", token: try Self.forge(header: hs256, claims: real)).status == .ok)

            var wrongIssuer = real; wrongIssuer["iss"] = "someone-else"
            var wrongAudience = real; wrongAudience["aud"] = ["other-api"]
            var expired = real; expired["exp"] = Date().timeIntervalSince1970 - 10
            var otherSession = real; otherSession["jti"] = UUID().uuidString.lowercased()
            var otherUser = real; otherUser["sub"] = UUID().uuidString.lowercased()
            let unsigned =
                Self.b64(try JSONSerialization.data(withJSONObject: ["alg": "none", "typ": "JWT"])) + "."
                + Self.b64(try JSONSerialization.data(withJSONObject: real)) + "."
            let refused: [(String, String)] = [
                ("alg none", unsigned),
                ("alg none with signature", try Self.forge(header: ["alg": "none"], claims: real)),
                ("HS512", try Self.forge(header: ["alg": "HS512", "typ": "JWT"], claims: real, sha512: true)),
                ("wrong key", try Self.forge(header: hs256, claims: real, key: "another-secret-0123456789abcdefghij")),
                ("tampered signature", String(good.dropLast(2)) + (good.hasSuffix("AA") ? "BB" : "AA")),
                ("wrong iss", try Self.forge(header: hs256, claims: wrongIssuer)),
                ("wrong aud", try Self.forge(header: hs256, claims: wrongAudience)),
                ("expired", try Self.forge(header: hs256, claims: expired)),
                ("unknown session", try Self.forge(header: hs256, claims: otherSession)),
                ("session of another user", try Self.forge(header: hs256, claims: otherUser)),
                ("garbage", "not.a.jwt"),
                ("empty", ""),
            ]
            for (name, token) in refused {
                let reply = try await api.call(.get, "/api/v1/me", token: token)
                #expect(reply.status == .unauthorized, "\(name) was accepted")
                #expect(reply.headers[.contentType] == "application/problem+json")
            }
            // Revoked session.
            #expect(try await api.call(.post, "/api/v1/auth/logout", token: good).status == .noContent)
            #expect(try await api.call(.get, "/api/v1/me", token: good).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", token: try Self.forge(header: hs256, claims: real)).status == .unauthorized)
            // No header, or another scheme.
            #expect(try await api.call(.get, "/api/v1/me").status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", headers: [.authorization: "Basic dDp0"]).status == .unauthorized)
        }
        try await h.close()
    }
}
