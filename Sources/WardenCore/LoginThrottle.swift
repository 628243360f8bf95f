import Crypto
import Foundation
import WardenCrypto
import WardenStore

/// Bounds password guessing without letting a stranger lock the owner out. Kept in the store, so every
/// server sharing it counts the same failures and a restart forgets none (`LoginThrottleRepository`).
///
/// - Per client address: `addressLimit` failed logins (to any accounts) in `window` and that address
///   is refused until the oldest of them is `window` old.
/// - Per account, over all addresses: the first `accountFreeFailures` failures in `window` cost
///   nothing; from the last of them on, attempts on the account are spaced `accountSpacing` apart, so a
///   guesser with any number of addresses gets at most `accountFreeFailures + window / accountSpacing`
///   guesses per window. An address the account has logged in from (in the last `trustLifetime`) is
///   exempt from this spacing: the owner at a known address is never slowed by a stranger's failures,
///   and a stranger cannot make an address known without the password.
/// - A device token (the dashboard keeps it in a cookie; each successful login hands one out) lets its
///   account's logins past both limits above, for `deviceFailureLimit` failures per `window`, after
///   which the token is forgotten. It is what tells the owner from a stranger on the same address (a
///   browser and an agent on one host both come from 127.0.0.1), and it cannot be had without the password.
///
/// An attempt counts as a failure from the moment it is admitted until it succeeds, so concurrent
/// attempts cannot all slip in under a limit before their passwords are checked. Accounts and device
/// tokens are stored as SHA-256 hashes (a mistyped password in the email field is not kept).
public struct LoginThrottle: Sendable {
    public let limits: LoginLimits
    let repository: LoginThrottleRepository

    /// Failures a device token may have in a window before it is forgotten.
    public static let deviceFailureLimit = 5

    public init(
        database: Database, addressLimit: Int = 10, accountFreeFailures: Int = 5, accountSpacing: TimeInterval = 30,
        window: TimeInterval = 900, trustLifetime: TimeInterval = 30 * 86_400
    ) {
        repository = LoginThrottleRepository(database)
        limits = LoginLimits(
            addressLimit: addressLimit, accountFreeFailures: accountFreeFailures, accountSpacing: Int64(accountSpacing * 1000),
            window: Int64(window * 1000), trustLifetime: Int64(trustLifetime * 1000), deviceFailureLimit: Self.deviceFailureLimit,
            trustedPerAccount: 16)
    }

    /// An admitted attempt; pass it to `succeeded` when the password was right.
    public struct Attempt: Sendable {
        let id: String
        let account: String
        let address: String
        let at: Int64
        /// The device token it came with, when that token is the account's and let it in.
        let device: String?
    }

    public struct Wait: Error, Sendable {
        public let seconds: Int
        init(millis: Int64) { seconds = Int(max(1, (millis + 999) / 1000)) }
    }

    /// Admits an attempt (counting it as a failure until `succeeded`), or returns the seconds to wait.
    public func admit(account: String, address: String, device: String? = nil, now: Date = Date()) async throws -> Result<Attempt, Wait> {
        let id = UUID().uuidString.lowercased(), at = Self.millis(now), account = Self.hash(account)
        switch try await repository.admit(
            id: id, account: account, address: address, device: device.map(Self.hash), now: at, limits: limits)
        {
        case .admitted(let byDevice):
            return .success(Attempt(id: id, account: account, address: address, at: at, device: byDevice == nil ? nil : device))
        case .wait(let millis): return .failure(Wait(millis: millis))
        }
    }

    /// The attempt's password was right: it is no failure, and its address becomes known to the account.
    /// Returns the device token to keep for the next logins: the one it came with, or a new one when
    /// `issueDevice` (only for a client that keeps it: handing tokens to clients that drop them would
    /// push the kept ones out).
    @discardableResult
    public func succeeded(_ attempt: Attempt, issueDevice: Bool = false) async throws -> String? {
        if let device = attempt.device {
            try await repository.succeeded(
                id: attempt.id, account: attempt.account, address: attempt.address, at: attempt.at, newDevice: nil, limits: limits)
            return device
        }
        let token = issueDevice ? Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }) : nil
        try await repository.succeeded(
            id: attempt.id, account: attempt.account, address: attempt.address, at: attempt.at, newDevice: token.map(Self.hash),
            limits: limits)
        return token
    }

    /// Whether the account has failed often enough in the window to be throttled (an alarm's threshold).
    public func isUnderAttack(account: String, now: Date = Date()) async throws -> Bool {
        try await repository.accountFailures(Self.hash(account), since: Self.millis(now) - limits.window) >= limits.accountFreeFailures
    }

    static func hash(_ value: String) -> String { Hex.encode(SHA256.hash(data: Data(value.utf8))) }
    static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}
