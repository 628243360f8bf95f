import Foundation
import NIOCore
import SQLKit
import SQLiteKit

/// One audit row. `mac` chains it to the row before; see `AuditLog` in WardenCore.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var seq: Int64
    public var at: Int64
    public var actorID: String?
    public var ownerID: String?
    public var action: String
    public var target: String?
    public var outcome: String
    public var detail: String?
    public var mac: [UInt8]
    /// The key epoch (the vault's KEK version when the row was made) whose key made `mac`.
    public var epoch: Int

    public init(
        seq: Int64, at: Int64, actorID: String?, ownerID: String?, action: String, target: String?,
        outcome: String, detail: String?, mac: [UInt8], epoch: Int
    ) {
        self.epoch = epoch
        self.seq = seq
        self.at = at
        self.actorID = actorID
        self.ownerID = ownerID
        self.action = action
        self.target = target
        self.outcome = outcome
        self.detail = detail
        self.mac = mac
    }
}

/// The chain's head: the last row's number and MAC, itself MACed so the tail cannot be cut off unseen.
public struct AuditHead: Sendable, Equatable {
    public var seq: Int64
    public var mac: [UInt8]
    public var headMAC: [UInt8]
    /// The newest key epoch: an append under an older one is refused (a server still on a rotated-out key).
    public var epoch: Int

    public init(seq: Int64, mac: [UInt8], headMAC: [UInt8], epoch: Int) {
        self.epoch = epoch
        self.seq = seq
        self.mac = mac
        self.headMAC = headMAC
    }
}

/// What pruning left in place of the rows it removed: the last removed row's number, MAC and epoch (the first
/// kept row chains to that MAC), how many rows all prunes removed, and a MAC over all of it.
public struct AuditCheckpoint: Sendable, Equatable, Codable {
    public var seq: Int64
    public var mac: [UInt8]
    public var epoch: Int
    public var prunedRows: Int64
    public var lastPrunedAt: Int64
    public var prunes: Int64
    /// The epoch whose key made `checkpointMAC`.
    public var signedEpoch: Int
    public var checkpointMAC: [UInt8]

    public init(
        seq: Int64, mac: [UInt8], epoch: Int, prunedRows: Int64, lastPrunedAt: Int64, prunes: Int64, signedEpoch: Int,
        checkpointMAC: [UInt8]
    ) {
        self.seq = seq
        self.mac = mac
        self.epoch = epoch
        self.prunedRows = prunedRows
        self.lastPrunedAt = lastPrunedAt
        self.prunes = prunes
        self.signedEpoch = signedEpoch
        self.checkpointMAC = checkpointMAC
    }
}

