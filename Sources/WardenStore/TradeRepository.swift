import Foundation
import SQLKit

/// What an order is counted against: the owner's day, and for an order on a shared credential, the
/// credential owner's day as well, each under its own cap.
public struct TradeLimit: Sendable, Equatable {
    public let ownerID: String
    public let dailyCap: USD

    public init(ownerID: String, dailyCap: USD) {
        self.ownerID = ownerID
        self.dailyCap = dailyCap
    }
}

/// The outcome of asking to reserve an order's notional against the daily caps.
public enum TradeReservation: Sendable, Equatable {
    /// Reserved; the reservation to release if the venue refuses the order.
    case reserved(id: String)
    /// The very same order (same fingerprint and mode) holds a reservation from the last 24 hours, at a
    /// venue that can never execute it twice: nothing more is reserved.
    case sameOrder
    /// The order would take `ownerID`'s day past its cap; `used` is what that day already holds.
    case overCap(ownerID: String, used: USD)
}

/// Whether an order goes to the venue or to the simulator; each mode has its own daily volume.
public enum TradeMode: String, Sendable {
    case live, paper

    /// The ledger this mode's volume is counted in.
    public var ledger: Ledger { self == .live ? .liveOrders : .paperOrders }
}

/// Orders' notionals per owner, UTC day and mode (live or paper), in exact micro-dollars, held on the owners'
/// days by `DayLedger` (DayLedger.swift), so concurrent orders, from one process or many, never take a day past its cap.
/// Every order reserves its own notional: client order ids are not identities (a venue may keep them unique
/// only among open orders), so only an order `fingerprint`ed by a venue that deduplicates by content can be
/// recognised as a retry.
public struct TradeRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    static let retryWindowMillis: Int64 = 24 * 3600 * 1000

    public struct Order: Sendable {
        public let venue: String
        public let clientOrderID: String
        /// What the venue executes, hashed, for venues that deduplicate orders by content; nil elsewhere.
        public let fingerprint: String?
        public let mode: TradeMode
        public let day: String
        public let notional: USD

        public init(venue: String, clientOrderID: String, fingerprint: String?, mode: TradeMode, day: String, notional: USD) {
            self.venue = venue
            self.clientOrderID = clientOrderID
            self.fingerprint = fingerprint
            self.mode = mode
            self.day = day
            self.notional = notional
        }
    }

    public func reserve(_ order: Order, limits: [TradeLimit], now: Int64 = Clock.nowMillis()) async throws -> TradeReservation {
        try await database.transaction { db in try await reserve(order, limits: limits, now: now, on: db) }
    }

    /// The same inside the caller's transaction (a live order's, which also holds its audit row).
    /// `limits` holds the order's owner first; a second entry is the shared credential's owner.
    public func reserve(
        _ order: Order, limits: [TradeLimit], now: Int64 = Clock.nowMillis(),
        on db: any SQLDatabase
    ) async throws -> TradeReservation {
        guard !limits.isEmpty, limits.count <= 2 else { throw StoreError.invalidAmount("an order counts against one or two owners' days") }
        guard order.notional > .zero else { throw StoreError.invalidAmount("an order's reservation is never zero") }
        if let fingerprint = order.fingerprint {
            let same = try await db.raw(
                """
                SELECT id FROM order_reservations
                WHERE owner_id = \(bind: limits[0].ownerID) AND venue = \(bind: order.venue) AND fingerprint = \(bind: fingerprint)
                    AND mode = \(bind: order.mode.rawValue) AND status = 'reserved' AND created_at > \(bind: now - Self.retryWindowMillis)
                """
            ).first(decodingColumn: "id", as: String.self)
            if let same {
                // The retry may be the copy the venue takes: from now on the reservation is never released.
                try await db.raw("UPDATE order_reservations SET retries = retries + 1 WHERE id = \(bind: same)").run()
                return .sameOrder
            }
        }
        let ledger = DayLedger(dialect: database.dialect)
        let accounts = limits.map { LedgerAccount(order.mode.ledger, holder: $0.ownerID, cap: $0.dailyCap) }
        if case .overCap(let owner, let used) = try await ledger.hold(order.notional, on: accounts, day: order.day, on: db) {
            return .overCap(ownerID: owner, used: used)
        }
        let id = Self.newReservationID(now: now)
        try await db.raw(
            """
            INSERT INTO order_reservations (id, owner_id, credential_owner_id, venue, client_order_id, fingerprint, mode, day,
                notional_micros, status, created_at)
            VALUES (\(bind: id), \(bind: limits[0].ownerID), \(bind: limits.count > 1 ? limits[1].ownerID : nil), \(bind: order.venue),
                \(bind: order.clientOrderID), \(bind: order.fingerprint), \(bind: order.mode.rawValue), \(bind: order.day),
                \(bind: order.notional.micros), 'reserved', \(bind: now))
            """
        ).run()
        return .reserved(id: id)
    }

    /// The time in milliseconds, then 64 random bits: ids that follow one another in the primary key's
    /// index, so a batch of orders adds to its last page rather than to as many pages as orders.
    static func newReservationID(now: Int64) -> String {
        var generator = SystemRandomNumberGenerator()
        let random: UInt64 = generator.next()
        return hex(UInt64(max(0, now)), width: 12) + "-" + hex(random, width: 16)
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    /// The venue refused the order (or it was never sent): its notional goes back to every day it was counted on,
    /// unless a retry of the same order rode on it (that copy may be the one the venue took).
    public func release(id: String) async throws {
        try await database.transaction { db in
            let lock: SQLQueryString = database.dialect == .postgres ? " FOR UPDATE" : ""
            guard
                let row = try await db.raw(
                    """
                    SELECT owner_id, credential_owner_id, day, mode, notional_micros FROM order_reservations
                    WHERE id = \(bind: id) AND status = 'reserved' AND retries = 0\(lock)
                    """
                ).first()
            else { return }
            let owners =
                [try row.decode(column: "owner_id", as: String.self)]
                + [try row.decode(column: "credential_owner_id", as: String?.self)].compactMap { $0 }
            let day = try row.decode(column: "day", as: String.self)
            let mode = try row.decode(column: "mode", as: String.self)
            let amount = try row.decode(column: "notional_micros", as: Int64.self)
            try await db.raw("UPDATE order_reservations SET status = 'released' WHERE id = \(bind: id)").run()
            guard let mode = TradeMode(rawValue: mode), let amount = USD(micros: amount) else { return }
            try await DayLedger(dialect: database.dialect).settle(
                mode.ledger, holders: owners, day: day, held: amount, final: .zero, on: db)
        }
    }

    /// The day's reserved notional (orders not refused), by mode.
    public func used(ownerID: String, day: String) async throws -> [TradeMode: USD] {
        let totals = try await database.withConnection { db in
            try await DayLedger(dialect: database.dialect).totals(holder: ownerID, day: day, on: db)
        }
        var out: [TradeMode: USD] = [:]
        for mode in [TradeMode.live, .paper] { out[mode] = totals[mode.ledger] }
        return out
    }
}
