import Foundation
import Synchronization
import HTTPTypes
import WardenCrypto
import WardenStore
import WardenVenues

/// A call the gateway will not make, with the status and reason the agent sees (in its venue's shape)
/// and the audit row records.
public struct GatewayRefusal: Error, Sendable {
    public let status: HTTPResponse.Status
    public let kind: RefusalKind
    public let reason: String
    public var retryAfter: Int?
    public var key: AgentKeyRecord?
    /// The owner of the shared credential the refused call was for, who sees the refusal too.
    public var sharedBy: String?
    /// The alarm the refusal's audit row raises, if any.
    public var alarm: AlarmEvent?
    /// The decoy that was presented, when the key was a honey token.
    public var honeyToken: HoneyTokenRecord?
    /// Refused because the key's scope is frozen: not counted again by the refusal breaker.
    public var byKillSwitch = false

    public init(_ status: HTTPResponse.Status, _ kind: RefusalKind, _ reason: String, retryAfter: Int? = nil, key: AgentKeyRecord? = nil) {
        self.status = status
        self.kind = kind
        self.reason = reason
        self.retryAfter = retryAfter
        self.key = key
    }
}

/// A call the policy lets through: who makes it, where it goes, and with which credential.
public struct Admission: Sendable {
    public let venue: any VenueAdapter
    public let key: AgentKeyRecord
    /// The agent key as presented (it is the caller's own; Polymarket level 1 hands it back as the API key).
    public let presentedKey: String
    public let credentialID: String
    /// The credential's owner: the key's owner, or the user who shared the credential with them.
    public let credentialOwnerID: String
    /// Whether the key's owner owns the credential (rather than holding a share of it).
    public var ownsCredential: Bool { credentialOwnerID == key.ownerID }
    public let secret: [String: String]
    public let path: CanonicalPath
    public let upstreamURL: String
    /// The id the server gave this request (its `X-Warden-Request-Id`), written into the call's audit rows.
    public let requestID: String
    /// The store revision the key's standing was read at (a circuit breaker tripped since refuses it).
    public var revision: Int64? = nil
    /// Written into every row of the call (a stream request's method and id).
    public var auditTags: [String: String] = [:]
}

extension Admission {
    /// This call's audit row.
    public func auditEntry(_ step: GatewayStep, outcome: Outcome, method: String, detail: [String: String]) -> AuditEntry {
        .gateway(
            step, outcome: outcome, venue: venue.name, key: key, credentialID: credentialID,
            credentialOwnerID: ownsCredential ? nil : credentialOwnerID, method: method,
            path: path.description, requestID: requestID, detail: auditTags.isEmpty ? detail : detail.merging(auditTags) { $1 })
    }
}

extension AuditEntry {
    /// A gateway call's row: the key that made it, the venue, the method and path (never the query, which
    /// may carry signatures), the credential and the call's request id, under `detail`'s own fields. A call on
    /// a shared credential names the credential's owner too (`credential_owner`), who sees it in their log.
    public static func gateway(
        _ step: GatewayStep, outcome: Outcome, venue: String, key: AgentKeyRecord?, credentialID: String?,
        credentialOwnerID: String? = nil, method: String, path: String, requestID: String,
        detail: [String: String]
    ) -> AuditEntry {
        var detail = detail
        detail.reserveCapacity(detail.count + 5)
        if let credentialOwnerID { detail["credential_owner"] = credentialOwnerID }
        detail["request"] = requestID
        if detail["method"] == nil { detail["method"] = method }
        if detail["path"] == nil { detail["path"] = String(path.prefix(256)) }
        if let credentialID, detail["credential"] == nil { detail["credential"] = credentialID }
        return AuditEntry(
            actor: key.map { "key:\($0.id)" }, owner: key?.ownerID, action: step.rawValue, target: venue, outcome: outcome,
            detail: detail)
    }
}

/// Budget held for an LLM call until its real cost is known.
public struct Reservation: Sendable {
    public let keyID: String
    public let venue: String
    public let day: String
    /// The most the call can be billed; never negative (`USD` cannot be).
    public let amount: USD
    public let price: WardenConfig.ModelPrice?
    /// Only budgeted calls hold a reservation in the store; the others are recorded in batches.
    public let budgeted: Bool
    /// Priced per call by the operator: charged whole, whatever usage the answer reports.
    public var perCall = false
}

