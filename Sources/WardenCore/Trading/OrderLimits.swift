import Foundation
import SQLKit
import WardenCrypto
import WardenStore
import WardenVenues

/// Orders and their limits: whose limits hold an order, `max_leg_usd` per order, `daily_cap_usd` per UTC day
/// (reserved in the store before the order is sent), single orders and batches.
extension TradingPolicy {
    /// Makes an order's audit row from its details.
    typealias RowMaker = @Sendable ([String: String]) -> AuditEntry

    /// An order that passed its checks: its price, id, and what it holds against the caps.
    struct Held: Sendable {
        enum Hold: Sendable {
            /// Its own reservation, released if the venue refuses the order.
            case reserved(id: String)
            /// None: it is the very same order as one that still holds a reservation (a venue that never
            /// executes the same content twice).
            case retryOfReserved
        }
        let order: OrderIntent
        let priced: Priced
        let notional: USD
        let clientOrderID: String
        let hold: Hold
        let audit: [String: String]
        /// Set when the order went over its owner's `approve_above_usd`: the approval it waits on.
        var approval: String? = nil

        var reservation: String? { if case .reserved(let id) = hold { id } else { nil } }
    }

    /// Whose limits an order is held under: the key owner's, and for a shared credential its owner's too.
    struct Limits: Sendable {
        let owner: ProfileRecord
        /// The credential owner's id and settings, when the credential is shared with the key's owner.
        let sharer: (id: String, profile: ProfileRecord)?
        /// Live only when every owner whose limits apply has passed go-live for the venue.
        let live: Bool

        /// Every owner whose limits apply, the key's owner (`ownerID`) first.
        func owners(_ ownerID: String) -> [(id: String, profile: ProfileRecord)] {
            [(ownerID, owner)] + (sharer.map { [($0.id, $0.profile)] } ?? [])
        }
    }

