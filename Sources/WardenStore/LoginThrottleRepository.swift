import SQLKit

/// The figures a login throttle keeps to (see `LoginThrottle` in WardenCore for what each bounds), in
/// milliseconds.
public struct LoginLimits: Sendable, Equatable {
    public var addressLimit: Int
    public var accountFreeFailures: Int
    public var accountSpacing: Int64
    public var window: Int64
    public var trustLifetime: Int64
    public var deviceFailureLimit: Int
    /// Known addresses and device tokens kept per account: enough for one person's devices and networks.
    public var trustedPerAccount: Int

    public init(
        addressLimit: Int, accountFreeFailures: Int, accountSpacing: Int64, window: Int64, trustLifetime: Int64,
        deviceFailureLimit: Int, trustedPerAccount: Int
    ) {
        self.addressLimit = addressLimit
        self.accountFreeFailures = accountFreeFailures
        self.accountSpacing = accountSpacing
        self.window = window
        self.trustLifetime = trustLifetime
        self.deviceFailureLimit = deviceFailureLimit
        self.trustedPerAccount = trustedPerAccount
    }
}

/// What the store answered an attempt: let in (it counts as a failure, row `id`, until it succeeds) or the
/// milliseconds to wait.
public enum LoginAdmission: Sendable, Equatable {
    /// `device`: the device token's hash it came in on, when that token let it past the other limits.
    case admitted(device: String?)
    case wait(millis: Int64)
}