/// The gateway's decisions: identify the agent key, check the policy, reserve budget, settle spend.
/// A class: every call and its closures share one, rather than copying its many fields.
public final class Gateway: Sendable {
    public let registry: VenueRegistry
    public let config: WardenConfig
    public let audit: AuditWriter
    public let touches: UsageTouches
    public let spendBatch: SpendBatch
    let database: Database
    let vault: Vault
    let agentKeys: AgentKeys
    let honeyTokens: HoneyTokens
    /// Resolved keys with their opened credentials; see `KeyCache`.
    public let keys: KeyCache
    /// Services' rate limits: in the store on PostgreSQL, where several servers share one limit; in memory
    /// on SQLite, where one server per store is the deployment and a store round trip per call would cost
    /// a durable commit.
    let rateBuckets: any RateBuckets
    let blocked: [String: [EndpointPattern]]
    public let trading: TradingPolicy
    public let goLive: GoLive
    let breakers: Breakers
    /// Orders held for a person's approval.
    public let approvals: Approvals
    /// Streams open on this server, by key family.
    public let streams = OpenStreams()

    /// `caller` makes Warden's own venue calls: prices for orders, balances for go-live.
    public init(services: WardenServices, config: WardenConfig, caller: any UpstreamCaller) {
        registry = services.venues
        self.config = config
        database = services.database
        vault = services.vault
        agentKeys = services.agentKeys
        honeyTokens = services.honeyTokens
        keys = KeyCache(database: services.database, idle: .seconds(Int64(config.gateway.credentialIdleSeconds)))
        rateBuckets = services.database.dialect == .postgres ? StoreRateBuckets(database: services.database) : RateLimiter()
        audit = AuditWriter(log: services.audit, database: services.database)
        touches = UsageTouches(repository: AgentKeyRepository(services.database))
        spendBatch = SpendBatch(repository: SpendRepository(services.database))
        blocked = config.services.mapValues { $0.blockedEndpoints.map(EndpointPattern.init) }
        breakers = Breakers(killSwitch: services.killSwitch, keys: keys, database: services.database)
        trading = TradingPolicy(
            config: config, database: services.database, profiles: services.profiles, keys: keys,
            prices: PriceFeed(caller: caller), credentials: services.credentials, audit: audit, breakers: breakers)
        approvals = Approvals(
            database: services.database, vault: services.vault, audit: services.audit, registry: registry, trading: trading,
            caller: caller)
        goLive = GoLive(
            registry: registry, config: config, caller: caller, database: services.database, vault: services.vault,
            profiles: services.profiles, audit: services.audit)
    }

    static let methodOverrideFields = MethodOverride.headers.sorted().map { HTTPField.Name($0)! }

    public func admit(
        venue: any VenueAdapter, method: String, rawPath: String, query: String?, headers: HTTPFields, requestID: String
    ) async throws(GatewayRefusal) -> Admission {
        let path = try canonical(method: method, rawPath: rawPath, query: query, headers: headers)
        let presented = presentedKey(venue: venue, headers: headers)
        let (key, credential, secret, revision) = try await resolve(venue: venue, presented: presented)
        let credentialID = credential.id
        if let service = config.services[venue.name] {
            do { try await enforce(service: service, venue: venue.name, key: key, method: method, path: path) } catch {
                var refusal = error
                if credential.ownerID != key.ownerID { refusal.sharedBy = credential.ownerID }
                throw refusal
            }
        }
        var base = config.baseURL(venue: venue.name, default: venue.defaultBaseURL)
        if let exchange = venue as? any ExchangeVenue, let data = exchange.defaultMarketDataURL, exchange.isMarketData(path.description) {
            base = config.marketDataURL(venue: venue.name, default: data)
        }
        let url = base + path.encoded + (query.map { $0.isEmpty ? "" : "?" + $0 } ?? "")
        touches.record(keyID: key.id, credentialID: credentialID)
        return Admission(
            venue: venue, key: key, presentedKey: presented ?? "", credentialID: credentialID,
            credentialOwnerID: credential.ownerID,
            secret: secret, path: path, upstreamURL: url, requestID: requestID, revision: revision)
    }

