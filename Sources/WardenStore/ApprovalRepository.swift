import Foundation
import SQLKit

/// An order held for a person's approval.
public struct ApprovalRecord: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Waiting for a person, its reservation held.
        case pending
        /// Approved; being sent (by exactly one server).
        case sending
        /// Sent to the venue; `answerStatus` and `answerBody` are its answer.
        case sent
        case rejected, expired
        /// Approved but could not be sent (the key was revoked or frozen meanwhile, the venue could not be reached).
        case failed
    }

    public var id: String
    public var ownerID: String
    public var keyID: String
    public var rootID: String
    public var venue: String
    public var method: String
    public var path: String
    public var query: String
    public var body: Data
    public var contentType: String?
    public var clientOrderID: String
    public var notional: USD
    public var reservationID: String?
    public var status: Status
    public var createdAt: Int64
    public var expiresAt: Int64
    public var decidedBy: String?
    public var decidedAt: Int64?
    public var answerStatus: Int?
    public var answerBody: Data?
    public var reason: String?

    public init(
        id: String, ownerID: String, keyID: String, rootID: String, venue: String, method: String, path: String, query: String,
        body: Data, contentType: String?, clientOrderID: String, notional: USD, reservationID: String?, createdAt: Int64,
        expiresAt: Int64
    ) {
        self.id = id
        self.ownerID = ownerID
        self.keyID = keyID
        self.rootID = rootID
        self.venue = venue
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.contentType = contentType
        self.clientOrderID = clientOrderID
        self.notional = notional
        self.reservationID = reservationID
        self.status = .pending
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

public struct ApprovalRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Keeps the approval in the caller's transaction; false when the same open order (owner, venue, client
    /// order id) already waits, which then stands for both.
    public func insert(_ a: ApprovalRecord, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw(
            """
            INSERT INTO approvals (id, owner_id, key_id, root_id, venue, method, path, query, body, content_type, client_order_id,
                notional_micros, reservation_id, status, created_at, expires_at)
            VALUES (\(bind: a.id), \(bind: a.ownerID), \(bind: a.keyID), \(bind: a.rootID), \(bind: a.venue), \(bind: a.method),
                \(bind: a.path), \(bind: a.query), \(bind: a.body), \(bind: a.contentType), \(bind: a.clientOrderID),
                \(bind: a.notional.micros), \(bind: a.reservationID), 'pending', \(bind: a.createdAt), \(bind: a.expiresAt))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).first() != nil
    }

    /// The open approval of the same order.
    public func open(ownerID: String, venue: String, clientOrderID: String) async throws -> ApprovalRecord? {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT * FROM approvals WHERE owner_id = \(bind: ownerID) AND venue = \(bind: venue)
                    AND client_order_id = \(bind: clientOrderID) AND status IN ('pending', 'sending')
                """
            ).first().map(Self.decode)
        }
    }

    public func find(id: String) async throws -> ApprovalRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM approvals WHERE id = \(bind: id)").first().map(Self.decode)
        }
    }

    public func list(ownerID: String?, limit: Int) async throws -> [ApprovalRecord] {
        try await database.withConnection { db in
            let filter: SQLQueryString = ownerID.map { "WHERE owner_id = \(bind: $0)" } ?? ""
            return try await db.raw("SELECT * FROM approvals " + filter + " ORDER BY created_at DESC, id LIMIT \(bind: limit)").all()
                .map(Self.decode)
        }
    }

    /// Moves a pending approval to `status` in the caller's transaction, if it is still pending and (for
    /// anything but expiry) not yet expired at `now`; false when another decision came first.
    public func decide(id: String, to status: ApprovalRecord.Status, by actor: String?, now: Int64, on db: any SQLDatabase) async throws
        -> Bool
    {
        let unexpired: SQLQueryString = status == .expired ? "expires_at <= \(bind: now)" : "expires_at > \(bind: now)"
        return try await db.raw(
            """
            UPDATE approvals SET status = \(bind: status.rawValue), decided_by = \(bind: actor), decided_at = \(bind: now)
            WHERE id = \(bind: id) AND status = 'pending' AND
            """ + " " + unexpired + " RETURNING id"
        ).first() != nil
    }

    /// Records what became of an approved order.
    public func finish(id: String, status: ApprovalRecord.Status, answerStatus: Int?, answerBody: Data?, reason: String?) async throws {
        try await database.transaction { db in
            try await db.raw(
                """
                UPDATE approvals SET status = \(bind: status.rawValue), answer_status = \(bind: answerStatus),
                    answer_body = \(bind: answerBody), reason = \(bind: reason)
                WHERE id = \(bind: id)
                """
            ).run()
        }
    }

    /// Pending approvals past their validity.
    public func expired(now: Int64) async throws -> [ApprovalRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM approvals WHERE status = 'pending' AND expires_at <= \(bind: now) LIMIT 100").all().map(
                Self.decode)
        }
    }

    static func decode(_ row: any SQLRow) throws -> ApprovalRecord {
        var a = ApprovalRecord(
            id: try row.decode(column: "id", as: String.self), ownerID: try row.decode(column: "owner_id", as: String.self),
            keyID: try row.decode(column: "key_id", as: String.self), rootID: try row.decode(column: "root_id", as: String.self),
            venue: try row.decode(column: "venue", as: String.self), method: try row.decode(column: "method", as: String.self),
            path: try row.decode(column: "path", as: String.self), query: try row.decode(column: "query", as: String.self),
            body: try row.decode(column: "body", as: Data.self), contentType: try row.decode(column: "content_type", as: String?.self),
            clientOrderID: try row.decode(column: "client_order_id", as: String.self),
            notional: USD(micros: try row.decode(column: "notional_micros", as: Int64.self)) ?? .zero,
            reservationID: try row.decode(column: "reservation_id", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self), expiresAt: try row.decode(column: "expires_at", as: Int64.self)
        )
        a.status = ApprovalRecord.Status(rawValue: try row.decode(column: "status", as: String.self)) ?? .failed
        a.decidedBy = try row.decode(column: "decided_by", as: String?.self)
        a.decidedAt = try row.decode(column: "decided_at", as: Int64?.self)
        a.answerStatus = try row.decode(column: "answer_status", as: Int?.self)
        a.answerBody = try row.decode(column: "answer_body", as: Data?.self)
        a.reason = try row.decode(column: "reason", as: String?.self)
        return a
    }
}