public struct AuditRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Reads the head inside a transaction after taking the chain's lock, so appends serialise: an
    /// advisory lock on PostgreSQL (it also covers the very first append, when there is no head row
    /// to lock), the write lock of BEGIN IMMEDIATE on SQLite.
    public func lockHead(on db: any SQLDatabase, dialect: SQLDialectKind) async throws -> AuditHead? {
        if dialect == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(727138)").run() }
        return try await db.raw("SELECT * FROM audit_head WHERE id = 1").first().map(Self.decodeHead)
    }

    public func head() async throws -> AuditHead? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM audit_head WHERE id = 1").first().map(Self.decodeHead)
        }
    }

    /// Inserts rows (one multi-row statement per 256) and moves the head past them.
    public func append(_ records: [AuditRecord], head: AuditHead, on db: any SQLDatabase) async throws {
        for start in stride(from: 0, to: records.count, by: Self.rowsPerInsert) {
            let chunk = records[start..<min(start + Self.rowsPerInsert, records.count)]
            if let writer = db as? WriterSession {
                try await writer.run(Self.insertSQL(rows: chunk.count), chunk.flatMap(Self.sqliteValues))
                continue
            }
            var insert = db.insert(into: "audit").columns(Self.columns)
            for r in chunk {
                insert = insert.values(
                    SQLBind(r.seq), SQLBind(r.at), SQLBind(r.actorID), SQLBind(r.ownerID), SQLBind(r.action),
                    SQLBind(r.target), SQLBind(r.outcome), SQLBind(r.detail), SQLBind(Data(r.mac)), SQLBind(r.epoch))
            }
            try await insert.run()
        }
        try await db.raw(
            """
            INSERT INTO audit_head (id, seq, mac, head_mac, epoch)
            VALUES (1, \(bind: head.seq), \(bind: Data(head.mac)), \(bind: Data(head.headMAC)), \(bind: head.epoch))
            ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, head_mac = excluded.head_mac, epoch = excluded.epoch
            """
        ).run()
    }

    static let rowsPerInsert = 256
    static let columns = ["seq", "at", "actor_id", "owner_id", "action", "target", "outcome", "detail", "mac", "epoch"]
    static let fullInsertSQL = makeInsertSQL(rows: rowsPerInsert)

    /// The statement for `rows` rows; the full chunk's is written once. On SQLite the values are bound directly:
    /// the gateway writes thousands of rows a second, and building them as SQLKit expressions cost more than
    /// SQLite's own work on them.
    static func insertSQL(rows: Int) -> String { rows == rowsPerInsert ? fullInsertSQL : makeInsertSQL(rows: rows) }

    static func makeInsertSQL(rows: Int) -> String {
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ",") + ")"
        return "INSERT INTO audit (\(columns.joined(separator: ", "))) VALUES " + Array(repeating: row, count: rows).joined(separator: ",")
    }

    /// One row's values, in `columns` order.
    static func sqliteValues(_ r: AuditRecord) -> [SQLiteData] {
        let text = { (value: String?) in value.map(SQLiteData.text) ?? .null }
        return [
            .integer(Int(r.seq)), .integer(Int(r.at)), text(r.actorID), text(r.ownerID), .text(r.action), text(r.target),
            .text(r.outcome), text(r.detail), .blob(ByteBuffer(bytes: r.mac)), .integer(r.epoch),
        ]
    }

    /// Rows in chain order, `limit` at a time after `afterSeq` (for verification).
    public func rows(after afterSeq: Int64, limit: Int) async throws -> [AuditRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM audit WHERE seq > \(bind: afterSeq) ORDER BY seq LIMIT \(bind: limit)")
                .all().map(Self.decode)
        }
    }

    /// Rows in chain order made from `since` up to `until` (ms), `limit` at a time after `afterSeq` (for export).
    public func rows(after afterSeq: Int64, since: Int64?, until: Int64?, limit: Int) async throws -> [AuditRecord] {
        try await database.withConnection { db in
            var query: SQLQueryString = "SELECT * FROM audit WHERE seq > \(bind: afterSeq)"
            if let since { query = query + " AND at >= \(bind: since)" }
            if let until { query = query + " AND at < \(bind: until)" }
            return try await db.raw(query + " ORDER BY seq LIMIT \(bind: limit)").all().map(Self.decode)
        }
    }

    /// The row `seq`, if kept.
    public func row(seq: Int64) async throws -> AuditRecord? {
        try await database.withConnection { db in try await Self.row(seq: seq, on: db) }
    }

    static func row(seq: Int64, on db: any SQLDatabase) async throws -> AuditRecord? {
        try await db.raw("SELECT * FROM audit WHERE seq = \(bind: seq)").first().map(Self.decode)
    }

    public func checkpoint() async throws -> AuditCheckpoint? {
        try await database.withConnection { db in try await Self.checkpoint(on: db) }
    }

    public static func checkpoint(on db: any SQLDatabase) async throws -> AuditCheckpoint? {
        guard let row = try await db.raw("SELECT * FROM audit_checkpoint WHERE id = 1").first() else { return nil }
        return AuditCheckpoint(
            seq: try row.decode(column: "seq", as: Int64.self), mac: Array(try row.decode(column: "mac", as: Data.self)),
            epoch: try row.decode(column: "epoch", as: Int.self), prunedRows: try row.decode(column: "pruned_rows", as: Int64.self),
            lastPrunedAt: try row.decode(column: "last_pruned_at", as: Int64.self),
            prunes: try row.decode(column: "prunes", as: Int64.self),
            signedEpoch: try row.decode(column: "signed_epoch", as: Int.self),
            checkpointMAC: Array(try row.decode(column: "checkpoint_mac", as: Data.self)))
    }

    /// The last row a prune of rows made before `cutoff` may remove: the one before the first row made at or after
    /// it (rows are kept from there on even if a later one carries an earlier time). Nil when there is nothing to prune.
    public func pruneBoundary(before cutoff: Int64, on db: any SQLDatabase) async throws -> AuditRecord? {
        let firstKept = try await db.raw("SELECT MIN(seq) AS seq FROM audit WHERE at >= \(bind: cutoff)").first()
            .flatMap { try $0.decode(column: "seq", as: Int64?.self) }
        let last: SQLQueryString =
            firstKept.map { "SELECT * FROM audit WHERE seq < \(bind: $0) ORDER BY seq DESC LIMIT 1" }
            ?? "SELECT * FROM audit ORDER BY seq DESC LIMIT 1"
        return try await db.raw(last).first().map(Self.decode)
    }

    /// Deletes every row up to `checkpoint.seq` and records the checkpoint, in the caller's transaction.
    public func prune(through checkpoint: AuditCheckpoint, on db: any SQLDatabase) async throws -> Int64 {
        let count =
            try await db.raw("SELECT COUNT(*) AS n FROM audit WHERE seq <= \(bind: checkpoint.seq)").first()
            .map { try $0.decode(column: "n", as: Int64.self) } ?? 0
        try await db.raw("DELETE FROM audit WHERE seq <= \(bind: checkpoint.seq)").run()
        try await Self.save(checkpoint, on: db)
        return count
    }

    /// Rows numbered at or below `seq`, or not numbered at all: none may be, outside the chain.
    public func count(atOrBelow seq: Int64) async throws -> Int64 {
        try await database.withConnection { db in
            try await db.raw("SELECT COUNT(*) AS n FROM audit WHERE seq <= \(bind: seq) OR seq IS NULL").first().map {
                try $0.decode(column: "n", as: Int64.self)
            } ?? 0
        }
    }

    /// Records `checkpoint` in the caller's transaction, replacing the one there.
    public static func save(_ checkpoint: AuditCheckpoint, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO audit_checkpoint (id, seq, mac, epoch, pruned_rows, last_pruned_at, prunes, signed_epoch, checkpoint_mac)
            VALUES (1, \(bind: checkpoint.seq), \(bind: Data(checkpoint.mac)), \(bind: checkpoint.epoch), \(bind: checkpoint.prunedRows),
                \(bind: checkpoint.lastPrunedAt), \(bind: checkpoint.prunes), \(bind: checkpoint.signedEpoch), \(bind: Data(checkpoint.checkpointMAC)))
            ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, epoch = excluded.epoch,
                pruned_rows = excluded.pruned_rows, last_pruned_at = excluded.last_pruned_at, prunes = excluded.prunes,
                signed_epoch = excluded.signed_epoch, checkpoint_mac = excluded.checkpoint_mac
            """
        ).run()
    }

    /// Newest first. `visibleTo` nil means every row (admins). `request` keeps the rows of one gateway
    /// call, by the id in its detail. Request ids are hex digits and `-`, neither LIKE wildcards nor JSON
    /// escapes, so the pattern matches that detail field alone; any other text matches no row.
    public func page(visibleTo userID: String?, before: Int64?, action: String?, request: String?, limit: Int) async throws -> [AuditRecord]
    {
        if let request, !Self.isRequestID(request) { return [] }
        return try await database.withConnection { db in
            var query: SQLQueryString = "SELECT * FROM audit WHERE 1 = 1"
            // A user also sees calls others made on credentials they shared. Ids and the detail's JSON escaping
            // keep the pattern to that field: a `"` inside any value is written `\"`.
            if let userID {
                let shared: SQLQueryString =
                    Self.isRequestID(userID)
                    ? " OR (action LIKE 'gateway.%' AND detail LIKE \(bind: "%\"credential_owner\":\"\(userID)\"%"))" : ""
                query = query + " AND (owner_id = \(bind: userID) OR actor_id = \(bind: userID)\(shared))"
            }
            if let before { query = query + " AND seq < \(bind: before)" }
            if let action { query = query + " AND action = \(bind: action)" }
            if let request { query = query + " AND detail LIKE \(bind: "%\"request\":\"\(request)\"%")" }
            query = query + " ORDER BY seq DESC LIMIT \(bind: limit)"
            return try await db.raw(query).all().map(Self.decode)
        }
    }

    /// What a request id may hold: 1–64 lowercase hex digits and dashes.
    public static func isRequestID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || $0 == 45 }
    }

    static func decode(_ row: any SQLRow) throws -> AuditRecord {
        AuditRecord(
            seq: try row.decode(column: "seq", as: Int64.self),
            at: try row.decode(column: "at", as: Int64.self),
            actorID: try row.decode(column: "actor_id", as: String?.self),
            ownerID: try row.decode(column: "owner_id", as: String?.self),
            action: try row.decode(column: "action", as: String.self),
            target: try row.decode(column: "target", as: String?.self),
            outcome: try row.decode(column: "outcome", as: String.self),
            detail: try row.decode(column: "detail", as: String?.self),
            mac: Array(try row.decode(column: "mac", as: Data.self)),
            epoch: try row.decode(column: "epoch", as: Int.self))
    }

    static func decodeHead(_ row: any SQLRow) throws -> AuditHead {
        AuditHead(
            seq: try row.decode(column: "seq", as: Int64.self),
            mac: Array(try row.decode(column: "mac", as: Data.self)),
            headMAC: Array(try row.decode(column: "head_mac", as: Data.self)),
            epoch: try row.decode(column: "epoch", as: Int.self))
    }
}
