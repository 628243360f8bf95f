import Foundation
import HTTPTypes
import WardenCrypto
import WardenStore
import WardenVenues

/// What a live order over its owner's `approve_above_usd` keeps: the approval and the row that says it waits.
struct ApprovalHold: Sendable {
    /// The same open order (owner, venue, client order id) already waits.
    struct AlreadyWaiting: Error {}

    let threshold: USD
    let draft: @Sendable (_ id: String, _ clientOrderID: String, _ notional: USD, _ reservation: String?) -> ApprovalRecord
    let row: @Sendable ([String: String], ApprovalRecord) -> AuditEntry

    func record(id: String, clientOrderID: String, notional: USD, reservation: String?) -> ApprovalRecord {
        draft(id, clientOrderID, notional, reservation)
    }
}

extension TradingPolicy {
    /// The approval an order of this call would wait on, when an owner whose limits hold it asks for approvals
    /// (live orders only). On a shared credential the lower of the two owners' thresholds holds, and the
    /// credential's owner, whose account the order acts on, is the one who approves.
    func approvalHold(_ admission: Admission, venue: any ExchangeVenue, outgoing: UpstreamRequest, limits: Limits) -> ApprovalHold? {
        let thresholds = [limits.owner.approveAboveUSD, limits.sharer?.profile.approveAboveUSD].compactMap { $0 }
        guard limits.live, let threshold = thresholds.min() else { return nil }
        let key = admission.key, validity = Int64(config.gateway.approvalSeconds) * 1000
        let path = admission.path.encoded, method = outgoing.method
        return ApprovalHold(
            threshold: threshold,
            draft: { id, clientOrderID, notional, reservation in
                let now = Clock.nowMillis()
                return ApprovalRecord(
                    id: id, ownerID: admission.credentialOwnerID, keyID: key.id, rootID: key.rootID, venue: venue.name, method: method,
                    path: path,
                    query: outgoing.query, body: outgoing.body, contentType: outgoing.headers[.contentType], clientOrderID: clientOrderID,
                    notional: notional, reservationID: reservation, createdAt: now, expiresAt: now + validity)
            },
            row: { details, approval in
                var detail = details
                detail["class"] = CallKind.order.rawValue
                detail["approval"] = approval.id
                detail["link"] = "/approvals/\(approval.id)"
                detail["alarm"] = AlarmEvent.approvalWaiting.rawValue
                return admission.auditEntry(.hold, outcome: .held, method: method, detail: detail)
            })
    }
}

/// Orders held for a person's approval: approved (then sent by Warden, signed afresh, within the validity),
/// rejected, or expired (their reservations released). The agent that placed one, and its owner, can read
/// what became of it.
public struct Approvals: Sendable {
    let database: Database
    let vault: Vault
    let audit: AuditLog
    let registry: VenueRegistry
    let trading: TradingPolicy
    let caller: any UpstreamCaller
    let repository: ApprovalRepository

    init(database: Database, vault: Vault, audit: AuditLog, registry: VenueRegistry, trading: TradingPolicy, caller: any UpstreamCaller) {
        self.database = database
        self.vault = vault
        self.audit = audit
        self.registry = registry
        self.trading = trading
        self.caller = caller
        repository = ApprovalRepository(database)
    }

    /// The owner's approvals, newest first (an administrator's: everyone's).
    public func list(_ p: Principal, limit: Int = 100) async throws -> [ApprovalRecord] {
        try await repository.list(ownerID: p.user.isAdmin ? nil : p.user.id, limit: max(1, min(limit, 500)))
    }

    /// One approval, for its owner (or an administrator).
    public func find(_ p: Principal, id: String) async throws -> ApprovalRecord {
        guard let approval = try await repository.find(id: id), approval.ownerID == p.user.id || p.user.isAdmin else {
            throw WardenError.notFound("approval")
        }
        return approval
    }

    /// One approval, for a key of the family that placed it.
    public func find(_ key: AgentKeyRecord, id: String) async throws -> ApprovalRecord {
        guard let approval = try await repository.find(id: id), approval.rootID == key.rootID else {
            throw WardenError.notFound("approval")
        }
        return approval
    }

