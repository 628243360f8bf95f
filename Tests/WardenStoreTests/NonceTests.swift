import Foundation
import Testing
import WardenStore

/// Nonces in the store: strictly rising per key, whichever server asks and whatever its clock says.
@Suite struct NonceTests {
    @Test(arguments: Backend.enabled)
    func noncesRiseStrictlyAcrossServersAndClocksBehind(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        // A second handle on the same store stands for a second server.
        let second =
            try store.postgresURL.map { try Database.open(.postgres(url: $0), logger: TestStore.logger) }
            ?? Database.open(.sqlite(path: try #require(store.sqlitePath)), logger: TestStore.logger)
        let servers = [NonceRepository(store.database), NonceRepository(second)]
        let clock: Int64 = 1_800_000_000_000_000
        #expect(try await servers[0].next(key: "k1", atLeast: clock) == clock)
        // 60 concurrent calls from both servers, half of them with a clock behind: 60 distinct nonces above the first.
        let nonces = try await withThrowingTaskGroup(of: Int64.self) { group in
            for i in 0..<60 {
                group.addTask { try await servers[i % 2].next(key: "k1", atLeast: i % 3 == 0 ? clock - 1_000_000 : clock) }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        #expect(Set(nonces).count == 60 && nonces.allSatisfy { $0 > clock })
        #expect(Set(nonces) == Set((clock + 1)...(clock + 60)))
        // A clock ahead of the last nonce moves it on; a clock far behind (a restart with the clock set back) does not.
        #expect(try await servers[1].next(key: "k1", atLeast: clock + 5_000_000) == clock + 5_000_000)
        #expect(try await servers[0].next(key: "k1", atLeast: 1) == clock + 5_000_001)
        // Another key counts apart.
        #expect(try await servers[1].next(key: "k2", atLeast: 7) == 7)
        try await second.close()
        try await store.database.close()
    }
}