    func limits(_ admission: Admission, venue: String) async throws(GatewayRefusal) -> Limits {
        let owner = try await profile(admission.key)
        guard !admission.ownsCredential else { return Limits(owner: owner, sharer: nil, live: owner.isLive(venue)) }
        let sharer: ProfileRecord
        do { sharer = try await profile(userID: admission.credentialOwnerID) } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the risk settings cannot be read", key: admission.key)
        }
        return Limits(owner: owner, sharer: (admission.credentialOwnerID, sharer), live: owner.isLive(venue) && sharer.isLive(venue))
    }

    /// Prices one order, holds it under every applicable `max_leg_usd`, and reserves it against every applicable
    /// `daily_cap_usd`. With `record`, the reservation is made in the audit's next group commit, with the row
    /// `record` makes from the order's details: both are on disk together, or neither is.
    func hold(
        _ order: OrderIntent, _ venue: any ExchangeVenue, _ source: MarketSource, key: AgentKeyRecord, credentialID: String,
        limits: Limits, revision: Int64?, record: RowMaker? = nil, approval: ApprovalHold? = nil
    ) async throws(GatewayRefusal) -> Held {
        let priced = try await price(order, venue, source, key: key)
        guard let notional = USD(roundingUp: priced.usd), notional > .zero else {
            throw GatewayRefusal(
                .badRequest, .invalidRequest, "the order's notional must be above zero and below \(USD.limit) USD", key: key)
        }
        let mode: TradeMode = limits.live ? .live : .paper
        if let reason = Self.change(in: limits.owners(key.ownerID), notional: notional, mode: mode, venue: venue.name, owner: key.ownerID) {
            throw GatewayRefusal(.forbidden, .permission, reason, key: key)
        }
        // A burst trips the family's breakers before anything is reserved or sent.
        // On a shared credential the credential's owner's breakers hold too: each at the lower of the two.
        let breakerLimits = limits.sharer.map { limits.owner.breakers.strictest($0.profile.breakers) } ?? limits.owner.breakers
        if let tripped = await breakers.count(.orders, key: key, revision: revision, amount: 1, limits: breakerLimits) { throw tripped }
        if let tripped = await breakers.count(.notional, key: key, revision: revision, amount: notional.micros, limits: breakerLimits) {
            throw tripped
        }
        let clientOrderID = order.clientOrderID ?? Self.newClientOrderID()
        var audit = [
            "instrument": String(order.instrument.prefix(80)), "side": order.side.rawValue,
            "notional_usd": notional.description, "client_order_id": String(clientOrderID.prefix(80)), "mode": mode.rawValue,
        ]
        if let sharer = limits.sharer { audit["credential_owner"] = sharer.id }
        // The same content on another credential is signed by another wallet: another order.
        let fingerprint = order.fingerprint.map { credentialID + ":" + $0 }
        let ledgerOrder = TradeRepository.Order(
            venue: venue.name, clientOrderID: clientOrderID, fingerprint: fingerprint, mode: mode,
            day: SpendRepository.day(), notional: notional)
        let trades = TradeRepository(database), store = ProfileRepository(database)
        // The limits checked above are the key cache's; the reservation's own transaction reads them again as
        // stored, so a limit lowered or live trading turned off by another process holds for this order.
        let reserve = { @Sendable (db: any SQLDatabase) async throws -> Reserved in
            let stored = try await Self.stored(limits, of: key.ownerID, in: store, on: db)
            if let changed = Self.change(in: stored, notional: notional, mode: mode, venue: venue.name, owner: key.ownerID) {
                return .changed(changed)
            }
            let caps = stored.map { TradeLimit(ownerID: $0.id, dailyCap: $0.profile.dailyCapUSD) }
            return .ledger(try await trades.reserve(ledgerOrder, limits: caps, on: db), caps: caps)
        }
        // A live order over the owner's approval threshold is reserved and kept, with its own row, not sent.
        let awaiting = record == nil ? nil : approval.flatMap { notional > $0.threshold ? $0 : nil }
        let approvalID = UUID().uuidString.lowercased()
        if awaiting != nil { audit["approval"] = approvalID }
        let reserved: Reserved
        do {
            if let record {
                let details = audit
                let approvals = ApprovalRepository(database)
                reserved = try await self.audit.commit { db in
                    let reserved = try await reserve(db)
                    guard case .ledger(let reservation, _) = reserved else { return (reserved, nil) }
                    if case .overCap = reservation { return (reserved, nil) }
                    if let awaiting {
                        let id = if case .reserved(let id) = reservation { id } else { nil as String? }
                        let kept = awaiting.record(id: approvalID, clientOrderID: clientOrderID, notional: notional, reservation: id)
                        guard try await approvals.insert(kept, on: db) else { throw ApprovalHold.AlreadyWaiting() }
                        return (reserved, awaiting.row(details, kept))
                    }
                    return (reserved, record(reservation == .sameOrder ? details.merging(["retry": "true"]) { $1 } : details))
                }
            } else {
                reserved = try await database.transaction { db in try await reserve(db) }
            }
        } catch is ApprovalHold.AlreadyWaiting {
            // The same order (its client order id) already waits: this one is that one.
            let waiting = try? await ApprovalRepository(database).open(
                ownerID: limits.sharer?.id ?? key.ownerID, venue: venue.name, clientOrderID: clientOrderID)
            throw GatewayRefusal(
                .conflict, .invalidRequest,
                "this order (client order id \(clientOrderID)) already waits for approval\(waiting.map { " as \($0.id)" } ?? "")", key: key)
        } catch {
            throw GatewayRefusal(
                .serviceUnavailable, .unavailable, "the trade ledger or the audit log is unavailable; the order was not sent",
                key: key)
        }
        let (reservation, caps): (TradeReservation, [TradeLimit])
        switch reserved {
        case .changed(let reason): throw GatewayRefusal(.forbidden, .permission, reason, key: key)
        case .ledger(let made, let applied): (reservation, caps) = (made, applied)
        }
        switch reservation {
        case .overCap(let ownerID, let used):
            let whose = ownerID == key.ownerID ? "" : "the credential owner's "
            let cap = (ownerID == key.ownerID ? caps[0] : caps[caps.count - 1]).dailyCap
            var refusal = GatewayRefusal(
                .forbidden, .permission,
                "the order's \(notional) USD would take \(whose)\(mode) volume today to \(used + notional) USD, past \(whose)daily_cap_usd (\(cap) USD); it resets at 00:00 UTC",
                key: key)
            refusal.alarm = .capReached
            throw refusal
        case .sameOrder:
            guard limits.live else {
                throw GatewayRefusal(.badRequest, .invalidRequest, "the simulator already filled this very order", key: key)
            }
            audit["retry"] = "true"
            return Held(
                order: order, priced: priced, notional: notional, clientOrderID: clientOrderID, hold: .retryOfReserved, audit: audit)
        case .reserved(let id):
            return Held(
                order: order, priced: priced, notional: notional, clientOrderID: clientOrderID, hold: .reserved(id: id), audit: audit,
                approval: awaiting == nil ? nil : approvalID)
        }
    }

    /// What a reservation's transaction came to: the ledger's answer, or a change of the owners' settings
    /// (since the key cache read them) that refuses the order.
    enum Reserved: Sendable {
        /// The ledger's answer, and the caps it applied (the owner's first).
        case ledger(TradeReservation, caps: [TradeLimit])
        case changed(String)
    }

    /// The order's owners (the key's owner first, then a shared credential's owner) with their settings as
    /// stored now; an owner with no stored settings keeps the ones checked (the defaults).
    static func stored(
        _ limits: Limits, of ownerID: String, in store: ProfileRepository, on db: any SQLDatabase
    ) async throws -> [(id: String, profile: ProfileRecord)] {
        var stored: [(id: String, profile: ProfileRecord)] = []
        for (id, checked) in limits.owners(ownerID) { stored.append((id, try await store.find(userID: id, on: db) ?? checked)) }
        return stored
    }

    /// Why the owners' settings (as checked first, or as stored now) do not allow the order, if they do not.
    static func change(
        in stored: [(id: String, profile: ProfileRecord)], notional: USD, mode: TradeMode, venue: String, owner: String
    ) -> String? {
        for (id, profile) in stored {
            let whose = id == owner ? "" : "the credential owner's "
            if notional > profile.maxLegUSD {
                return "the order's notional of \(notional) USD exceeds \(whose)max_leg_usd (\(profile.maxLegUSD) USD)"
            }
            if mode == .live, !profile.isLive(venue) {
                return "\(whose)live trading at \(venue) was turned off; the order was not sent"
            }
        }
        return nil
    }

    func release(_ held: [Held]) async {
        for id in held.compactMap(\.reservation) { try? await TradeRepository(database).release(id: id) }
    }

    func plan(
        order: OrderIntent, _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
        _ base: UpstreamBase
    ) async throws(GatewayRefusal) -> TradePlan {
        let limits = try await limits(admission, venue: venue.name)
        let source = marketSource(venue, base, secret: admission.secret)
        // A live order is recorded as it is reserved, in one commit: the row is on disk before it is sent.
        var record: RowMaker?
        if limits.live {
            let method = outgoing.method
            record = { details in
                var detail = details
                detail["class"] = CallKind.order.rawValue
                return admission.auditEntry(.forward, outcome: .allowed, method: method, detail: detail)
            }
        }
        let held = try await hold(
            order, venue, source, key: admission.key, credentialID: admission.credentialID, limits: limits, revision: admission.revision,
            record: record,
            approval: approvalHold(admission, venue: venue, outgoing: outgoing, limits: limits))
        if let approval = held.approval {
            let (_, body) = venue.errorBody(
                status: .forbidden, kind: .permission,
                message: "held for approval: the order's \(held.notional) USD is above approve_above_usd; a person must approve it "
                    + "within \(config.gateway.approvalSeconds) s. Nothing was sent. Poll GET /api/v1/approvals/\(approval) with this agent key"
            )
            return TradePlan(route: .held(status: .forbidden, body: body), kind: .order, audit: held.audit)
        }
        guard limits.live else {
            let answer = try await simulate(held, profile: limits.owner, venue, source, key: admission.key)
            return TradePlan(route: .answer(status: answer.status, body: answer.body), kind: .order, audit: held.audit)
        }
        do {
            var request = outgoing
            let market = try await venue.marketQuery(for: order, secret: admission.secret).asyncMap {
                try await prices.body(of: $0, venue: venue.name, source: source)
            }
            try venue.prepareOrder(order, clientOrderID: held.clientOrderID, in: &request, secret: admission.secret, market: market)
            return TradePlan(
                route: try await sign(request, venue, admission, base, signed: true), kind: .order, audit: held.audit,
                reservations: held.reservation.map { [$0] } ?? [], recorded: true)
        } catch {
            await release([held])
            throw readied(error, venue, key: admission.key)
        }
    }

    /// A batch: every order passes alone (a refusal of one releases the others and refuses the batch),
    /// then all are simulated, or all are readied and sent together.
    func plan(
        batch orders: [OrderIntent], _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
        _ base: UpstreamBase
    ) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        let limits = try await limits(admission, venue: venue.name)
        let source = marketSource(venue, base, secret: admission.secret)
        let live = limits.live
        var held: [Held] = []
        let threshold = limits.owner.approveAboveUSD
        for order in orders {
            do throws(GatewayRefusal) {
                let one = try await hold(
                    order, venue, source, key: key, credentialID: admission.credentialID, limits: limits, revision: admission.revision)
                held.append(one)
                if live, let threshold, one.notional > threshold {
                    throw GatewayRefusal(
                        .forbidden, .permission,
                        "an order of \(one.notional) USD in this batch is above approve_above_usd (\(threshold) USD): send it alone, to be approved",
                        key: key)
                }
            } catch {
                await release(held)
                throw error
            }
        }
        let total = held.reduce(USD.zero) { $0 + $1.notional }
        var audit = [
            "count": String(held.count), "notional_usd": total.description,
            "mode": (live ? TradeMode.live : .paper).rawValue,
            "client_order_ids": String(held.map(\.clientOrderID).joined(separator: ",").prefix(400)),
        ]
        if let sharer = limits.sharer { audit["credential_owner"] = sharer.id }
        guard live else {
            var answers: [Data] = []
            for (index, one) in held.enumerated() {
                do {
                    let answer = try await simulate(one, profile: limits.owner, venue, source, key: key)
                    answers.append(answer.body)
                } catch {
                    await release(Array(held[(index + 1)...]))
                    throw readied(error, venue, key: key)
                }
            }
            return TradePlan(route: .answer(status: .ok, body: venue.simulatedBatch(answers)), kind: .orders, audit: audit)
        }
        do {
            var markets: [String: Data] = [:]
            for order in orders where markets[order.instrument] == nil {
                if let query = venue.marketQuery(for: order, secret: admission.secret) {
                    markets[order.instrument] = try await prices.body(of: query, venue: venue.name, source: source)
                }
            }
            var request = outgoing
            try venue.prepareBatch(orders, in: &request, secret: admission.secret, markets: markets)
            return TradePlan(
                route: try await sign(request, venue, admission, base, signed: true), kind: .orders, audit: audit,
                reservations: held.compactMap(\.reservation))
        } catch {
            await release(held)
            throw readied(error, venue, key: key)
        }
    }

    func readied(_ error: any Error, _ venue: any ExchangeVenue, key: AgentKeyRecord) -> GatewayRefusal {
        (error as? GatewayRefusal)
            ?? GatewayRefusal(.badGateway, .upstream, "the order could not be readied for \(venue.name): \(error)", key: key)
    }

    static func newClientOrderID() -> String {
        // Two draws from the system's generator (each a system call), not one per byte.
        var generator = SystemRandomNumberGenerator()
        let (high, low): (UInt64, UInt32) = (generator.next(), generator.next())
        return "wdn-" + Hex.encode(withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) })
    }
}
