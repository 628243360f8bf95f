import Synchronization
import Foundation
import SQLKit

/// Today's LLM usage of one agent key at one venue.
public struct SpendRecord: Sendable, Equatable {
    public var agentKeyID: String
    public var day: String
    public var venue: String
    public var requests: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var spent: USD
    public var reserved: USD
}

/// Budget reservations and settled spend, per agent key, UTC day and venue, in exact micro-dollars. The
/// budget is checked on the key's day in `DayLedger` (DayLedger.swift), the same rule as order caps, so
/// concurrent calls cannot overspend; amounts are `USD`, never negative, and the columns refuse a negative
/// figure as well.
public struct SpendRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// Reserves `amount` USD unless it would take the key past `budget` for the day (summed over venues, held
    /// on the key's day by `DayLedger`).
    public func reserve(keyID: String, venue: String, day: String, amount: USD, budget: USD?) async throws -> Bool {
        let ledger = DayLedger(dialect: database.dialect)
        return try await database.transaction { db in
            let account = LedgerAccount(.llmSpend, holder: keyID, cap: budget)
            guard try await ledger.hold(amount, on: [account], day: day, on: db) == .held else { return false }
            try await db.raw(
                """
                INSERT INTO llm_spend (agent_key_id, day, venue, reserved_micros)
                VALUES (\(bind: keyID), \(bind: day), \(bind: venue), \(bind: amount.micros))
                ON CONFLICT (agent_key_id, day, venue) DO UPDATE SET reserved_micros = llm_spend.reserved_micros + excluded.reserved_micros
                """
            ).run()
            return true
        }
    }

    /// Replaces a reservation by what the call really cost.
    public func settle(
        keyID: String, venue: String, day: String, reserved: USD, spent: USD,
        inputTokens: Int, outputTokens: Int
    ) async throws {
        let ledger = DayLedger(dialect: database.dialect)
        try await database.transaction { db in
            try await ledger.settle(.llmSpend, holders: [keyID], day: day, held: reserved, final: spent, on: db)
            try await db.raw(
                """
                UPDATE llm_spend SET reserved_micros = CASE WHEN reserved_micros > \(bind: reserved.micros)
                        THEN reserved_micros - \(bind: reserved.micros) ELSE 0 END,
                    spent_micros = spent_micros + \(bind: spent.micros), requests = requests + 1,
                    input_tokens = input_tokens + \(bind: Int64(inputTokens)), output_tokens = output_tokens + \(bind: Int64(outputTokens))
                WHERE agent_key_id = \(bind: keyID) AND day = \(bind: day) AND venue = \(bind: venue)
                """
            ).run()
        }
    }

    /// Gives a reservation back whole, as if it had never been made (no request counted).
    public func release(keyID: String, venue: String, day: String, amount: USD) async throws {
        let ledger = DayLedger(dialect: database.dialect)
        try await database.transaction { db in
            try await ledger.settle(.llmSpend, holders: [keyID], day: day, held: amount, final: .zero, on: db)
            try await db.raw(
                """
                UPDATE llm_spend SET reserved_micros = CASE WHEN reserved_micros > \(bind: amount.micros)
                        THEN reserved_micros - \(bind: amount.micros) ELSE 0 END
                WHERE agent_key_id = \(bind: keyID) AND day = \(bind: day) AND venue = \(bind: venue)
                """
            ).run()
        }
    }

    /// Usage of every key `ownerID` holds, for one day.
    public func usage(ownerID: String, day: String) async throws -> [SpendRecord] {
        try await database.withConnection { db in
            try await db.raw(
                """
                SELECT s.* FROM llm_spend s JOIN agent_keys k ON k.id = s.agent_key_id
                WHERE k.owner_id = \(bind: ownerID) AND s.day = \(bind: day) ORDER BY s.agent_key_id, s.venue
                """
            ).all().map { row in
                SpendRecord(
                    agentKeyID: try row.decode(column: "agent_key_id", as: String.self),
                    day: try row.decode(column: "day", as: String.self),
                    venue: try row.decode(column: "venue", as: String.self),
                    requests: try row.decode(column: "requests", as: Int64.self),
                    inputTokens: try row.decode(column: "input_tokens", as: Int64.self),
                    outputTokens: try row.decode(column: "output_tokens", as: Int64.self),
                    spent: USD(micros: try row.decode(column: "spent_micros", as: Int64.self)) ?? .limit,
                    reserved: USD(micros: try row.decode(column: "reserved_micros", as: Int64.self)) ?? .limit)
            }
        }
    }

    /// The UTC day a timestamp falls on, as `YYYY-MM-DD`.
    public static func day(of date: Date = Date()) -> String {
        let number = Int((date.timeIntervalSince1970 / 86_400).rounded(.down))
        if let cached = lastDay.withLock({ $0 }), cached.number == number { return cached.text }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        let text = String(format: "%04d-%02d-%02d", parts.year!, parts.month!, parts.day!)
        lastDay.withLock { $0 = (number, text) }
        return text
    }

    /// The last day named (every call on the gateway's path asks for today).
    private static let lastDay = Mutex<(number: Int, text: String)?>(nil)
}

/// Usage to add to a key's day at a venue (unbudgeted calls are recorded in batches).
public struct SpendDelta: Sendable {
    public var keyID: String
    public var venue: String
    public var day: String
    public var requests: Int64
    public var inputTokens: Int64
    public var outputTokens: Int64
    public var spent: USD

    public init(keyID: String, venue: String, day: String, requests: Int64, inputTokens: Int64, outputTokens: Int64, spent: USD) {
        self.keyID = keyID
        self.venue = venue
        self.day = day
        self.requests = requests
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.spent = spent
    }
}

extension SpendRepository {
    /// Adds batched usage in one transaction.
    public func add(_ deltas: [SpendDelta]) async throws {
        guard !deltas.isEmpty else { return }
        let ledger = DayLedger(dialect: database.dialect)
        try await database.transaction { db in
            for d in deltas {
                try await ledger.settle(.llmSpend, holders: [d.keyID], day: d.day, held: .zero, final: d.spent, on: db)
                try await db.raw(
                    """
                    INSERT INTO llm_spend (agent_key_id, day, venue, requests, input_tokens, output_tokens, spent_micros)
                    VALUES (\(bind: d.keyID), \(bind: d.day), \(bind: d.venue), \(bind: d.requests), \(bind: d.inputTokens),
                        \(bind: d.outputTokens), \(bind: d.spent.micros))
                    ON CONFLICT (agent_key_id, day, venue) DO UPDATE SET
                        requests = llm_spend.requests + excluded.requests,
                        input_tokens = llm_spend.input_tokens + excluded.input_tokens,
                        output_tokens = llm_spend.output_tokens + excluded.output_tokens,
                        spent_micros = llm_spend.spent_micros + excluded.spent_micros
                    """
                ).run()
            }
        }
    }
}
