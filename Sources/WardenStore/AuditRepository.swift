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

    public init(
        seq: Int64, at: Int64, actorID: String?, ownerID: String?, action: String, target: String?,
        outcome: String, detail: String?, mac: [UInt8]
    ) {
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

    public init(seq: Int64, mac: [UInt8], headMAC: [UInt8]) {
        self.seq = seq
        self.mac = mac
        self.headMAC = headMAC
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
                    SQLBind(r.target), SQLBind(r.outcome), SQLBind(r.detail), SQLBind(Data(r.mac)))
            }
            try await insert.run()
        }
        try await db.raw(
            """
            INSERT INTO audit_head (id, seq, mac, head_mac)
            VALUES (1, \(bind: head.seq), \(bind: Data(head.mac)), \(bind: Data(head.headMAC)))
            ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, mac = excluded.mac, head_mac = excluded.head_mac
            """
        ).run()
    }

    static let rowsPerInsert = 256
    static let columns = ["seq", "at", "actor_id", "owner_id", "action", "target", "outcome", "detail", "mac"]
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
            .text(r.outcome), text(r.detail), .blob(ByteBuffer(bytes: r.mac)),
        ]
    }

    /// Rows in chain order, `limit` at a time after `afterSeq` (for verification).
    public func rows(after afterSeq: Int64, limit: Int) async throws -> [AuditRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM audit WHERE seq > \(bind: afterSeq) ORDER BY seq LIMIT \(bind: limit)")
                .all().map(Self.decode)
        }
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
            mac: Array(try row.decode(column: "mac", as: Data.self)))
    }

    static func decodeHead(_ row: any SQLRow) throws -> AuditHead {
        AuditHead(
            seq: try row.decode(column: "seq", as: Int64.self),
            mac: Array(try row.decode(column: "mac", as: Data.self)),
            headMAC: Array(try row.decode(column: "head_mac", as: Data.self)))
    }
}
