import Foundation
import SQLKit
import Testing
@testable import WardenCore
import WardenStore
@testable import WardenServer

/// A login lasts `session_hours` unused and is extended by use, never past `session_max_days`.
@Suite struct SessionLifetimeTests {
    static func session(created: Int64, expires: Int64) -> SessionRecord {
        SessionRecord(id: "s", userID: "u", createdAt: created, expiresAt: expires)
    }

    @Test func aUseMovesTheEndByStepsAndNeverPastTheMaximum() {
        let lifetime = SessionLifetime(idleSeconds: 12 * 3600, maxSeconds: 2 * 86_400)
        let hour: Int64 = 3_600_000
        let created: Int64 = 1_000_000_000_000
        // Just logged in: nothing to move.
        #expect(lifetime.extended(Self.session(created: created, expires: created + 12 * hour), now: created + 60_000) == nil)
        // Used two hours later: the end moves to 12 hours from now.
        #expect(
            lifetime.extended(Self.session(created: created, expires: created + 12 * hour), now: created + 2 * hour) == created + 14 * hour)
        // Near the maximum: the end stops at it.
        #expect(
            lifetime.extended(Self.session(created: created, expires: created + 40 * hour), now: created + 44 * hour) == created + 48 * hour
        )
        #expect(lifetime.extended(Self.session(created: created, expires: created + 48 * hour), now: created + 47 * hour) == nil)
    }

    @Test func aSessionInUseOutlivesItsIdleTimeAndAnIdleOneEnds() async throws {
        let h = try await APIHarness(config: "[server]\nsession_hours = 1\nsession_max_days = 1")
        try await h.createUser("s@example.com")
        let database = h.services.database
        try await h.run { api in
            let token = try await api.login("s@example.com")
            let login = try await api.call(.get, "/api/v1/me", token: token)
            #expect(login.status == .ok)
            let sessions = try await database.withConnection { db in
                try await db.raw("SELECT id, created_at, expires_at FROM sessions").all()
            }
            let id = try sessions[0].decode(column: "id", as: String.self)
            let expires = try sessions[0].decode(column: "expires_at", as: Int64.self)
            let now = Clock.nowMillis()
            #expect(abs(expires - (now + 3_600_000)) < 60_000, "the first end is one hour after the login")
            // Pretend the login was 50 minutes ago: a use now moves the end to an hour from now.
            let earlier = expires - 50 * 60_000
            try await database.withConnection { db in
                try await db.raw(
                    "UPDATE sessions SET expires_at = \(bind: earlier), created_at = \(bind: now - 50 * 60_000) WHERE id = \(bind: id)"
                ).run()
            }
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .ok)
            let moved = try await database.withConnection { db in
                try await db.raw("SELECT expires_at FROM sessions WHERE id = \(bind: id)").first()!.decode(
                    column: "expires_at", as: Int64.self)
            }
            #expect(moved > earlier + 40 * 60_000)
            // Unused past its end: refused, and a use does not revive it.
            try await database.withConnection { db in
                try await db.raw("UPDATE sessions SET expires_at = \(bind: Clock.nowMillis() - 1000) WHERE id = \(bind: id)").run()
            }
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .unauthorized)
            #expect(try await api.call(.get, "/api/v1/me", token: token).status == .unauthorized)
        }
        try await h.close()
    }
}
