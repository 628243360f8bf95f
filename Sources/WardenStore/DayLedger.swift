import SQLKit

/// The daily totals Warden checks caps against: an agent key's LLM spend, an owner's live and paper order volume.
public enum Ledger: String, Sendable, CaseIterable {
    case llmSpend = "llm"
    case liveOrders = "live"
    case paperOrders = "paper"
}

/// One holder's day in one ledger (an agent key's spend, an owner's volume) and the cap it may not pass.
public struct LedgerAccount: Sendable, Equatable {
    public let ledger: Ledger
    public let holder: String
    /// Nil: counted, never refused.
    public let cap: USD?

    public init(_ ledger: Ledger, holder: String, cap: USD?) {
        self.ledger = ledger
        self.holder = holder
        self.cap = cap
    }
}

/// What asking to hold an amount on some accounts came to.
public enum LedgerHold: Sendable, Equatable {
    case held
    /// The amount would take `holder`'s day past its cap; `used` is what that day already holds.
    case overCap(holder: String, used: USD)
}

/// Both ledgers' one shape and one locking rule. Every total lives in a `ledger_days` row per ledger, holder
/// and UTC day. To hold an amount, a transaction creates each account's row if missing and locks it (the row
/// lock of `SELECT … FOR UPDATE` on PostgreSQL; SQLite's writer lock, which every transaction takes at
/// `BEGIN IMMEDIATE`), in one fixed order so two holds on each other's accounts cannot deadlock, checks the
/// amount against every cap and adds it to every row before commit. Settling moves a held amount to what it
/// really came to (the real cost of an LLM call; nothing for an order the venue refused), never below zero.
/// Concurrent holds, from one process or many, therefore never take a day past its cap.
struct DayLedger {
    let dialect: SQLDialectKind

    func hold(_ amount: USD, on accounts: [LedgerAccount], day: String, on db: any SQLDatabase) async throws -> LedgerHold {
        let ordered = accounts.sorted { ($0.ledger.rawValue, $0.holder) < ($1.ledger.rawValue, $1.holder) }
        for account in ordered {
            let used = try await lock(account.ledger, holder: account.holder, day: day, on: db)
            if let cap = account.cap, used.micros + amount.micros > cap.micros {
                return .overCap(holder: account.holder, used: used)
            }
        }
        for account in accounts {
            try await db.raw(
                """
                UPDATE ledger_days SET used_micros = used_micros + \(bind: amount.micros)
                WHERE ledger = \(bind: account.ledger.rawValue) AND holder = \(bind: account.holder) AND day = \(bind: day)
                """
            ).run()
        }
        return .held
    }

    /// Replaces `held` on each account's day by `final`; a day never goes below zero.
    func settle(_ ledger: Ledger, holders: [String], day: String, held: USD, final: USD, on db: any SQLDatabase) async throws {
        for holder in holders {
            try await db.raw(
                """
                INSERT INTO ledger_days (ledger, holder, day, used_micros) VALUES (\(bind: ledger.rawValue), \(bind: holder), \(bind: day), \(bind: final.micros))
                ON CONFLICT (ledger, holder, day) DO UPDATE SET used_micros = CASE
                    WHEN ledger_days.used_micros > \(bind: held.micros) THEN ledger_days.used_micros - \(bind: held.micros) ELSE 0 END
                    + \(bind: final.micros)
                """
            ).run()
        }
    }

    /// The day's total, its row created and locked until the transaction ends.
    func lock(_ ledger: Ledger, holder: String, day: String, on db: any SQLDatabase) async throws -> USD {
        try await db.raw(
            """
            INSERT INTO ledger_days (ledger, holder, day) VALUES (\(bind: ledger.rawValue), \(bind: holder), \(bind: day))
            ON CONFLICT (ledger, holder, day) DO NOTHING
            """
        ).run()
        let forUpdate: SQLQueryString = dialect == .postgres ? " FOR UPDATE" : ""
        let micros =
            try await db.raw(
                """
                SELECT used_micros FROM ledger_days
                WHERE ledger = \(bind: ledger.rawValue) AND holder = \(bind: holder) AND day = \(bind: day)\(forUpdate)
                """
            ).first(decodingColumn: "used_micros", as: Int64.self) ?? 0
        return USD(micros: micros) ?? .limit
    }

    /// Every ledger's total for `holder` on `day` (no lock).
    func totals(holder: String, day: String, on db: any SQLDatabase) async throws -> [Ledger: USD] {
        var out: [Ledger: USD] = [:]
        for row in try await db.raw("SELECT ledger, used_micros FROM ledger_days WHERE holder = \(bind: holder) AND day = \(bind: day)")
            .all()
        {
            guard let ledger = Ledger(rawValue: try row.decode(column: "ledger", as: String.self)) else { continue }
            out[ledger] = USD(micros: try row.decode(column: "used_micros", as: Int64.self)) ?? .limit
        }
        return out
    }
}
