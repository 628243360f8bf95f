import Foundation
import Testing
@testable import WardenCore
@testable import WardenServer

/// `warden login --device`: a session goes only to the machine holding the device code, only once, and
/// only as the person who approved the user code.
@Suite struct DeviceLoginTests {
    @Test func anApprovedCodeGivesTheApproversSessionOnceAndADeniedOneNone() async throws {
        let h = try await APIHarness()
        try await h.createUser("owner@example.com")
        try await h.createUser("stranger@example.com")
        let logins = h.services.deviceLogins
        try await h.run { api in
            let started = try await api.call(.post, "/api/v1/auth/device")
            #expect(started.status == .ok)
            let deviceCode = try #require(started.json["device_code"] as? String)
            let userCode = try #require(started.json["user_code"] as? String)
            #expect(userCode.count == 9 && deviceCode.count == 64)
            #expect((started.json["verification_uri_complete"] as? String)?.hasSuffix("/device?code=\(userCode)") == true)
            func poll(_ code: String = deviceCode) async throws -> (Int, String?, Any?) {
                let reply = try await api.call(.post, "/api/v1/auth/device/token", json: ["device_code": code])
                return (Int(reply.status.code), reply.json["error"] as? String, reply.json["access_token"])
            }
            #expect(try await poll().1 == "authorization_pending")
            #expect(try await poll().1 == "slow_down", "polled again at once")
            #expect(try await poll(String(repeating: "0", count: 64)).1 == "expired_token")

            // The person types the code in any spelling; the session is theirs.
            let owner = try await h.services.accounts.authenticate(token: try await api.login("owner@example.com"))
            try await logins.decide(owner, userCode: userCode.lowercased().replacingOccurrences(of: "-", with: " "), approve: true)
            let (status, _, token) = try await poll()
            #expect(status == 200)
            let me = try await api.call(.get, "/api/v1/me", token: try #require(token as? String))
            #expect(me.json["email"] as? String == "owner@example.com")
            // Once only; and a decided code cannot be decided again.
            #expect(try await poll().1 == "expired_token")
            let stranger = try await h.services.accounts.authenticate(token: try await api.login("stranger@example.com"))
            await #expect(throws: WardenError.self) { try await logins.decide(stranger, userCode: userCode, approve: true) }

            // A denied code gives no session.
            let second = try await api.call(.post, "/api/v1/auth/device")
            let secondCode = try #require(second.json["device_code"] as? String)
            try await logins.decide(owner, userCode: try #require(second.json["user_code"] as? String), approve: false)
            #expect(try await poll(secondCode).1 == "access_denied")
            // Codes that are not codes.
            for bad in ["", "AAAA-AAAA", "BCDF-GHJ", "BCDF-GHJKL", "bcdf/ghjk"] {
                await #expect(throws: WardenError.self) { try await logins.decide(owner, userCode: bad, approve: true) }
            }
            // An approved code not yet collected dies with the approver's other sessions (a password change).
            let third = try await api.call(.post, "/api/v1/auth/device")
            try await logins.decide(owner, userCode: try #require(third.json["user_code"] as? String), approve: true)
            let changed = try await api.call(
                .post, "/api/v1/auth/password", token: try await api.login("owner@example.com"),
                json: ["current_password": "initial-password-1", "new_password": "changed-password-2"])
            #expect(changed.status == .noContent)
            #expect(try await poll(try #require(third.json["device_code"] as? String)).1 == "access_denied")

            // One address cannot hold more than ten codes at once, however many ask at the same moment.
            let answers = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<30 { group.addTask { Int(try await api.call(.post, "/api/v1/auth/device").status.code) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(answers.filter { $0 == 200 }.count == 10 && answers.filter { $0 == 429 }.count == 20, "\(answers)")
        }
        try await h.close()
    }
}