    /// The owner approves: the order is sent now, signed with the credential as it is now, if the key that
    /// placed it may still trade. Exactly one approval sends it, on any server.
    public func approve(_ p: Principal, id: String) async throws -> ApprovalRecord {
        try AccessTokens.requirePerson(p)
        let approval = try await decide(p, id: id, to: .sending, action: "approval.approve")
        await send(approval, by: p.user.id)
        return try await repository.find(id: id) ?? approval
    }

    /// The owner rejects: nothing is sent, the reservation goes back.
    public func reject(_ p: Principal, id: String) async throws -> ApprovalRecord {
        try AccessTokens.requirePerson(p)
        let approval = try await decide(p, id: id, to: .rejected, action: "approval.reject")
        if let reservation = approval.reservationID { try? await trading.release(reservation) }
        return try await repository.find(id: id) ?? approval
    }

    /// Expires what waited past its validity (the server runs this every second); returns how many.
    @discardableResult
    public func expireDue(now: Int64 = Clock.nowMillis()) async -> Int {
        guard let due = try? await repository.expired(now: now) else { return 0 }
        var expired = 0
        for approval in due {
            let decided = try? await database.transaction { db in
                guard try await repository.decide(id: approval.id, to: .expired, by: nil, now: now, on: db) else { return false }
                try await audit.append(
                    AuditEntry(
                        actor: nil, owner: approval.ownerID, action: "approval.expire", target: approval.id, outcome: .recorded,
                        detail: ["venue": approval.venue, "notional_usd": approval.notional.description]), on: db)
                return true
            }
            guard decided == true else { continue }
            if let reservation = approval.reservationID { try? await trading.release(reservation) }
            expired += 1
        }
        return expired
    }