    /// The path every decision is made on; method overrides and ambiguous paths are refused first.
    public func canonical(method: String, rawPath: String, query: String?, headers: HTTPFields) throws(GatewayRefusal) -> CanonicalPath {
        for name in Self.methodOverrideFields where headers[name] != nil {
            throw GatewayRefusal(
                .badRequest, .invalidRequest, "the \(name.canonicalName) header (a method or URL override) is not accepted")
        }
        if let named = HopByHop.namedContentField(in: headers) {
            throw GatewayRefusal(
                .badRequest, .invalidRequest, "the Connection header names \(named), which describes the body and must reach the upstream")
        }
        if let query, MethodOverride.inPairs(query[...]) {
            throw GatewayRefusal(.badRequest, .invalidRequest, "a _method query parameter (a method override) is not accepted")
        }
        do { return try CanonicalPath(raw: rawPath) } catch {
            throw GatewayRefusal(.badRequest, .invalidRequest, error.description)
        }
    }

    /// A body that asks the upstream for another method (`_method` as a form field, a multipart part or
    /// a top-level JSON member) is refused before anything is sent.
    /// A body compressed, or in a character set that is not ASCII's superset, cannot be checked as the upstream
    /// will read it (a framework that inflates or decodes it first would find `_method` there): it is refused.
    public func checkBody(_ body: Data, contentType: String?, contentEncoding: String?, key: AgentKeyRecord?) throws(GatewayRefusal) {
        guard !body.isEmpty else { return }
        if let encoding = contentEncoding?.trimmingCharacters(in: .whitespaces).lowercased(), !encoding.isEmpty, encoding != "identity" {
            throw GatewayRefusal(
                .badRequest, .invalidRequest,
                "a request body with Content-Encoding \(encoding.prefix(40)) cannot be checked; send it uncompressed", key: key)
        }
        if let charset = MethodOverride.charset(of: contentType), !MethodOverride.asciiCharsets.contains(charset) {
            throw GatewayRefusal(
                .badRequest, .invalidRequest, "a request body in charset \(charset.prefix(40)) cannot be checked; send it as UTF-8",
                key: key)
        }
        if MethodOverride.inBody(body, contentType: contentType) {
            throw GatewayRefusal(.badRequest, .invalidRequest, "a _method field in the body (a method override) is not accepted", key: key)
        }
    }

    /// The agent key as presented, in `X-Warden-Key` or where the venue's SDK puts its API key.
    public func presentedKey(venue: any VenueAdapter, headers: HTTPFields) -> String? {
        guard let key = headers[Self.wardenKeyHeader] ?? venue.agentKey(in: headers), !key.isEmpty else { return nil }
        return key
    }

    static let wardenKeyHeader = HTTPField.Name("x-warden-key")!

    /// The live key in the request (it and the keys above it unrevoked and unexpired, owner enabled) and the credential it may use at this venue: the owner's
    /// own, or one shared with the owner at a level that covers the key's access. One store query, none
    /// when the key is cached (the checks below run on every call either way).
    func resolve(venue: any VenueAdapter, presented: String?) async throws(GatewayRefusal) -> (
        AgentKeyRecord, CredentialRecord, [String: String], Int64
    ) {
        guard let presented else {
            throw GatewayRefusal(
                .unauthorized, .authentication, "no Warden agent key: send it where the SDK sends its API key, or in X-Warden-Key")
        }
        guard presented.utf8.count < 200 else { throw Self.unknownKey }
        let hash = agentKeys.hash(presented)
        // A decoy may look like a venue's own key: anything presented is looked up once, then remembered as unknown.
        guard presented.hasPrefix("wdn_") else { throw await honeyOrUnknown(hash: hash) }
        let cached = keys.entry(hash: hash, venue: venue.name)
        let resolved: ResolvedKey?
        do {
            if let cached {
                resolved = cached.resolved
            } else if keys.isUnknown(hash: hash) {
                resolved = nil
            } else {
                let lookup = try await AgentKeyRepository(database).resolve(hash: hash, venue: venue.name)
                resolved = lookup.key
                if resolved == nil, lookup.honey == nil { keys.storeUnknown(hash: hash, revision: lookup.revision) }
                if let honey = lookup.honey { throw await honeyTripped(honey) }
            }
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the key store is unavailable")
        }
        // The key and every key above it (it may have been minted from another) unrevoked and unexpired.
        guard let resolved, resolved.standing.isCurrent(at: Clock.nowMillis()) else { throw Self.unknownKey }
        let key = resolved.key
        guard !resolved.standing.ownerDisabled else {
            throw GatewayRefusal(.unauthorized, .authentication, "the owner of this agent key is disabled", key: key)
        }
        guard !resolved.standing.frozen else {
            var refusal = GatewayRefusal(
                .forbidden, .permission, "this agent key is frozen by Warden's kill switch; a person must lift the freeze", key: key)
            refusal.byKillSwitch = true
            throw refusal
        }
        guard key.credentials[venue.name] != nil else {
            throw GatewayRefusal(.forbidden, .permission, "this agent key is not bound to a \(venue.name) credential", key: key)
        }
        guard let credential = resolved.credential else {
            throw GatewayRefusal(.forbidden, .permission, "the credential bound to this key was deleted", key: key)
        }
        if credential.ownerID != key.ownerID {
            guard let grant = resolved.grantAccess, key.access.fits(grant) else {
                throw GatewayRefusal(.forbidden, .permission, "the share of this credential was revoked or narrowed", key: key)
            }
        }
        if let cached { return (key, credential, cached.secret, resolved.revision) }
        guard let secret = Credentials.open(credential, vault: vault) else {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the credential could not be read", key: key)
        }
        keys.store(KeyCache.Entry(resolved: resolved, secret: secret), hash: hash, venue: venue.name)
        return (key, credential, secret, resolved.revision)
    }

