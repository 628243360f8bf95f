import Foundation
import SQLKit

/// One simulated fill.
public struct PaperOrder: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var venue: String
    public var clientOrderID: String
    public var instrument: String
    public var side: String
    public var quantity: String
    public var price: String
    public var notionalUSD: Double
    public var feeUSD: Double
    public var createdAt: Int64

    public init(
        id: String, ownerID: String, venue: String, clientOrderID: String, instrument: String, side: String,
        quantity: String, price: String, notionalUSD: Double, feeUSD: Double, createdAt: Int64
    ) {
        self.id = id
        self.ownerID = ownerID
        self.venue = venue
        self.clientOrderID = clientOrderID
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.price = price
        self.notionalUSD = notionalUSD
        self.feeUSD = feeUSD
        self.createdAt = createdAt
    }
}

/// Cash and positions implied by the paper orders.
public struct PaperBalances: Sendable, Equatable {
    public var cashUSD: Double
    public var feesUSD: Double
    /// Net quantity per venue and instrument.
    public var positions: [(venue: String, instrument: String, quantity: Decimal)]

    public static func == (a: Self, b: Self) -> Bool {
        a.cashUSD == b.cashUSD && a.feesUSD == b.feesUSD && a.positions.map { "\($0)" } == b.positions.map { "\($0)" }
    }
}

/// The paper ledger: simulated fills while live trading is off.
public struct PaperRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Books `order` unless a buy would take cash below zero; false when it would. The owner's bookings are
    /// serialised (the writer lock on SQLite, an advisory lock on PostgreSQL) so concurrent buys see each other.
    public func book(_ order: PaperOrder, startingBalanceUSD: Double) async throws -> Bool {
        let dialect = database.dialect
        return try await database.transaction { db in
            if dialect == .postgres {
                try await db.raw("SELECT pg_advisory_xact_lock(hashtext(\(bind: "paper:" + order.ownerID)))").run()
            }
            if order.side == "buy" {
                let balances = try await Self.balances(ownerID: order.ownerID, startingBalanceUSD: startingBalanceUSD, on: db)
                guard balances.cashUSD - order.notionalUSD - order.feeUSD >= -1e-9 else { return false }
            }
            try await db.raw(
                """
                INSERT INTO paper_orders (id, owner_id, venue, client_order_id, instrument, side, quantity, price, notional_usd, fee_usd, created_at)
                VALUES (\(bind: order.id), \(bind: order.ownerID), \(bind: order.venue), \(bind: order.clientOrderID),
                    \(bind: order.instrument), \(bind: order.side), \(bind: order.quantity), \(bind: order.price),
                    \(bind: order.notionalUSD), \(bind: order.feeUSD), \(bind: order.createdAt))
                """
            ).run()
            return true
        }
    }

    /// Newest first.
    public func orders(ownerID: String, limit: Int = 200) async throws -> [PaperOrder] {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT * FROM paper_orders WHERE owner_id = \(bind: ownerID) ORDER BY created_at DESC, id LIMIT \(bind: limit)
                """
            ).all().map(Self.decode)
        }
    }

    public func balances(ownerID: String, startingBalanceUSD: Double) async throws -> PaperBalances {
        try await database.withConnection { db in
            try await Self.balances(ownerID: ownerID, startingBalanceUSD: startingBalanceUSD, on: db)
        }
    }

    static func balances(ownerID: String, startingBalanceUSD: Double, on db: any SQLDatabase) async throws -> PaperBalances {
        let rows = try await db.raw("SELECT * FROM paper_orders WHERE owner_id = \(bind: ownerID) ORDER BY created_at").all().map(decode)
        var cash = startingBalanceUSD, fees = 0.0
        var positions: [String: (String, String, Decimal)] = [:]
        for order in rows {
            let buy = order.side == "buy"
            cash += buy ? -order.notionalUSD : order.notionalUSD
            cash -= order.feeUSD
            fees += order.feeUSD
            let key = order.venue + "|" + order.instrument
            let quantity = Decimal(string: order.quantity) ?? 0
            let held = positions[key]?.2 ?? 0
            positions[key] = (order.venue, order.instrument, held + (buy ? quantity : -quantity))
        }
        return PaperBalances(
            cashUSD: cash, feesUSD: fees,
            positions: positions.keys.sorted().compactMap { positions[$0] }.map { ($0.0, $0.1, $0.2) })
    }

    static func decode(_ row: any SQLRow) throws -> PaperOrder {
        PaperOrder(
            id: try row.decode(column: "id", as: String.self), ownerID: try row.decode(column: "owner_id", as: String.self),
            venue: try row.decode(column: "venue", as: String.self),
            clientOrderID: try row.decode(column: "client_order_id", as: String.self),
            instrument: try row.decode(column: "instrument", as: String.self), side: try row.decode(column: "side", as: String.self),
            quantity: try row.decode(column: "quantity", as: String.self), price: try row.decode(column: "price", as: String.self),
            notionalUSD: try row.decode(column: "notional_usd", as: Double.self),
            feeUSD: try row.decode(column: "fee_usd", as: Double.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self))
    }
}
