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
/// and UTC day. To hold an amount, a transaction adds it to each account's row in one statement that makes
/// or locks the row and refuses past the cap (the row lock on PostgreSQL; SQLite's writer lock, which every
/// transaction takes at `BEGIN IMMEDIATE`), in one fixed order so two holds on each other's accounts cannot
/// deadlock; past a cap, what it added to the accounts before is taken back. Settling moves a held amount to what it
/// really came to (the real cost of an LLM call; nothing for an order the venue refused), never below zero.
/// Concurrent holds, from one process or many, therefore never take a day past its cap.
struct DayLedger {
    let dialect: SQLDialectKind

    func hold(_ amount: USD, on accounts: [LedgerAccount], day: String, on db: any SQLDatabase) async throws -> LedgerHold {
        var held: [LedgerAccount] = []
        for account in accounts.sorted(by: { ($0.ledger.rawValue, $0.holder) < ($1.ledger.rawValue, $1.holder) }) {
            if try await !add(amount, to: account, day: day, on: db) {
                for done in held { try await settle(done.ledger, holders: [done.holder], day: day, held: amount, final: .zero, on: db) }
                return .overCap(holder: account.holder, used: try await lock(account.ledger, holder: account.holder, day: day, on: db))
            }
            held.append(account)
        }
        return .held
    }

    /// Adds `amount` to the account's day unless that takes it past its cap, in one statement: the row is
    /// made or locked (on PostgreSQL `ON CONFLICT DO UPDATE` locks it even when its `WHERE` refuses).
    private func add(_ amount: USD, to account: LedgerAccount, day: String, on db: any SQLDatabase) async throws -> Bool {
        if let cap = account.cap, amount.micros > cap.micros { return false }
        let cap = account.cap?.micros ?? Int64.max
        let upsert: SQLQueryString = """
            INSERT INTO ledger_days (ledger, holder, day, used_micros)
            VALUES (\(bind: account.ledger.rawValue), \(bind: account.holder), \(bind: day), \(bind: amount.micros))
            ON CONFLICT (ledger, holder, day) DO UPDATE SET used_micros = ledger_days.used_micros + excluded.used_micros
            WHERE ledger_days.used_micros + excluded.used_micros <= \(bind: cap)
            """
        // SQLite says how many rows the statement changed; its RETURNING would build a temporary table per call.
        if let writer = db as? WriterSession { return try await writer.changes(upsert) > 0 }
        return try await db.raw(upsert + " RETURNING used_micros").first() != nil
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
