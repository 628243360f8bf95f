import Foundation
import Testing
@testable import WardenCore

/// Guessing stays bounded per address and per account, and a stranger's failures never lock the owner
/// out of a known address.
@Suite struct LoginThrottleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func admitted(_ throttle: LoginThrottle, _ account: String, _ address: String, at offset: TimeInterval) async -> LoginThrottle.Attempt?
    {
        if case .success(let attempt) = await throttle.admit(account: account, address: address, now: start.addingTimeInterval(offset)) {
            return attempt
        }
        return nil
    }

    @Test func anAttackersAddressIsStoppedWhileTheOwnerAtAKnownAddressLogsIn() async {
        let throttle = LoginThrottle()
        // The owner logged in from home once.
        let home = await admitted(throttle, "owner@example.com", "10.0.0.1", at: 0)
        await throttle.succeeded(home!)
        // A stranger fails 10 times against the owner's account (and others) from one address...
        for i in 0..<10 {
            let account = i.isMultiple(of: 2) ? "owner@example.com" : "other\(i)@example.com"
            #expect(await admitted(throttle, account, "203.0.113.9", at: 60 + Double(i) * 31) != nil, "failure \(i) refused")
        }
        // ...and that address is refused for every account until its oldest failure is 15 minutes old.
        guard
            case .failure(let wait) = await throttle.admit(
                account: "new@example.com", address: "203.0.113.9",
                now: start.addingTimeInterval(400))
        else {
            Issue.record("the 11th failure from one address was admitted"); return
        }
        #expect(wait.seconds == 60 + 900 - 400)
        #expect(await admitted(throttle, "new@example.com", "203.0.113.9", at: 60 + 900) != nil)
        // The owner at home is never held back by the stranger's failures, right away or after many more.
        for i in 0..<50 { _ = await admitted(throttle, "owner@example.com", "198.51.100.\(i)", at: 500) }
        let again = await admitted(throttle, "owner@example.com", "10.0.0.1", at: 500)
        #expect(again != nil, "the owner was locked out of a known address")
    }

    @Test func guessesFromManyAddressesAreSpacedPerAccount() async {
        let throttle = LoginThrottle()
        // 1000 addresses, each trying the account once a second for 15 minutes.
        var admittedCount = 0
        for second in 0..<900 {
            for address in 0..<1000 where (address + second) % 900 == 0 || second == 0 {
                if await admitted(throttle, "victim@example.com", "198.51.100.\(address)", at: Double(second)) != nil { admittedCount += 1 }
            }
        }
        // 5 free failures, then one every 30 s (at 30, 60, … 870 s): 5 + 29.
        #expect(admittedCount == 5 + 29, "\(admittedCount) guesses in 15 minutes")
        // Another account is not slowed by this one's failures.
        #expect(await admitted(throttle, "bystander@example.com", "192.0.2.1", at: 899) != nil)
    }

    /// On an address the owner shares with the stranger (loopback), the owner's device token tells them apart.
    @Test func theOwnersDeviceTokenGetsPastAStrangerOnTheSameAddress() async throws {
        let throttle = LoginThrottle()
        let first = await admitted(throttle, "owner@example.com", "127.0.0.1", at: 0)
        let attempt = try #require(first)
        let token = try #require(await throttle.succeeded(attempt, issueDevice: true))
        for i in 0..<10 { _ = await admitted(throttle, "owner@example.com", "127.0.0.1", at: 10 + Double(i) * 31) }
        #expect(await admitted(throttle, "owner@example.com", "127.0.0.1", at: 400) == nil, "the shared address is not held")
        guard
            case .success(let owner) = await throttle.admit(
                account: "owner@example.com", address: "127.0.0.1", device: token,
                now: start.addingTimeInterval(400))
        else {
            Issue.record("the owner's device token was refused"); return
        }
        #expect(await throttle.succeeded(owner, issueDevice: true) == token)
        // The token is the account's only: another account's logins get nothing from it.
        guard
            case .failure = await throttle.admit(
                account: "other@example.com", address: "127.0.0.1", device: token,
                now: start.addingTimeInterval(400))
        else {
            Issue.record("a device token opened another account"); return
        }
        // A token guessed with 5 times is forgotten.
        for i in 0..<5 {
            guard
                case .success = await throttle.admit(
                    account: "owner@example.com", address: "127.0.0.1", device: token,
                    now: start.addingTimeInterval(401 + Double(i)))
            else {
                Issue.record("failure \(i) with the device token was refused"); return
            }
        }
        guard
            case .failure = await throttle.admit(
                account: "owner@example.com", address: "127.0.0.1", device: token,
                now: start.addingTimeInterval(410))
        else {
            Issue.record("a device token allowed a 6th failure"); return
        }
        let plain = await admitted(throttle, "third@example.com", "192.0.2.9", at: 420)
        #expect(await throttle.succeeded(try #require(plain)) == nil, "a token was handed to a client that did not ask for one")
    }

    @Test func concurrentAttemptsCountBeforeTheirPasswordsAreChecked() async {
        let throttle = LoginThrottle()
        // Nothing has failed yet, but of 20 attempts at once only the free 5 are let in.
        var admittedCount = 0
        for i in 0..<20 where await admitted(throttle, "victim@example.com", "198.51.100.\(i)", at: 0) != nil { admittedCount += 1 }
        #expect(admittedCount == 5)
        // A right password takes its attempt back: the owner's success is not a failure.
        let throttle2 = LoginThrottle(addressLimit: 2)
        for _ in 0..<5 {
            let attempt = await admitted(throttle2, "a@example.com", "10.0.0.2", at: 0)
            await throttle2.succeeded(attempt!)
        }
        #expect(await admitted(throttle2, "a@example.com", "10.0.0.2", at: 0) != nil)
    }
}