    static let unknownKey = GatewayRefusal(.unauthorized, .authentication, "unknown, revoked or expired Warden agent key")

    /// The refusal for a key that is not a `wdn_` key: a decoy's (alarmed), or an unknown key's.
    func honeyOrUnknown(hash: String) async -> GatewayRefusal {
        if keys.isUnknown(hash: hash) { return Self.unknownKey }
        do {
            let revision = try await StoreRevision.read(database)
            if let honey = try await HoneyTokenRepository(database).find(hash: hash) { return await honeyTripped(honey) }
            keys.storeUnknown(hash: hash, revision: revision)
            return Self.unknownKey
        } catch {
            return GatewayRefusal(.serviceUnavailable, .unavailable, "the key store is unavailable")
        }
    }

    /// A decoy was used: refused exactly as an unknown key is, its owner's keys frozen, its row raising the alarm.
    func honeyTripped(_ honey: HoneyTokenRecord) async -> GatewayRefusal {
        await honeyTokens.tripped(honey)
        await keys.sync()
        var refusal = Self.unknownKey
        refusal.alarm = .honeyTokenUsed
        refusal.honeyToken = honey
        return refusal
    }

    /// REST services: read keys only read; blocked endpoints never pass; the rate limit holds, for the key's
    /// whole family at once (one bucket per family root), so minting keys never multiplies it.
    func enforce(service: WardenConfig.ServiceSection, venue: String, key: AgentKeyRecord, method: String, path: CanonicalPath)
        async throws(GatewayRefusal)
    {
        if key.access == .read, !HTTPRequest.Method.isRead(method.uppercased()) {
            throw GatewayRefusal(.forbidden, .permission, "this agent key is read-only: \(method) is not allowed", key: key)
        }
        if let rule = blocked[venue]?.first(where: { $0.matches(method: method, path: path, formatSuffixes: true) }) {
            throw GatewayRefusal(.forbidden, .permission, "blocked by policy (\(rule.description))", key: key)
        }
        guard let limit = service.rateLimit else { return }
        let wait: Int?
        do {
            wait = try await rateBuckets.take(
                bucket: "\(key.rootID)|\(venue)", capacity: limit, window: TimeInterval(service.rateLimitWindowSeconds))
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the rate limit could not be checked; the call was not made", key: key)
        }
        if let wait {
            throw GatewayRefusal(
                .tooManyRequests, .rateLimit,
                "rate limit of \(limit) calls per \(service.rateLimitWindowSeconds) s reached "
                    + "(one limit for a key and every key minted from it)", retryAfter: wait, key: key)
        }
    }

    // MARK: LLM spend

    /// Tokens a request may carry beyond its bytes: message framing and the venue's own tool instructions.
    static let inputOverheadTokens = 1024