    func decide(_ p: Principal, id: String, to status: ApprovalRecord.Status, action: String) async throws -> ApprovalRecord {
        guard let approval = try await repository.find(id: id), approval.ownerID == p.user.id else {
            throw WardenError.notFound("approval")
        }
        let now = Clock.nowMillis()
        let decided = try await database.transaction { db in
            guard try await repository.decide(id: id, to: status, by: p.user.id, now: now, on: db) else { return false }
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: approval.ownerID, action: action, target: id,
                    detail: ["venue": approval.venue, "notional_usd": approval.notional.description]), on: db)
            return true
        }
        guard decided else {
            let current = try await repository.find(id: id)
            let state = current.map { $0.status == .pending && $0.expiresAt <= now ? "expired" : $0.status.rawValue } ?? "gone"
            throw WardenError(.conflict, code: "approval_\(state)", "this order is no longer waiting for approval: it is \(state)")
        }
        return approval
    }

    /// Sends an approved order: its row before it leaves, the venue's answer after; a refusal by the venue
    /// releases its reservation, an unanswered call keeps it (the venue may have taken the order).
    func send(_ approval: ApprovalRecord, by approver: String) async {
        let prepared: (Admission, UpstreamRequest, String)
        do { prepared = try await prepare(approval) } catch {
            if let reservation = approval.reservationID { try? await trading.release(reservation) }
            try? await repository.finish(id: approval.id, status: .failed, answerStatus: nil, answerBody: nil, reason: error.reason)
            try? await audit.append(
                AuditEntry(
                    actor: approver, owner: approval.ownerID, action: "approval.failed", target: approval.id, outcome: .refused,
                    detail: ["reason": error.reason]))
            return
        }
        let (admission, request, origin) = prepared
        let detail = ["class": CallKind.order.rawValue, "approval": approval.id, "approved_by": approver]
        do {
            try await audit.append(admission.auditEntry(.forward, outcome: .allowed, method: request.method, detail: detail))
        } catch {
            if let reservation = approval.reservationID { try? await trading.release(reservation) }
            try? await repository.finish(
                id: approval.id, status: .failed, answerStatus: nil, answerBody: nil, reason: "the audit log could not be written; not sent"
            )
            return
        }
        do {
            let answer = try await caller.send(request, origin: origin)
            // As for any live order: a 4xx gives the reservation back, a 5xx keeps it (the order may exist).
            if (400..<500).contains(answer.status), let reservation = approval.reservationID { try? await trading.release(reservation) }
            try? await audit.append(
                admission.auditEntry(
                    .result, outcome: .forwarded, method: request.method, detail: detail.merging(["status": String(answer.status)]) { $1 }))
            try? await repository.finish(id: approval.id, status: .sent, answerStatus: answer.status, answerBody: answer.body, reason: nil)
        } catch {
            let reason = "the venue did not answer; the order may have reached it (its reservation is kept)"
            try? await audit.append(
                admission.auditEntry(
                    .result, outcome: .upstreamError, method: request.method, detail: detail.merging(["reason": reason]) { $1 }))
            try? await repository.finish(id: approval.id, status: .failed, answerStatus: nil, answerBody: nil, reason: reason)
        }
    }

    /// The order readied as the gateway readies a live one: the key and its credential as they stand now,
    /// the call classified again, the order prepared and signed afresh.
    func prepare(_ approval: ApprovalRecord) async throws(GatewayRefusal) -> (Admission, UpstreamRequest, String) {
        func refused(_ reason: String) -> GatewayRefusal { GatewayRefusal(.forbidden, .permission, reason) }
        guard let venue = registry.venue(named: approval.venue) as? any ExchangeVenue else { throw refused("the venue is gone") }
        let resolved: ResolvedKey
        do {
            guard let key = try await AgentKeyRepository(database).find(id: approval.keyID),
                let found = try await AgentKeyRepository(database).resolve(hash: key.keyHash, venue: venue.name).key
            else { throw refused("the agent key that placed the order is gone") }
            resolved = found
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the key store is unavailable")
        }
        guard resolved.standing.isLive(at: Clock.nowMillis()) else {
            throw refused("the agent key that placed the order was revoked, expired or frozen since; nothing was sent")
        }
        guard let credential = resolved.credential, resolved.key.access == .trade else {
            throw refused("the key's credential for \(venue.name) was removed since; nothing was sent")
        }
        if credential.ownerID != resolved.key.ownerID {
            guard let grant = resolved.grantAccess, resolved.key.access.fits(grant) else {
                throw refused("the share of the credential was revoked")
            }
        }
        // The owners' settings as they are now: a limit lowered or live trading turned off since the hold holds.
        var owners: [(id: String, profile: ProfileRecord)] = []
        do {
            for id in Set([resolved.key.ownerID, credential.ownerID]).sorted() {
                owners.append((id, try await trading.profiles.get(userID: id)))
            }
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the risk settings cannot be read")
        }
        if let changed = TradingPolicy.change(
            in: owners, notional: approval.notional, mode: .live, venue: venue.name, owner: resolved.key.ownerID)
        {
            throw refused(changed)
        }
        guard let secret = Credentials.open(credential, vault: vault) else {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the credential could not be read")
        }
        let path: CanonicalPath
        do { path = try CanonicalPath(raw: approval.path) } catch { throw refused("the stored call is malformed") }
        let base = UpstreamBase(trading.config.baseURL(venue: venue.name, default: venue.defaultBaseURL))
        let admission = Admission(
            venue: venue, key: resolved.key, presentedKey: "", credentialID: credential.id, credentialOwnerID: credential.ownerID,
            secret: secret, path: path, upstreamURL: base.origin + base.prefix + path.encoded, requestID: approval.id)
        guard
            case .order(let order) = venue.classify(
                ExchangeCall(method: approval.method, path: path.description, query: approval.query, body: approval.body))
        else { throw refused("the stored call is no longer an order") }
        var headers: HTTPFields = [:]
        if let contentType = approval.contentType { headers[.contentType] = contentType }
        var request = UpstreamRequest(
            method: approval.method, path: base.prefix + path.encoded, query: approval.query, headers: headers, body: approval.body)
        do {
            try venue.refreshForDelayedSend(&request)
            let source = trading.marketSource(venue, base, secret: secret)
            let market = try await venue.marketQuery(for: order, secret: secret).asyncMap {
                try await trading.prices.body(of: $0, venue: venue.name, source: source)
            }
            try venue.prepareOrder(order, clientOrderID: approval.clientOrderID, in: &request, secret: secret, market: market)
        } catch {
            throw trading.readied(error, venue, key: resolved.key)
        }
        guard case .forward(let signed, _) = try await trading.sign(request, venue, admission, base, signed: true) else {
            throw refused("the order could not be signed")
        }
        return (admission, signed, base.origin)
    }
}

extension Error {
    /// A refusal's reason, or a plain description.
    var reason: String { (self as? GatewayRefusal)?.reason ?? "\(self)" }
}
