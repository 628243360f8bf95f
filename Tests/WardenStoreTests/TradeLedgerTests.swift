import Foundation
import Logging
import Testing
import WardenStore

/// The daily-cap ledger and the paper ledger, on every enabled engine.
@Suite struct TradeLedgerTests {
    func storeWithUser(_ backend: Backend) async throws -> (TestStore, String) {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: TestStore.logger)
        let id = UUID().uuidString.lowercased()
        try await UserRepository(store.database).insert(UserRecord(
            id: id, email: "\(id)@example.com", passwordHash: "$argon2id$fake", isAdmin: false, disabled: false,
            mustChangePassword: false, createdAt: 1, updatedAt: 1))
        return (store, id)
    }

    @Test(arguments: Backend.enabled)
    func concurrentOrdersNeverExceedTheCap(backend: Backend) async throws {
        let (store, owner) = try await storeWithUser(backend)
        let trades = TradeRepository(store.database)
        let outcomes = try await withThrowingTaskGroup(of: TradeReservation.self) { group in
            for i in 0..<100 {
                group.addTask {
                    try await trades.reserve(ownerID: owner, venue: "binance", clientOrderID: "o-\(i)", mode: "live",
                                             day: "2026-11-23", amount: 10, cap: 250)
                }
            }
            return try await group.reduce(into: [TradeReservation]()) { $0.append($1) }
        }
        let reserved = outcomes.filter { if case .reserved = $0 { true } else { false } }.count
        #expect(reserved == 25)
        #expect(outcomes.filter { if case .overCap = $0 { true } else { false } }.count == 75)
        #expect(try await trades.used(ownerID: owner, day: "2026-11-23") == ["live": 250])
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func aRetryIsNotReservedTwiceAndARejectionGivesTheReservationBack(backend: Backend) async throws {
        let (store, owner) = try await storeWithUser(backend)
        let trades = TradeRepository(store.database)
        let first = try await trades.reserve(ownerID: owner, venue: "kalshi", clientOrderID: "c-1", mode: "live", day: "d", amount: 40, cap: 100)
        guard case .reserved(let id) = first else { Issue.record("not reserved: \(first)"); return }
        #expect(try await trades.reserve(ownerID: owner, venue: "kalshi", clientOrderID: "c-1", mode: "live", day: "d", amount: 40, cap: 100) == .duplicate)
        #expect(try await trades.used(ownerID: owner, day: "d")["live"] == 40)

        try await trades.release(orderID: id)
        try await trades.release(orderID: id)  // twice gives back once
        #expect(try await trades.used(ownerID: owner, day: "d")["live"] == 0)
        // After a rejection the same id may be tried again, and is reserved again.
        guard case .reserved = try await trades.reserve(ownerID: owner, venue: "kalshi", clientOrderID: "c-1", mode: "live", day: "d", amount: 40, cap: 100)
        else { Issue.record("a rejected order's retry was not reserved"); return }
        #expect(try await trades.used(ownerID: owner, day: "d")["live"] == 40)
        #expect(try await trades.reserve(ownerID: owner, venue: "kalshi", clientOrderID: "c-2", mode: "live", day: "d", amount: 61, cap: 100)
                == .overCap(used: 40))
        // Paper volume is counted apart from live volume.
        guard case .reserved = try await trades.reserve(ownerID: owner, venue: "kalshi", clientOrderID: "c-3", mode: "paper", day: "d", amount: 100, cap: 100)
        else { Issue.record("paper volume was counted against live volume"); return }
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func aRetryAfterTheWindowIsReservedAgain(backend: Backend) async throws {
        let (store, owner) = try await storeWithUser(backend)
        let trades = TradeRepository(store.database)
        let dayAgo = Clock.nowMillis() - 25 * 3600 * 1000
        _ = try await trades.reserve(ownerID: owner, venue: "binance", clientOrderID: "x", mode: "live", day: "d0", amount: 5, cap: 100, now: dayAgo)
        guard case .reserved = try await trades.reserve(ownerID: owner, venue: "binance", clientOrderID: "x", mode: "live", day: "d1", amount: 5, cap: 100)
        else { Issue.record("an id reused after 24 h was treated as a retry"); return }
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func paperLedgerBooksFillsAndRefusesBuysPastCash(backend: Backend) async throws {
        let (store, owner) = try await storeWithUser(backend)
        let paper = PaperRepository(store.database)
        func order(_ side: String, _ quantity: String, _ notional: Double, _ fee: Double) -> PaperOrder {
            PaperOrder(id: UUID().uuidString, ownerID: owner, venue: "binance", clientOrderID: UUID().uuidString, instrument: "BTCUSDT",
                       side: side, quantity: quantity, price: "50000", notionalUSD: notional, feeUSD: fee, createdAt: Clock.nowMillis())
        }
        #expect(try await paper.book(order("buy", "0.01", 500, 0.5), startingBalanceUSD: 1000))
        #expect(try await paper.book(order("sell", "0.004", 200, 0.2), startingBalanceUSD: 1000))
        #expect(try await !paper.book(order("buy", "0.02", 1000, 1), startingBalanceUSD: 1000))
        let balances = try await paper.balances(ownerID: owner, startingBalanceUSD: 1000)
        #expect(abs(balances.cashUSD - (1000 - 500 - 0.5 + 200 - 0.2)) < 1e-9)
        #expect(abs(balances.feesUSD - 0.7) < 1e-9)
        #expect(balances.positions.count == 1 && balances.positions[0].quantity == Decimal(string: "0.006"))
        #expect(try await paper.orders(ownerID: owner).count == 2)
        try await store.database.close()
    }

    @Test(arguments: Backend.enabled)
    func concurrentPaperBuysNeverOverdrawTheCash(backend: Backend) async throws {
        let (store, owner) = try await storeWithUser(backend)
        let paper = PaperRepository(store.database)
        let booked = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    try await paper.book(PaperOrder(
                        id: UUID().uuidString, ownerID: owner, venue: "kalshi", clientOrderID: UUID().uuidString, instrument: "T",
                        side: "buy", quantity: "100", price: "1", notionalUSD: 100, feeUSD: 0, createdAt: Clock.nowMillis()),
                        startingBalanceUSD: 1000)
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(booked == 10)
        #expect(try await paper.balances(ownerID: owner, startingBalanceUSD: 1000).cashUSD == 0)
        try await store.database.close()
    }
}
