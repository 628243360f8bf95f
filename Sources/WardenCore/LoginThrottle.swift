import Foundation

/// Bounds password guessing without letting a stranger lock the owner out. Kept in memory (per
/// process): a restart clears it.
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
/// attempts cannot all slip in under a limit before their passwords are checked.
public actor LoginThrottle {
    public let addressLimit: Int
    public let accountFreeFailures: Int
    public let accountSpacing: TimeInterval
    public let window: TimeInterval
    public let trustLifetime: TimeInterval

    private var addressFailures: [String: [Date]] = [:]
    private var accountFailures: [String: [Date]] = [:]
    /// When the account's next attempt from an unknown address may be made.
    private var accountNext: [String: Date] = [:]
    /// account → address → last successful login.
    private var trusted: [String: [String: Date]] = [:]
    /// device token → its account, when it was handed out, and its own recent failures.
    private var devices: [String: Device] = [:]
    private struct Device {
        let account: String
        let issued: Date
        var failures: [Date]
    }
    private var admissions = 0

    /// Addresses and device tokens remembered per account: enough for one person's devices and networks.
    static let trustedPerAccount = 16
    /// Failures a device token may have in a window before it is forgotten.
    public static let deviceFailureLimit = 5

    public init(
        addressLimit: Int = 10, accountFreeFailures: Int = 5, accountSpacing: TimeInterval = 30,
        window: TimeInterval = 900, trustLifetime: TimeInterval = 30 * 86_400
    ) {
        self.addressLimit = addressLimit
        self.accountFreeFailures = accountFreeFailures
        self.accountSpacing = accountSpacing
        self.window = window
        self.trustLifetime = trustLifetime
    }

    /// An admitted attempt; pass it to `succeeded` when the password was right.
    public struct Attempt: Sendable {
        let account: String
        let address: String
        let at: Date
        /// The device token it came with, when that token is the account's.
        let device: String?
    }

    /// Admits an attempt (counting it as a failure until `succeeded`), or returns the seconds to wait.
    public func admit(account: String, address: String, device: String? = nil, now: Date = Date()) -> Result<Attempt, Wait> {
        admissions += 1
        if admissions % 1024 == 0 { sweep(now: now) }
        if let device, var token = devices[device], token.account == account, now.timeIntervalSince(token.issued) < trustLifetime {
            token.failures = token.failures.filter { now.timeIntervalSince($0) < window }
            if token.failures.count < Self.deviceFailureLimit {
                token.failures.append(now)
                devices[device] = token
                return .success(Attempt(account: account, address: address, at: now, device: device))
            }
            devices[device] = nil  // guessed with too often: from now on it is an unknown device
        }
        let fromAddress = recent(&addressFailures, address, now: now)
        if fromAddress.count >= addressLimit, let oldest = fromAddress.first {
            return .failure(Wait(seconds: oldest.addingTimeInterval(window).timeIntervalSince(now)))
        }
        let known = trusted[account]?[address].map { now.timeIntervalSince($0) < trustLifetime } ?? false
        if !known {
            let failures = recent(&accountFailures, account, now: now).count
            if failures >= accountFreeFailures, let next = accountNext[account], next > now {
                return .failure(Wait(seconds: next.timeIntervalSince(now)))
            }
            // From the last free failure on, each admitted attempt holds the next one off for the spacing.
            if failures + 1 >= accountFreeFailures { accountNext[account] = now.addingTimeInterval(accountSpacing) }
        }
        addressFailures[address, default: []].append(now)
        accountFailures[account, default: []].append(now)
        return .success(Attempt(account: account, address: address, at: now, device: nil))
    }

    /// The attempt's password was right: it is no failure, and its address becomes known to the account.
    /// Returns the device token to keep for the next logins: the one it came with, or a new one when
    /// `issueDevice` (only for a client that keeps it: handing tokens to clients that drop them would
    /// push the kept ones out).
    /// Whether the account has failed often enough in the window to be throttled (an alarm's threshold).
    public func isUnderAttack(account: String, now: Date = Date()) -> Bool {
        (accountFailures[account]?.filter { now.timeIntervalSince($0) < window }.count ?? 0) >= accountFreeFailures
    }

    @discardableResult
    public func succeeded(_ attempt: Attempt, issueDevice: Bool = false) -> String? {
        if let token = attempt.device, var device = devices[token] {
            if let index = device.failures.firstIndex(of: attempt.at) { device.failures.remove(at: index) }
            devices[token] = device
            trust(attempt)
            return token
        }
        Self.remove(attempt.at, from: &addressFailures, attempt.address)
        Self.remove(attempt.at, from: &accountFailures, attempt.account)
        trust(attempt)
        guard issueDevice else { return nil }
        let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        devices[token] = Device(account: attempt.account, issued: attempt.at, failures: [])
        let own = devices.filter { $0.value.account == attempt.account }
        if own.count > Self.trustedPerAccount, let oldest = own.min(by: { $0.value.issued < $1.value.issued })?.key {
            devices[oldest] = nil
        }
        return token
    }

    private func trust(_ attempt: Attempt) {
        var addresses = trusted[attempt.account] ?? [:]
        addresses[attempt.address] = attempt.at
        if addresses.count > Self.trustedPerAccount, let stalest = addresses.min(by: { $0.value < $1.value })?.key {
            addresses[stalest] = nil
        }
        trusted[attempt.account] = addresses
    }

    public struct Wait: Error, Sendable {
        public let seconds: Int
        init(seconds: TimeInterval) { self.seconds = max(1, Int(seconds.rounded(.up))) }
    }

    private func recent(_ table: inout [String: [Date]], _ key: String, now: Date) -> [Date] {
        let kept = (table[key] ?? []).filter { now.timeIntervalSince($0) < window }
        table[key] = kept.isEmpty ? nil : kept
        return kept
    }

    private static func remove(_ date: Date, from table: inout [String: [Date]], _ key: String) {
        guard var dates = table[key], let index = dates.firstIndex(of: date) else { return }
        dates.remove(at: index)
        table[key] = dates.isEmpty ? nil : dates
    }

    /// Forgets what no longer counts, so addresses and accounts tried once do not stay in memory.
    private func sweep(now: Date) {
        addressFailures = addressFailures.compactMapValues { dates in
            let kept = dates.filter { now.timeIntervalSince($0) < window }
            return kept.isEmpty ? nil : kept
        }
        accountFailures = accountFailures.compactMapValues { dates in
            let kept = dates.filter { now.timeIntervalSince($0) < window }
            return kept.isEmpty ? nil : kept
        }
        accountNext = accountNext.filter { $0.value > now }
        devices = devices.filter { now.timeIntervalSince($0.value.issued) < trustLifetime }
        trusted = trusted.compactMapValues { addresses in
            let kept = addresses.filter { now.timeIntervalSince($0.value) < trustLifetime }
            return kept.isEmpty ? nil : kept
        }
    }
}