    /// Reserves the worst-case cost of an LLM call against the key's daily budget before it is sent, and
    /// returns the body to send: for a key with a budget, a call that gives no output ceiling gets one put
    /// in (`default_max_output_tokens`), so the venue cannot generate past what was reserved.
    public func reserve(_ admission: Admission, method: String, body: Data, dialect: UsageDialect)
        async throws(GatewayRefusal) -> (Reservation, body: Data, request: UsageDialect.RequestInfo)
    {
        let key = admission.key, venue = admission.venue.name
        let request = dialect.inspect(body)
        if let invalid = request.invalid { throw GatewayRefusal(.badRequest, .invalidRequest, invalid, key: key) }
        let price = request.model.flatMap { config.prices[venue]?[$0] }
        // A family (a key and every key minted below it, at any depth) spends from one budget, its root's.
        let budgetKey = key.rootID
        let day = SpendRepository.day()
        guard let budget = key.dailyBudgetUSD else {
            return (Reservation(keyID: budgetKey, venue: venue, day: day, amount: .zero, price: price, budgeted: false), body, request)
        }
        var body = body
        let output: Int
        switch BudgetedCall.classify(dialect, method: method, path: admission.path.description, body: body) {
        case .free:
            return (Reservation(keyID: budgetKey, venue: venue, day: day, amount: .zero, price: nil, budgeted: false), body, request)
        case .refused(let reason):
            throw GatewayRefusal(.forbidden, .permission, reason, key: key)
        case .unpriced(let reason):
            // The operator may bound such a call with a price per call: reserved and charged whole.
            // `n` asks for that many (images, speeches): each is billed.
            guard let perCall = config.callPrices[venue]?.first(where: { $0.pattern.matches(method: method, path: admission.path) }),
                let amount = USD(roundingUp: perCall.price * Decimal(request.generations))
            else {
                throw GatewayRefusal(.forbidden, .permission, reason + " (unless [call_prices.\(venue)] prices it)", key: key)
            }
            try await reserve(amount, budget: budget, keyID: budgetKey, venue: venue, day: day, key: key)
            return (
                Reservation(keyID: budgetKey, venue: venue, day: day, amount: amount, price: nil, budgeted: true, perCall: true), body,
                request
            )
        case .tokens(let endpointCeiling, let prompts):
            guard price != nil else {
                throw GatewayRefusal(
                    .forbidden, .permission,
                    "model \(request.model ?? "(none)") has no price in [prices.\(venue)]; a key with a budget may only call priced models",
                    key: key)
            }
            // Only the fields this endpoint reads bound it; with none of them given, Warden writes one.
            var ceiling = endpointCeiling.flatMap { $0.read.compactMap { request.ceilings[$0] }.max() } ?? 0
            if let endpointCeiling, ceiling == 0 {
                ceiling = config.gateway.defaultMaxOutputTokens
                guard let bounded = BudgetedCall.withCeiling(body, field: endpointCeiling.field, tokens: ceiling) else {
                    throw GatewayRefusal(.badRequest, .invalidRequest, "the request body must be a JSON object", key: key)
                }
                body = bounded
            }
            output = endpointCeiling == nil ? 0 : ceiling * request.generations * prompts
        }
        // Input tokens cannot exceed the request's bytes (plus framing), each billed at most `inputWeight` times;
        // output cannot exceed the ceilings.
        guard let worst = price?.cost(input: (body.count + Self.inputOverheadTokens) * dialect.inputWeight, output: output) else {
            throw GatewayRefusal(.forbidden, .permission, "the call's worst-case cost cannot be priced", key: key)
        }
        try await reserve(worst, budget: budget, keyID: budgetKey, venue: venue, day: day, key: key)
        return (Reservation(keyID: budgetKey, venue: venue, day: day, amount: worst, price: price, budgeted: true), body, request)
    }

    func reserve(_ amount: USD, budget: USD, keyID: String, venue: String, day: String, key: AgentKeyRecord) async throws(GatewayRefusal) {
        let granted: Bool
        do {
            granted = try await SpendRepository(database).reserve(keyID: keyID, venue: venue, day: day, amount: amount, budget: budget)
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the budget ledger is unavailable", key: key)
        }
        guard granted else {
            var refusal = GatewayRefusal(
                .tooManyRequests, .budget,
                "the call's worst case of \(amount) USD does not fit in what is left of this key's daily budget of \(budget) USD; it resets at 00:00 UTC",
                retryAfter: Self.secondsToMidnightUTC(), key: key)
            refusal.alarm = .budgetReached
            throw refusal
        }
    }

