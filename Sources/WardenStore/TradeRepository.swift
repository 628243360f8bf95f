import Foundation
import SQLKit

/// The outcome of asking to reserve an order's notional against the owner's daily cap.
public enum TradeReservation: Sendable, Equatable {
    /// Reserved; the order row to confirm or release.
    case reserved(orderID: String)
    /// The same client order id was reserved in the last 24 hours and not refused: nothing more is reserved.
    case duplicate
    /// The order would take the day's volume past the cap; `used` is what is already reserved.
    case overCap(used: Double)
}

/// Orders' notionals per owner, UTC day and mode (live or paper). A reservation and its check against the
/// cap run in one transaction that holds the owner's lock (a row lock on PostgreSQL, the writer lock on
/// SQLite), so concurrent orders, from one process or many, never exceed the cap.
public struct TradeRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    static let retryWindowMillis: Int64 = 24 * 3600 * 1000

    public func reserve(ownerID: String, venue: String, clientOrderID: String, mode: String, day: String, amount: Double, cap: Double,
                        now: Int64 = Clock.nowMillis()) async throws -> TradeReservation {
        try await database.transaction { db in
            try await reserve(ownerID: ownerID, venue: venue, clientOrderID: clientOrderID, mode: mode, day: day, amount: amount, cap: cap,
                              now: now, on: db)
        }
    }

    /// The same inside the caller's transaction (a live order's, which also holds its audit row).
    public func reserve(ownerID: String, venue: String, clientOrderID: String, mode: String, day: String, amount: Double, cap: Double,
                        now: Int64 = Clock.nowMillis(), on db: any SQLDatabase) async throws -> TradeReservation {
        try await db.raw("""
            INSERT INTO trade_days (owner_id, day, mode) VALUES (\(bind: ownerID), \(bind: day), \(bind: mode))
            ON CONFLICT (owner_id, day, mode) DO NOTHING
            """).run()
        // Locks the owner's day row until commit on PostgreSQL; SQLite already holds the writer lock.
        let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE" : ""
        let used = try await db.raw("""
            SELECT used_usd FROM trade_days WHERE owner_id = \(bind: ownerID) AND day = \(bind: day) AND mode = \(bind: mode)\(lock)
            """).first(decodingColumn: "used_usd", as: Double.self) ?? 0
        let existing = try await db.raw("""
            SELECT id, status, created_at FROM trade_orders
            WHERE owner_id = \(bind: ownerID) AND venue = \(bind: venue) AND client_order_id = \(bind: clientOrderID)
            """).first()
        if let existing, try existing.decode(column: "status", as: String.self) != "rejected",
           try existing.decode(column: "created_at", as: Int64.self) > now - Self.retryWindowMillis {
            return .duplicate
        }
        guard used + amount <= cap + 1e-9 else { return .overCap(used: used) }
        try await db.raw("""
            UPDATE trade_days SET used_usd = used_usd + \(bind: amount)
            WHERE owner_id = \(bind: ownerID) AND day = \(bind: day) AND mode = \(bind: mode)
            """).run()
        let id = try existing?.decode(column: "id", as: String.self) ?? UUID().uuidString.lowercased()
        if existing != nil {
            try await db.raw("""
                UPDATE trade_orders SET mode = \(bind: mode), day = \(bind: day), notional_usd = \(bind: amount),
                    status = 'reserved', created_at = \(bind: now) WHERE id = \(bind: id)
                """).run()
        } else {
            try await db.raw("""
                INSERT INTO trade_orders (id, owner_id, venue, client_order_id, mode, day, notional_usd, status, created_at)
                VALUES (\(bind: id), \(bind: ownerID), \(bind: venue), \(bind: clientOrderID), \(bind: mode), \(bind: day),
                    \(bind: amount), 'reserved', \(bind: now))
                """).run()
        }
        return .reserved(orderID: id)
    }

    /// The venue refused the order (or it was never sent): its notional goes back to the day.
    public func release(orderID: String) async throws {
        try await database.transaction { db in
            let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE" : ""
            guard let row = try await db.raw("""
                SELECT owner_id, day, mode, notional_usd FROM trade_orders WHERE id = \(bind: orderID) AND status = 'reserved'\(lock)
                """).first() else { return }
            let owner = try row.decode(column: "owner_id", as: String.self)
            let day = try row.decode(column: "day", as: String.self)
            let mode = try row.decode(column: "mode", as: String.self)
            let amount = try row.decode(column: "notional_usd", as: Double.self)
            try await db.raw("UPDATE trade_orders SET status = 'rejected' WHERE id = \(bind: orderID)").run()
            try await db.raw("""
                UPDATE trade_days SET used_usd = CASE WHEN used_usd > \(bind: amount) THEN used_usd - \(bind: amount) ELSE 0 END
                WHERE owner_id = \(bind: owner) AND day = \(bind: day) AND mode = \(bind: mode)
                """).run()
        }
    }

    /// The day's reserved notional (orders not refused), by mode.
    public func used(ownerID: String, day: String) async throws -> [String: Double] {
        try await database.withConnection { db in
            var out: [String: Double] = [:]
            for row in try await db.raw("SELECT mode, used_usd FROM trade_days WHERE owner_id = \(bind: ownerID) AND day = \(bind: day)").all() {
                out[try row.decode(column: "mode", as: String.self)] = try row.decode(column: "used_usd", as: Double.self)
            }
            return out
        }
    }
}