/// A login throttle's memory, in the store so that every server on it counts the same failures (and a
/// restart forgets none). Accounts and device tokens are kept only as hashes; each admission runs in one
/// transaction that holds every other admission off (SQLite's writer; an advisory lock on PostgreSQL), so
/// concurrent attempts on any servers are counted one after the other.
public struct LoginThrottleRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// The advisory lock's key on PostgreSQL: one for all logins, which are few and short.
    static let lockKey = 0x5741_524C_4E01

    /// Admits attempt `id` on `account` from `address` (with the device token hashed as `device`), or says
    /// how long to wait. See `LoginThrottle.admit` for the rules.
    public func admit(
        id: String, account: String, address: String, device: String?, now: Int64, limits: LoginLimits
    ) async throws -> LoginAdmission {
        try await database.transaction { db in
            if database.dialect == .postgres {
                try await db.raw("SELECT pg_advisory_xact_lock(\(bind: Self.lockKey))").run()
            }
            try await forgetStale(now: now, limits: limits, on: db)
            if let device, let admitted = try await admitByDevice(id, account, address, device, now, limits, db) {
                return admitted
            }
            let since = now - limits.window
            let fromAddress = try await db.raw(
                """
                SELECT COUNT(*) AS n, MIN(at) AS oldest FROM login_failures
                WHERE address = \(bind: address) AND device_hash IS NULL AND at > \(bind: since)
                """
            ).first()
            if let row = fromAddress, try row.decode(column: "n", as: Int.self) >= limits.addressLimit {
                let oldest = try row.decode(column: "oldest", as: Int64?.self) ?? now
                return .wait(millis: oldest + limits.window - now)
            }
            let known =
                try await db.raw(
                    """
                    SELECT 1 AS known FROM login_trust
                    WHERE account = \(bind: account) AND address = \(bind: address) AND at > \(bind: now - limits.trustLifetime)
                    """
                ).first() != nil
            if !known, let wait = try await spaceAccount(account, now, limits, db) { return .wait(millis: wait) }
            try await insertFailure(id: id, account: account, address: address, device: nil, at: now, on: db)
            return .admitted(device: nil)
        }
    }

    /// A device token of the account, not too old and not guessed with too often, lets the attempt past
    /// the address and account limits; one guessed with too often is forgotten (nil: go on as without).
    private func admitByDevice(
        _ id: String, _ account: String, _ address: String, _ device: String, _ now: Int64, _ limits: LoginLimits,
        _ db: any SQLDatabase
    ) async throws -> LoginAdmission? {
        guard
            try await db.raw(
                """
                SELECT 1 AS live FROM login_devices WHERE device_hash = \(bind: device) AND account = \(bind: account)
                AND issued_at > \(bind: now - limits.trustLifetime)
                """
            ).first() != nil
        else { return nil }
        let failures =
            try await db.raw(
                "SELECT COUNT(*) AS n FROM login_failures WHERE device_hash = \(bind: device) AND at > \(bind: now - limits.window)"
            ).first()?.decode(column: "n", as: Int.self) ?? 0
        guard failures < limits.deviceFailureLimit else {
            try await db.raw("DELETE FROM login_devices WHERE device_hash = \(bind: device)").run()
            return nil
        }
        try await insertFailure(id: id, account: account, address: address, device: device, at: now, on: db)
        return .admitted(device: device)
    }

    /// Past the account's free failures, attempts from unknown addresses are spaced: returns the wait while
    /// the next one is not due, and otherwise holds the one after off for the spacing.
    private func spaceAccount(_ account: String, _ now: Int64, _ limits: LoginLimits, _ db: any SQLDatabase) async throws -> Int64? {
        let failures = try await accountFailures(account, since: now - limits.window, on: db)
        let next = try await db.raw("SELECT next_at FROM login_spacing WHERE account = \(bind: account)").first()?
            .decode(column: "next_at", as: Int64.self)
        if failures >= limits.accountFreeFailures, let next, next > now { return next - now }
        if failures + 1 >= limits.accountFreeFailures {
            try await db.raw(
                """
                INSERT INTO login_spacing (account, next_at) VALUES (\(bind: account), \(bind: now + limits.accountSpacing))
                ON CONFLICT (account) DO UPDATE SET next_at = \(bind: now + limits.accountSpacing)
                """
            ).run()
        }
        return nil
    }

    /// Attempt `id` had the right password: it is no failure, its address becomes known to the account, and
    /// `newDevice` (a new device token's hash) is kept for the account, the oldest beyond the bound dropped.
    public func succeeded(
        id: String, account: String, address: String, at: Int64, newDevice: String?, limits: LoginLimits
    ) async throws {
        try await database.transaction { db in
            try await db.raw("DELETE FROM login_failures WHERE id = \(bind: id)").run()
            try await db.raw(
                """
                INSERT INTO login_trust (account, address, at) VALUES (\(bind: account), \(bind: address), \(bind: at))
                ON CONFLICT (account, address) DO UPDATE SET at = \(bind: at)
                """
            ).run()
            try await keepNewest("login_trust", "address", "at", account: account, limits.trustedPerAccount, on: db)
            guard let newDevice else { return }
            try await db.raw(
                """
                INSERT INTO login_devices (device_hash, account, issued_at) VALUES (\(bind: newDevice), \(bind: account), \(bind: at))
                """
            ).run()
            try await keepNewest("login_devices", "device_hash", "issued_at", account: account, limits.trustedPerAccount, on: db)
        }
    }

    /// The account's failures (not counting those on a device token) since `since`.
    public func accountFailures(_ account: String, since: Int64) async throws -> Int {
        try await database.withConnection { db in try await accountFailures(account, since: since, on: db) }
    }

    private func accountFailures(_ account: String, since: Int64, on db: any SQLDatabase) async throws -> Int {
        try await db.raw(
            """
            SELECT COUNT(*) AS n FROM login_failures WHERE account = \(bind: account) AND device_hash IS NULL AND at > \(bind: since)
            """
        ).first()?.decode(column: "n", as: Int.self) ?? 0
    }

    private func insertFailure(id: String, account: String, address: String, device: String?, at: Int64, on db: any SQLDatabase)
        async throws
    {
        try await db.raw(
            """
            INSERT INTO login_failures (id, account, address, device_hash, at)
            VALUES (\(bind: id), \(bind: account), \(bind: address), \(bind: device), \(bind: at))
            """
        ).run()
    }

    /// Keeps the account's `limit` newest rows of `table` (by `time`), so no one can fill the store through it.
    private func keepNewest(_ table: String, _ key: String, _ time: String, account: String, _ limit: Int, on db: any SQLDatabase)
        async throws
    {
        try await db.raw(
            """
            DELETE FROM \(unsafeRaw: table) WHERE account = \(bind: account) AND \(unsafeRaw: key) NOT IN (
                SELECT \(unsafeRaw: key) FROM \(unsafeRaw: table) WHERE account = \(bind: account)
                ORDER BY \(unsafeRaw: time) DESC, \(unsafeRaw: key) LIMIT \(literal: limit))
            """
        ).run()
    }

    /// What no longer counts: failures out of the window, spacing that has passed, trust and devices out of
    /// their lifetime. Indexed deletes, cheap at each admission.
    private func forgetStale(now: Int64, limits: LoginLimits, on db: any SQLDatabase) async throws {
        try await db.raw("DELETE FROM login_failures WHERE at <= \(bind: now - limits.window)").run()
        try await db.raw("DELETE FROM login_spacing WHERE next_at <= \(bind: now)").run()
        try await db.raw("DELETE FROM login_trust WHERE at <= \(bind: now - limits.trustLifetime)").run()
        try await db.raw("DELETE FROM login_devices WHERE issued_at <= \(bind: now - limits.trustLifetime)").run()
    }
}