    /// Replaces the reservation by the real cost. Without a usage report Warden can trust (a cut stream, an
    /// unanswered call, negative counts) the reservation is kept as spent: the venue may have billed it.
    /// A call that was never `sent` costs nothing; one priced per call costs its price whatever it reports.
    public func settle(_ reservation: Reservation, usage: TokenUsage?, sent: Bool = true) async -> USD {
        let trusted = sent ? usage.flatMap { $0.input >= 0 && $0.output >= 0 ? $0 : nil } : TokenUsage(input: 0, output: 0)
        let cost: USD =
            !sent
            ? .zero
            : reservation.perCall
                ? reservation.amount
                : trusted.map { reservation.price?.cost(input: $0.input, output: $0.output) ?? reservation.amount } ?? reservation.amount
        guard reservation.budgeted else {
            spendBatch.add(
                SpendDelta(
                    keyID: reservation.keyID, venue: reservation.venue, day: reservation.day, requests: 1,
                    inputTokens: Int64(trusted?.input ?? 0), outputTokens: Int64(trusted?.output ?? 0), spent: cost))
            return cost
        }
        try? await SpendRepository(database).settle(
            keyID: reservation.keyID, venue: reservation.venue, day: reservation.day, reserved: reservation.amount,
            spent: cost, inputTokens: trusted?.input ?? 0, outputTokens: trusted?.output ?? 0)
        return cost
    }

    /// The key owner's breakers, as the key cache holds their profile (none when it cannot be read: the
    /// caps and budgets, in the store, still hold).
    func breakerLimits(_ key: AgentKeyRecord) async -> BreakerLimits {
        (try? await trading.profile(userID: key.ownerID).breakers) ?? BreakerLimits()
    }

    /// A refused call of a live key counts toward its family's refusal breaker.
    public func countRefusal(_ refusal: GatewayRefusal) {
        guard let key = refusal.key, !refusal.byKillSwitch, refusal.kind != .unavailable else { return }
        Task {
            let limits = await breakerLimits(key)
            guard limits.refusalsPerMinute != nil else { return }
            _ = await breakers.count(.refusals, key: key, revision: nil, amount: 1, limits: limits)
        }
    }

    /// An LLM call's real cost counts toward its family's spend breaker (the call that crosses it has run;
    /// the next one meets the freeze).
    public func countSpend(_ cost: USD, admission: Admission) async {
        guard cost > .zero else { return }
        let limits = await breakerLimits(admission.key)
        guard limits.llmUSDPerHour != nil else { return }
        _ = await breakers.count(.llmSpend, key: admission.key, revision: admission.revision, amount: cost.micros, limits: limits)
    }

    static func secondsToMidnightUTC(now: Date = Date()) -> Int {
        let day = 86_400.0
        let elapsed = now.timeIntervalSince1970.truncatingRemainder(dividingBy: day)
        return max(1, Int((day - elapsed).rounded(.up)))
    }
}

/// Remembers which keys and credentials were used, and writes `last_used_at` in batches. A lock, not an
/// actor: every gateway call records here, and an actor hop per call costs a thread switch.
public final class UsageTouches: Sendable {
    private let pending = Mutex<(keys: [String: Int64], credentials: [String: Int64])>(([:], [:]))
    let repository: AgentKeyRepository

    init(repository: AgentKeyRepository) { self.repository = repository }

    func record(keyID: String, credentialID: String) {
        let now = Clock.nowMillis()
        pending.withLock {
            $0.keys[keyID] = now
            $0.credentials[credentialID] = now
        }
    }

    /// Writes what was recorded since the last flush.
    public func flush() async {
        let (keys, credentials) = pending.withLock { state in
            defer { state = ([:], [:]) }
            return state
        }
        guard !keys.isEmpty || !credentials.isEmpty else { return }
        try? await repository.touch(keys: keys, credentials: credentials)
    }
}

/// Usage of unbudgeted LLM calls, summed in memory and written in batches (no store write per call).
/// A lock rather than an actor, for the same reason as `UsageTouches`.
public final class SpendBatch: Sendable {
    private let pending = Mutex<[String: SpendDelta]>([:])
    let repository: SpendRepository

    init(repository: SpendRepository) { self.repository = repository }

    func add(_ delta: SpendDelta) {
        pending.withLock { Self.add(delta, to: &$0) }
    }

    private static func add(_ delta: SpendDelta, to pending: inout [String: SpendDelta]) {
        let key = "\(delta.keyID)|\(delta.venue)|\(delta.day)"
        guard var sum = pending[key] else { pending[key] = delta; return }
        sum.requests += delta.requests
        sum.inputTokens += delta.inputTokens
        sum.outputTokens += delta.outputTokens
        sum.spent = sum.spent + delta.spent
        pending[key] = sum
    }

    /// Writes what was summed since the last flush.
    public func flush() async {
        let deltas = pending.withLock { state in
            defer { state = [:] }
            return Array(state.values)
        }
        guard !deltas.isEmpty else { return }
        do { try await repository.add(deltas) } catch {
            pending.withLock { state in for delta in deltas { Self.add(delta, to: &state) } }  // kept for the next flush
        }
    }
}
