import Foundation
import SQLKit

/// One alarm in the outbox: what happened, how grave, and a summary and fields safe to send anywhere.
public struct AlarmRecord: Sendable, Equatable {
    public var id: String
    /// The audit row that raised it (nil for an alarm raised outside the log, such as a test message).
    public var auditSeq: Int64?
    public var event: String
    public var severity: String
    public var ownerID: String?
    public var summary: String
    public var detail: [String: String]
    /// Alarms that fire once per day and key carry the same key: the second is not kept.
    public var onceKey: String?
    public var createdAt: Int64

    public init(
        id: String, auditSeq: Int64?, event: String, severity: String, ownerID: String?, summary: String,
        detail: [String: String], onceKey: String?, createdAt: Int64
    ) {
        self.id = id
        self.auditSeq = auditSeq
        self.event = event
        self.severity = severity
        self.ownerID = ownerID
        self.summary = summary
        self.detail = detail
        self.onceKey = onceKey
        self.createdAt = createdAt
    }
}

/// One alarm's delivery to one channel.
public struct AlarmDelivery: Sendable, Equatable {
    public enum State: String, Sendable { case pending, delivered, failed }
    public var alarmID: String
    public var channel: String
    public var state: State
    public var attempts: Int
    public var nextAttemptAt: Int64
    public var lastError: String?
    public var deliveredAt: Int64?
}

