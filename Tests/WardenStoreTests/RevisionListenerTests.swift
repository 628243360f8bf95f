import Foundation
import Logging
import Synchronization
import Testing
import WardenStore

/// On PostgreSQL a change to what the gateway decides on is heard when it commits, by any process listening.
@Suite struct RevisionListenerTests {
    @Test func aCommittedChangeIsHeardAndTheListenerStopsWhenCancelled() async throws {
        guard Backend.enabled.contains(.postgres) else { return }
        let store = try await TestStore.make(.postgres)
        let database = store.database
        try await Migrator.migrate(database, logger: TestStore.logger)
        let sqlite = try await TestStore.make(.sqlite).database
        #expect(RevisionListener(sqlite, logger: TestStore.logger) == nil)
        try await sqlite.close()
        let listener = try #require(RevisionListener(database, logger: TestStore.logger))
        let heard = Atomic<Int>(0)
        let task = Task { await listener.run { heard.add(1, ordering: .relaxed) } }
        // The first call comes once it listens (changes made before were not heard).
        try await Self.waitUntil { heard.load(ordering: .relaxed) >= 1 }
        let before = heard.load(ordering: .relaxed)
        let now = Clock.nowMillis()
        try await database.transaction { db in
            try await db.raw(
                """
                INSERT INTO users (id, email, password_hash, is_admin, disabled, must_change_password, created_at, updated_at)
                VALUES ('u1', 'n@example.com', 'x', false, false, false, \(bind: now), \(bind: now))
                """
            ).run()
            try await db.raw("UPDATE users SET disabled = true WHERE id = 'u1'").run()
        }
        try await Self.waitUntil { heard.load(ordering: .relaxed) > before }
        // A write to nothing the gateway decides on notifies no one.
        let settled = heard.load(ordering: .relaxed)
        try await database.withConnection { db in try await db.raw("UPDATE store_probe SET checked_at = 1 WHERE id = 1").run() }
        try await Task.sleep(for: .milliseconds(300))
        #expect(heard.load(ordering: .relaxed) == settled)
        task.cancel()
        let stopped = Date()
        await task.value
        #expect(Date().timeIntervalSince(stopped) < 5, "the listener did not stop when cancelled")
        try await database.close()
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(5)
        while !condition() {
            guard Date() < deadline else {
                Issue.record("not heard within 5 s")
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}
