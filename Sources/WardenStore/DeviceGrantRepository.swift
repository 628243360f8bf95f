import SQLKit

/// A device login waiting for a person (RFC 8628): the CLI holds the device code (stored hashed), the person
/// types the user code into the dashboard.
public struct DeviceGrantRecord: Sendable, Equatable {
    public enum Status: String, Sendable { case pending, approved, denied, used }

    public var deviceHash: String
    public var userCode: String
    public var status: Status
    public var userID: String?
    /// Where the CLI asked from, shown to the person before they approve.
    public var clientAddress: String
    public var createdAt: Int64
    public var expiresAt: Int64
    public var polledAt: Int64

    public init(
        deviceHash: String, userCode: String, status: Status = .pending, userID: String? = nil, clientAddress: String,
        createdAt: Int64, expiresAt: Int64, polledAt: Int64 = 0
    ) {
        self.deviceHash = deviceHash
        self.userCode = userCode
        self.status = status
        self.userID = userID
        self.clientAddress = clientAddress
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.polledAt = polledAt
    }
}

public struct DeviceGrantRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Inserts a grant unless its address already has `limit` pending ones, in one statement (on SQLite,
    /// writes take turns, so the limit is exact; on PostgreSQL concurrent inserts may pass it by a few).
    /// False when nothing was inserted: the address is at its limit, or the user code is taken.
    public func insert(_ g: DeviceGrantRecord, limitPerAddress limit: Int) async throws -> Bool {
        try await database.withConnection { db in
            try await db.raw(
                """
                INSERT INTO device_grants (device_hash, user_code, status, user_id, client_address, created_at, expires_at, polled_at)
                SELECT \(bind: g.deviceHash), \(bind: g.userCode), \(bind: g.status.rawValue), \(bind: g.userID),
                    \(bind: g.clientAddress), \(bind: g.createdAt), \(bind: g.expiresAt), \(bind: g.polledAt)
                WHERE (SELECT COUNT(*) FROM device_grants WHERE client_address = \(bind: g.clientAddress)
                    AND status = 'pending' AND expires_at > \(bind: g.createdAt)) < \(bind: limit)
                ON CONFLICT DO NOTHING RETURNING device_hash
                """
            ).first() != nil
        }
    }

    /// Pending grants from `address` that have not expired.
    public func pending(from address: String, now: Int64) async throws -> Int {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT COUNT(*) AS n FROM device_grants
                WHERE client_address = \(bind: address) AND status = 'pending' AND expires_at > \(bind: now)
                """
            ).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// The pending, unexpired grant with this user code.
    public func pending(userCode: String, now: Int64) async throws -> DeviceGrantRecord? {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT * FROM device_grants
                WHERE user_code = \(bind: userCode) AND status = 'pending' AND expires_at > \(bind: now)
                """
            ).first().map(Self.decode)
        }
    }

    /// Approves (for `userID`) or denies a pending, unexpired grant; false when there is none.
    public func decide(userCode: String, approve: Bool, userID: String, now: Int64) async throws -> Bool {
        try await database.withConnection { db in
            try await db.raw(
                """
                UPDATE device_grants SET status = \(bind: approve ? "approved" : "denied"), user_id = \(bind: userID)
                WHERE user_code = \(bind: userCode) AND status = 'pending' AND expires_at > \(bind: now)
                RETURNING device_hash
                """
            ).first() != nil
        }
    }

    /// Records a poll and returns the grant as it was before it (nil: no such grant).
    public func poll(deviceHash: String, now: Int64) async throws -> DeviceGrantRecord? {
        try await database.transaction { db in
            guard
                let grant = try await db.raw("SELECT * FROM device_grants WHERE device_hash = \(bind: deviceHash)").first().map(Self.decode)
            else { return nil }
            try await db.raw("UPDATE device_grants SET polled_at = \(bind: now) WHERE device_hash = \(bind: deviceHash)").run()
            return grant
        }
    }

    /// Marks an approved grant used and returns its user: only the first poll that sees it approved gets a session.
    public func redeem(deviceHash: String, now: Int64) async throws -> String? {
        try await database.withConnection { db in
            try await db.raw(
                """
                UPDATE device_grants SET status = 'used'
                WHERE device_hash = \(bind: deviceHash) AND status = 'approved' AND expires_at > \(bind: now)
                RETURNING user_id
                """
            ).first()?.decode(column: "user_id", as: String?.self)
        }
    }

    /// Deletes grants that expired more than a day ago.
    public func sweep(now: Int64) async throws {
        try await database.withConnection { db in
            try await db.raw("DELETE FROM device_grants WHERE expires_at < \(bind: now - 86_400_000)").run()
        }
    }

    static func decode(_ row: any SQLRow) throws -> DeviceGrantRecord {
        DeviceGrantRecord(
            deviceHash: try row.decode(column: "device_hash", as: String.self),
            userCode: try row.decode(column: "user_code", as: String.self),
            status: DeviceGrantRecord.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .denied,
            userID: try row.decode(column: "user_id", as: String?.self),
            clientAddress: try row.decode(column: "client_address", as: String.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            expiresAt: try row.decode(column: "expires_at", as: Int64.self),
            polledAt: try row.decode(column: "polled_at", as: Int64.self))
    }
}
