import Foundation
import Logging
import Testing
import WardenCore
import WardenStore

/// Guessing stays bounded per address and per account, on either engine and across servers sharing the
/// store, and a stranger's failures never lock the owner out of a known address.
@Suite struct LoginThrottleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func throttle(_ backend: Backend, addressLimit: Int = 10) async throws -> (LoginThrottle, Database) {
        let database = try await TestStore.make(backend).database
        try await Migrator.migrate(database, logger: TestStore.logger)
        return (LoginThrottle(database: database, addressLimit: addressLimit), database)
    }

    func admitted(
        _ throttle: LoginThrottle, _ account: String, _ address: String, device: String? = nil, at offset: TimeInterval
    ) async throws -> LoginThrottle.Attempt? {
        if case .success(let attempt) = try await throttle.admit(
            account: account, address: address, device: device, now: start.addingTimeInterval(offset))
        {
            return attempt
        }
        return nil
    }

    @Test(arguments: Backend.enabled)
    func anAttackersAddressIsStoppedWhileTheOwnerAtAKnownAddressLogsIn(backend: Backend) async throws {
        let (throttle, database) = try await throttle(backend)
        // The owner logged in from home once.
        let home = try #require(try await admitted(throttle, "owner@example.com", "10.0.0.1", at: 0))
        try await throttle.succeeded(home)
        // A stranger fails 10 times against the owner's account (and others) from one address...
        for i in 0..<10 {
            let account = i.isMultiple(of: 2) ? "owner@example.com" : "other\(i)@example.com"
            #expect(try await admitted(throttle, account, "203.0.113.9", at: 60 + Double(i) * 31) != nil, "failure \(i) refused")
        }
        // ...and that address is refused for every account until its oldest failure is 15 minutes old.
        guard
            case .failure(let wait) = try await throttle.admit(
                account: "new@example.com", address: "203.0.113.9", now: start.addingTimeInterval(400))
        else {
            Issue.record("the 11th failure from one address was admitted"); return
        }
        #expect(wait.seconds == 60 + 900 - 400)
        #expect(try await admitted(throttle, "new@example.com", "203.0.113.9", at: 60 + 900) != nil)
        // The owner at home is never held back by the stranger's failures, right away or after many more.
        for i in 0..<50 { _ = try await admitted(throttle, "owner@example.com", "198.51.100.\(i)", at: 500) }
        let again = try await admitted(throttle, "owner@example.com", "10.0.0.1", at: 500)
        #expect(again != nil, "the owner was locked out of a known address")
        try await database.close()
    }

    @Test(arguments: Backend.enabled)
    func guessesFromManyAddressesAreSpacedPerAccount(backend: Backend) async throws {
        let (throttle, database) = try await throttle(backend)
        // 1000 addresses, each trying the account once in 15 minutes, a few every second.
        var admittedCount = 0
        for second in 0..<900 {
            for address in 0..<1000 where (address + second) % 900 == 0 || second == 0 {
                if try await admitted(throttle, "victim@example.com", "198.51.100.\(address)", at: Double(second)) != nil {
                    admittedCount += 1
                }
            }
        }
        // 5 free failures, then one every 30 s (at 30, 60, … 870 s): 5 + 29.
        #expect(admittedCount == 5 + 29, "\(admittedCount) guesses in 15 minutes")
        // Another account is not slowed by this one's failures, and this one's are what an alarm reads.
        #expect(try await admitted(throttle, "bystander@example.com", "192.0.2.1", at: 899) != nil)
        #expect(try await throttle.isUnderAttack(account: "victim@example.com", now: start.addingTimeInterval(899)))
        #expect(try await !throttle.isUnderAttack(account: "bystander@example.com", now: start.addingTimeInterval(899)))
        try await database.close()
    }

    /// On an address the owner shares with the stranger (loopback), the owner's device token tells them apart.
    @Test(arguments: Backend.enabled)
    func theOwnersDeviceTokenGetsPastAStrangerOnTheSameAddress(backend: Backend) async throws {
        let (throttle, database) = try await throttle(backend)
        let attempt = try #require(try await admitted(throttle, "owner@example.com", "127.0.0.1", at: 0))
        let token = try #require(try await throttle.succeeded(attempt, issueDevice: true))
        for i in 0..<10 { _ = try await admitted(throttle, "owner@example.com", "127.0.0.1", at: 10 + Double(i) * 31) }
        #expect(try await admitted(throttle, "owner@example.com", "127.0.0.1", at: 400) == nil, "the shared address is not held")
        let owner = try #require(
            try await admitted(throttle, "owner@example.com", "127.0.0.1", device: token, at: 400), "the owner's device token was refused")
        #expect(try await throttle.succeeded(owner, issueDevice: true) == token)
        // The token is the account's only: another account's logins get nothing from it.
        #expect(try await admitted(throttle, "other@example.com", "127.0.0.1", device: token, at: 400) == nil)
        // A token guessed with 5 times is forgotten.
        for i in 0..<5 {
            #expect(
                try await admitted(throttle, "owner@example.com", "127.0.0.1", device: token, at: 401 + Double(i)) != nil,
                "failure \(i) with the device token was refused")
        }
        #expect(try await admitted(throttle, "owner@example.com", "127.0.0.1", device: token, at: 410) == nil)
        // Once the address's failures are out of the window, its plain path lets the owner in again.
        let later = try #require(try await admitted(throttle, "owner@example.com", "127.0.0.1", device: token, at: 1400))
        #expect(try await throttle.succeeded(later) == nil, "a forgotten token came back")
        let plain = try #require(try await admitted(throttle, "third@example.com", "192.0.2.9", at: 420))
        #expect(try await throttle.succeeded(plain) == nil, "a token was handed to a client that did not ask for one")
        try await database.close()
    }

    /// Attempts at one instant, as from several servers on one store: each is counted before the next is
    /// let in, so only the free ones pass.
    @Test(arguments: Backend.enabled)
    func concurrentAttemptsCountBeforeTheirPasswordsAreChecked(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        // A second handle on the same store stands for a second server (its own pool, its own process's view).
        let second =
            try store.postgresURL.map { try Database.open(.postgres(url: $0), logger: TestStore.logger) }
            ?? Database.open(.sqlite(path: try #require(store.sqlitePath)), logger: TestStore.logger)
        let servers = [LoginThrottle(database: store.database), LoginThrottle(database: second)]
        let now = start
        let admittedCount = try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<20 {
                group.addTask {
                    if case .success = try await servers[i % 2].admit(account: "victim@example.com", address: "198.51.100.\(i)", now: now) {
                        return true
                    }
                    return false
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admittedCount == 5)
        // A right password takes its attempt back: the owner's success is not a failure.
        let throttle2 = LoginThrottle(database: second, addressLimit: 2)
        for _ in 0..<5 {
            let attempt = try #require(try await admitted(throttle2, "a@example.com", "10.0.0.2", at: 0))
            try await throttle2.succeeded(attempt)
        }
        #expect(try await admitted(throttle2, "a@example.com", "10.0.0.2", at: 0) != nil)
        try await second.close()
        try await store.database.close()
    }

    /// Neither an account's name nor a device token is stored as typed.
    @Test(arguments: Backend.enabled)
    func accountsAndDeviceTokensAreStoredHashed(backend: Backend) async throws {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        let throttle = LoginThrottle(database: store.database)
        let typed = "hunter2-typed-into-the-email-field"
        _ = try await admitted(throttle, typed, "10.0.0.3", at: 0)
        let owner = try #require(try await admitted(throttle, "owner@example.com", "10.0.0.3", at: 1))
        let token = try #require(try await throttle.succeeded(owner, issueDevice: true))
        try await store.database.close()
        let raw = try store.rawContents()
        for secret in [typed, token, "owner@example.com"] {
            #expect(raw.range(of: Data(secret.utf8)) == nil, "\(secret) is in the store as typed")
        }
    }
}
