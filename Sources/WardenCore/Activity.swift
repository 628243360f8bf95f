import WardenStore

/// What a user may read of what was done: audit rows, today's LLM usage and order volume, paper trading.
/// Reads first write what this process still holds in memory (queued audit rows, batched usage), so they
/// show every call that has ended.
public struct Activity: Sendable {
    let database: Database
    let audit: AuditWriter
    let spend: SpendBatch
    let profiles: Profiles
    let log: AuditLog

    public init(gateway: Gateway, profiles: Profiles, log: AuditLog) {
        database = gateway.database
        audit = gateway.audit
        self.log = log
        spend = gateway.spendBatch
        self.profiles = profiles
    }

    /// The audit rows made in [since, until) as an export `warden audit verify --file` checks offline; administrators only.
    public func exportAudit(_ p: Principal, since: Int64?, until: Int64?, to sink: (String) async throws -> Void) async throws {
        guard p.user.isAdmin else { throw WardenError(.forbidden, code: "not_admin", "only administrators export the audit log") }
        await audit.flush()
        try await AuditArchive.export(log, since: since, until: until, to: sink)
    }

    /// Audit rows newest first: the caller's own (an administrator sees everyone's), those before `before`,
    /// of one action or one request when asked.
    public func auditPage(
        _ p: Principal, before: Int64? = nil, action: String? = nil, request: String? = nil,
        limit: Int
    ) async throws -> [AuditRecord] {
        await audit.flush()
        return try await AuditRepository(database).page(
            visibleTo: p.user.isAdmin ? nil : p.user.id, before: before, action: action,
            request: request, limit: limit)
    }

    /// Today (UTC) for the caller: LLM usage per key and venue, order volume per mode, and their daily cap.
    public struct Today: Sendable {
        public let day: String
        public let llm: [SpendRecord]
        public let volume: [TradeMode: USD]
        public let dailyCap: USD
    }

    public func today(_ p: Principal) async throws -> Today {
        await spend.flush()
        let day = SpendRepository.day()
        return Today(
            day: day, llm: try await SpendRepository(database).usage(ownerID: p.user.id, day: day),
            volume: try await TradeRepository(database).used(ownerID: p.user.id, day: day),
            dailyCap: try await profiles.get(userID: p.user.id).dailyCapUSD)
    }

    public func paperOrders(_ p: Principal) async throws -> [PaperOrder] {
        try await PaperRepository(database).orders(ownerID: p.user.id)
    }

    /// The simulator's cash, fees and positions, from the caller's starting balance.
    public func paperBalances(_ p: Principal) async throws -> (startingBalanceUSD: Double, PaperBalances) {
        let start = try await profiles.get(userID: p.user.id).startingBalanceUSD
        return (start, try await PaperRepository(database).balances(ownerID: p.user.id, startingBalanceUSD: start))
    }
}
