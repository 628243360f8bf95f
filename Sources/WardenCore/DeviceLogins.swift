import Crypto
import Foundation
import WardenCrypto
import WardenStore

/// `warden login --device` (RFC 8628's device authorization grant, with Warden as its own authorization
/// server): a machine without a browser asks for a code pair, a person who is logged in to the dashboard
/// elsewhere types the short user code and approves, and the machine, polling with the long device code,
/// gets a session of that person's. The device code is a 256-bit secret stored hashed; a user code is 8
/// letters from an alphabet without vowels or look-alikes (20^8 codes), valid 10 minutes, and approving
/// one only ever hands the approver's own session to the machine that asked.
public struct DeviceLogins: Sendable {
    let accounts: Accounts
    let grants: DeviceGrantRepository
    let users: UserRepository
    let audit: AuditLog

    /// How long a code pair is good for, and how often the machine may poll.
    public static let lifetimeSeconds = 600
    public static let intervalSeconds = 5
    /// Pending requests one address may hold at once.
    static let pendingPerAddress = 10
    static let alphabet = Array("BCDFGHJKLMNPQRSTVWXZ")

    public init(accounts: Accounts, audit: AuditLog) {
        self.accounts = accounts
        grants = DeviceGrantRepository(accounts.database)
        users = UserRepository(accounts.database)
        self.audit = audit
    }

    public struct Started: Sendable {
        public let deviceCode: String
        public let userCode: String
    }

    /// What a poll learns, in RFC 8628's terms.
    public enum Poll: Sendable {
        case pending, slowDown, denied, expired
        case approved(LoginResult)
    }

    public func start(clientAddress: String) async throws -> Started {
        let now = Clock.nowMillis()
        let tooMany = WardenError(
            .tooManyRequests, code: "too_many_device_logins",
            "too many device logins waiting from this address; approve or let them expire (10 minutes)",
            retryAfterSeconds: Self.lifetimeSeconds)
        try await grants.sweep(now: now)
        let deviceCode = Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255) })
        for _ in 0..<8 {
            let letters = (0..<8).map { _ in Self.alphabet.randomElement()! }
            let userCode = String(letters[0..<4]) + "-" + String(letters[4...])
            let record = DeviceGrantRecord(
                deviceHash: Self.hash(deviceCode), userCode: userCode, clientAddress: clientAddress, createdAt: now,
                expiresAt: now + Int64(Self.lifetimeSeconds) * 1000)
            if try await grants.insert(record, limitPerAddress: Self.pendingPerAddress) {
                return Started(deviceCode: deviceCode, userCode: userCode)
            }
            // Not inserted: the address reached its limit meanwhile, or the code was taken (draw another).
            if try await grants.pending(from: clientAddress, now: now) >= Self.pendingPerAddress { throw tooMany }
        }
        throw WardenError(.unavailable, code: "no_user_code", "no free user code could be drawn; try again")
    }

    /// The pending request a person is about to approve (nil: no such code, or it expired or was decided).
    public func pending(userCode: String) async throws -> DeviceGrantRecord? {
        guard let code = Self.normalize(userCode) else { return nil }
        return try await grants.pending(userCode: code, now: Clock.nowMillis())
    }

    /// The person approves (or denies) the request: its session will be theirs.
    public func decide(_ principal: Principal, userCode: String, approve: Bool) async throws {
        guard let code = Self.normalize(userCode),
            try await grants.decide(userCode: code, approve: approve, userID: principal.user.id, now: Clock.nowMillis())
        else { throw WardenError.invalid("user_code", "no device login is waiting with this code (it may have expired)") }
        try await audit.append(
            AuditEntry(
                actor: principal.user.id, owner: principal.user.id, action: approve ? "auth.device_approved" : "auth.device_denied",
                detail: ["user_code": code]))
    }

    /// The machine polls with its device code.
    public func poll(deviceCode: String) async throws -> Poll {
        let now = Clock.nowMillis()
        let hash = Self.hash(deviceCode)
        guard let grant = try await grants.poll(deviceHash: hash, now: now), grant.expiresAt > now else { return .expired }
        switch grant.status {
        case .denied: return .denied
        case .used: return .expired
        case .pending:
            return now - grant.polledAt < Int64(Self.intervalSeconds) * 1000 - 500 ? .slowDown : .pending
        case .approved:
            guard let userID = try await grants.redeem(deviceHash: hash, now: now), let user = try await users.find(id: userID),
                !user.disabled
            else { return .expired }
            return .approved(
                try await accounts.openSession(for: user, detail: ["address": grant.clientAddress, "via": "device"]))
        }
    }

    /// `abcd efgh`, `ABCD-EFGH` and `abcdefgh` are the same code; anything else is none.
    static func normalize(_ text: String) -> String? {
        let letters = text.uppercased().filter { $0 != "-" && $0 != " " }
        guard letters.count == 8, letters.allSatisfy({ alphabet.contains($0) }) else { return nil }
        return String(letters.prefix(4)) + "-" + String(letters.suffix(4))
    }

    static func hash(_ deviceCode: String) -> String { Hex.encode(SHA256.hash(data: Data(deviceCode.utf8))) }
}