/// The alarms' outbox: alarms are raised from audit rows (`fanOut`), each delivered to its channels by
/// whichever server leases the delivery first, retried until it is delivered or given up.
public struct AlarmRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// The audit rows after the cursor that name an alarm (`"alarm":` in their detail), up to `limit` rows
    /// of the log, and the sequence numbers the cursor moves from and to. A read: the log is scanned with no
    /// write lock held (the gateway's commits go on), and `moveCursor` settles who raised what.
    public func rowsToRaise(limit: Int) async throws -> (rows: [AuditRecord], through: Int64, from: Int64) {
        try await database.withConnection { db in try await rowsToRaise(limit: limit, on: db) }
    }

    func rowsToRaise(limit: Int, on db: any SQLDatabase) async throws -> (rows: [AuditRecord], through: Int64, from: Int64) {
        guard let cursor = try await db.raw("SELECT seq FROM alarm_cursor WHERE id = 1").first(decodingColumn: "seq", as: Int64.self)
        else { throw StoreError.unavailable("the alarm cursor row is missing") }
        let last = cursor + Int64(limit)
        let through =
            try await db.raw("SELECT MAX(seq) AS top FROM audit WHERE seq > \(bind: cursor) AND seq <= \(bind: last)")
            .first(decodingColumn: "top", as: Int64?.self) ?? nil
        guard let through else { return ([], cursor, cursor) }
        let rows = try await db.raw(
            """
            SELECT * FROM audit WHERE seq > \(bind: cursor) AND seq <= \(bind: through) AND detail LIKE '%"alarm":"%' ORDER BY seq
            """
        ).all().map(AuditRepository.decode)
        return (rows, through, cursor)
    }

    /// Moves the cursor from `from` to `seq` in the caller's transaction; false when another server moved it
    /// first (it raised those rows' alarms, or is raising them).
    public func moveCursor(from: Int64, to seq: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("UPDATE alarm_cursor SET seq = \(bind: seq) WHERE id = 1 AND seq = \(bind: from) RETURNING seq").first() != nil
    }

    /// Keeps the alarm and one pending delivery per channel; false when an alarm with its `onceKey` exists.
    public func insert(_ alarm: AlarmRecord, channels: [String], on db: any SQLDatabase) async throws -> Bool {
        let detail = String(decoding: try JSONEncoder.sorted.encode(alarm.detail), as: UTF8.self)
        let kept = try await db.raw(
            """
            INSERT INTO alarms (id, audit_seq, event, severity, owner_id, summary, detail, once_key, created_at)
            VALUES (\(bind: alarm.id), \(bind: alarm.auditSeq), \(bind: alarm.event), \(bind: alarm.severity), \(bind: alarm.ownerID),
                \(bind: alarm.summary), \(bind: detail), \(bind: alarm.onceKey), \(bind: alarm.createdAt))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).first()
        guard kept != nil else { return false }
        for channel in channels {
            try await db.raw(
                """
                INSERT INTO alarm_deliveries (alarm_id, channel, state, attempts, next_attempt_at)
                VALUES (\(bind: alarm.id), \(bind: channel), 'pending', 0, \(bind: alarm.createdAt))
                """
            ).run()
        }
        return true
    }

    /// One channel's pending deliveries due at `now` and not leased by another server, oldest first, with
    /// their alarms (asked channel by channel, so one channel's backlog never hides another's).
    public func due(channel: String, now: Int64, limit: Int) async throws -> [(AlarmDelivery, AlarmRecord)] {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT d.alarm_id, d.channel, d.state, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at, a.*
                FROM alarm_deliveries d JOIN alarms a ON a.id = d.alarm_id
                WHERE d.channel = \(bind: channel) AND d.state = 'pending' AND d.next_attempt_at <= \(bind: now)
                    AND d.leased_until <= \(bind: now)
                ORDER BY d.next_attempt_at, a.created_at LIMIT \(bind: limit)
                """
            ).all().map { (try Self.decodeDelivery($0), try Self.decodeAlarm($0)) }
        }
    }

    /// Marks failed the pending deliveries to channels no longer configured.
    public func abandon(keeping channels: [String]) async throws {
        try await database.transaction { db in
            let kept = SQLList(channels.map { SQLBind($0) })
            let filter: SQLQueryString = channels.isEmpty ? "" : " AND channel NOT IN (\(kept))"
            try await db.raw(
                "UPDATE alarm_deliveries SET state = 'failed', last_error = 'the channel is no longer configured', leased_until = 0 "
                    + "WHERE state = 'pending'" + filter
            ).run()
        }
    }

    /// Takes the delivery for this server until `until`; false when another server took it first or it is no
    /// longer due. The attempt is counted now, so a server that dies while sending still counts it.
    public func lease(alarmID: String, channel: String, now: Int64, until: Int64) async throws -> Bool {
        try await database.transaction { db in
            try await db.raw(
                """
                UPDATE alarm_deliveries SET leased_until = \(bind: until), attempts = attempts + 1
                WHERE alarm_id = \(bind: alarmID) AND channel = \(bind: channel) AND state = 'pending'
                    AND leased_until <= \(bind: now) AND next_attempt_at <= \(bind: now)
                RETURNING alarm_id
                """
            ).first() != nil
        }
    }

    /// Records an attempt's result: delivered, retried at `retryAt`, or failed for good when `retryAt` is nil.
    public func finish(alarmID: String, channel: String, delivered: Bool, error: String?, retryAt: Int64?, now: Int64) async throws {
        let state: AlarmDelivery.State = delivered ? .delivered : retryAt == nil ? .failed : .pending
        try await database.transaction { db in
            try await db.raw(
                """
                UPDATE alarm_deliveries SET state = \(bind: state.rawValue), leased_until = 0,
                    next_attempt_at = \(bind: retryAt ?? now), last_error = \(bind: error),
                    delivered_at = \(bind: delivered ? now : nil)
                WHERE alarm_id = \(bind: alarmID) AND channel = \(bind: channel)
                """
            ).run()
        }
    }

    /// The newest alarms with their deliveries, newest first.
    public func recent(limit: Int) async throws -> [(AlarmRecord, [AlarmDelivery])] {
        try await database.withConnection { db in
            let alarms = try await db.raw("SELECT * FROM alarms ORDER BY created_at DESC, id DESC LIMIT \(bind: limit)").all()
                .map(Self.decodeAlarm)
            guard !alarms.isEmpty else { return [] }
            var byAlarm: [String: [AlarmDelivery]] = [:]
            let ids = SQLList(alarms.map { SQLBind($0.id) })
            for row in try await db.raw("SELECT * FROM alarm_deliveries WHERE alarm_id IN (\(ids)) ORDER BY channel").all() {
                let delivery = try Self.decodeDelivery(row)
                byAlarm[delivery.alarmID, default: []].append(delivery)
            }
            return alarms.map { ($0, byAlarm[$0.id] ?? []) }
        }
    }

    static func decodeAlarm(_ row: any SQLRow) throws -> AlarmRecord {
        let detail = try row.decode(column: "detail", as: String.self)
        return AlarmRecord(
            id: try row.decode(column: "id", as: String.self), auditSeq: try row.decode(column: "audit_seq", as: Int64?.self),
            event: try row.decode(column: "event", as: String.self), severity: try row.decode(column: "severity", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String?.self), summary: try row.decode(column: "summary", as: String.self),
            detail: (try? JSONDecoder().decode([String: String].self, from: Data(detail.utf8))) ?? [:],
            onceKey: try row.decode(column: "once_key", as: String?.self), createdAt: try row.decode(column: "created_at", as: Int64.self))
    }

    static func decodeDelivery(_ row: any SQLRow) throws -> AlarmDelivery {
        AlarmDelivery(
            alarmID: try row.decode(column: "alarm_id", as: String.self), channel: try row.decode(column: "channel", as: String.self),
            state: AlarmDelivery.State(rawValue: try row.decode(column: "state", as: String.self)) ?? .failed,
            attempts: try row.decode(column: "attempts", as: Int.self),
            nextAttemptAt: try row.decode(column: "next_attempt_at", as: Int64.self),
            lastError: try row.decode(column: "last_error", as: String?.self),
            deliveredAt: try row.decode(column: "delivered_at", as: Int64?.self))
    }
}

extension JSONEncoder {
    /// Keys in order: the same detail always encodes to the same text.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
