import Foundation
import HTTPTypes
import Synchronization
import WardenStore
import WardenVenues

/// A stream of requests that act on the account (Binance's WebSocket API). Each request is admitted on
/// the key it names (its `apiKey`, or the key the stream logged on with), then taken as its REST twin:
/// classified, priced, reserved and signed by the trading policy as that call would be, its row on disk
/// before an order leaves, then written back in the stream's form. The venue's answer, matched by id,
/// settles it: a refusal (4xx) gives the reservation back, anything else keeps it, as for REST.
final class VenueRequests: StreamPolicy {
    let gateway: Gateway
    let venue: any StreamRequestVenue
    private let state = Mutex(State())

    struct State {
        /// The key the stream logged on with (or named at its handshake), for requests that name none.
        var key: String?
        /// Sent and not yet answered, by the id Warden sent them under.
        var pending: [StreamRequestID: Pending] = [:]
        var sent = 0
    }

    /// A request sent up under Warden's own id (so that no answer can be taken for another request's, whatever
    /// ids the agent reuses), with the agent's id to give its answer back, and an order's reservation.
    struct Pending: Sendable {
        let agentID: StreamRequestID
        let order: Order?
    }

    struct Order: Sendable {
        let admission: Admission
        let tickets: [String]
        let detail: [String: String]
        let sent: ContinuousClock.Instant
    }

    /// Requests waiting for their answers at most; more are refused until some are answered.
    static let maxPending = 1024
    /// This stream's prefix of Warden's request ids.
    let idPrefix = "wdn" + String(UInt32.random(in: .min ... .max), radix: 16) + "-"

    var readsAgent: Bool { true }
    var readsVenue: Bool { true }

    init(gateway: Gateway, venue: any StreamRequestVenue, handshake: Admission?) {
        self.gateway = gateway
        self.venue = venue
        state.withLock { $0.key = handshake?.presentedKey }
    }

    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep {
        let wardenID = state.withLock { state -> String? in
            guard state.pending.count < Self.maxPending else { return nil }
            state.sent += 1
            return idPrefix + String(state.sent)
        }
        guard let wardenID, let upID = StreamRequestID(wardenID) else {
            let refusal = GatewayRefusal(.tooManyRequests, .rateLimit, "\(Self.maxPending) requests are already waiting for their answers")
            return refuse(refusal, id: Self.id(of: venue.streamRequest(message, forwardAs: "")), method: "", session)
        }
        switch venue.streamRequest(message, forwardAs: wardenID) {
        case .refused(let id, let reason):
            session.record(.refuse, outcome: .refused, ["reason": reason, "status": "400"])
            let body = venue.errorBody(status: .badRequest, kind: .invalidRequest, message: "refused by Warden: " + reason).body
            return .answer(venue.streamAnswer(id: id ?? StreamRequestID(nil)!, status: 400, body: body))
        case .publicData(let id, let forwarded):
            state.withLock { $0.pending[upID] = Pending(agentID: id, order: nil) }
            return .forward(forwarded)
        case .session(let id, let method, let apiKey):
            return await sessionRequest(id: id, method: method, apiKey: apiKey, session)
        case .signedRead(let id, let method, let apiKey):
            do {
                let admission = try await admit(apiKey, restMethod: "GET", path: "/ws-api/v3", id: id, method: method, session)
                session.record(.forward, outcome: .allowed, Self.detail(id, method, ["class": CallKind.privateRead.rawValue]), admission)
                state.withLock { $0.pending[upID] = Pending(agentID: id, order: nil) }
                return .forward(venue.streamSigned(id: upID, method: method, secret: admission.secret, now: Date()))
            } catch {
                return refuse(error, id: id, method: method, session)
            }
        case .rest(let id, let method, let restMethod, let path, let form, let apiKey):
            do {
                return try await rest(
                    id: id, upID: upID, method: method, restMethod: restMethod, path: path, form: form, apiKey: apiKey, session)
            } catch {
                return refuse(error, id: id, method: method, session)
            }
        }
    }

    /// A request taken as its REST twin, through the trading policy.
    func rest(
        id: StreamRequestID, upID: StreamRequestID, method: String, restMethod: String, path: String, form: String, apiKey: String?,
        _ session: StreamSession
    ) async throws(GatewayRefusal) -> StreamStep {
        let admission = try await admit(apiKey, restMethod: restMethod, path: path, id: id, method: method, session)
        let plan = try await gateway.trading.plan(
            admission, venue: venue, method: restMethod, query: "", body: Data(form.utf8),
            headers: [.contentType: "application/x-www-form-urlencoded"])
        let detail = Self.detail(id, method, plan.audit)
        switch plan.route {
        case .answer(let status, let body):
            session.record(.simulate, outcome: .dryRun, detail.merging(["status": String(status.code)]) { $1 }, admission)
            return .answer(venue.streamAnswer(id: id, status: status.code, body: body))
        case .held(let status, let body):
            return .answer(venue.streamAnswer(id: id, status: status.code, body: body))
        case .walletAuth, .redacted:
            throw GatewayRefusal(.forbidden, .permission, "\(method) is not relayed on the stream", key: admission.key)
        case .forward(let signed, _):
            let message: Data
            do { message = try venue.streamMessage(id: upID, method: method, from: signed, secret: admission.secret) } catch {
                await release(plan.reservations)
                throw GatewayRefusal(.badRequest, .invalidRequest, error.description, key: admission.key)
            }
            if !plan.kind.isRead, !plan.recorded {
                do { try await gateway.audit.append(session.entry(.forward, outcome: .allowed, detail, admission)) } catch {
                    await release(plan.reservations)
                    throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the request was not sent")
                }
            }
            let order = Order(admission: admission, tickets: plan.reservations, detail: detail, sent: .now)
            state.withLock { $0.pending[upID] = Pending(agentID: id, order: order) }
            return .forward(message)
        }
    }

    /// `session.logon` checks the key it names and keeps it for the requests that name none; Warden signs
    /// every request itself, so the venue's session is never logged on.
    func sessionRequest(id: StreamRequestID, method: String, apiKey: String?, _ session: StreamSession) async -> StreamStep {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        switch method {
        case "session.logon":
            do {
                let admission = try await admit(apiKey, restMethod: "GET", path: "/ws-api/v3", id: id, method: method, session)
                state.withLock { $0.key = admission.presentedKey }
                session.record(.result, outcome: .allowed, Self.detail(id, method, ["status": "200"]), admission)
                let result = VenueJSON.encode([
                    "apiKey": admission.presentedKey, "authorizedSince": now, "connectedSince": now, "returnRateLimits": false,
                    "serverTime": now, "userDataStream": false,
                ])
                return .answer(venue.streamAnswer(id: id, status: 200, body: result))
            } catch {
                return refuse(error, id: id, method: method, session)
            }
        case "session.logout":
            state.withLock { $0.key = nil }
            return .answer(venue.streamAnswer(id: id, status: 200, body: VenueJSON.encode(["serverTime": now])))
        default:
            let key = state.withLock { $0.key }
            var result: [String: Any] = ["serverTime": now, "returnRateLimits": false, "userDataStream": false]
            result["apiKey"] = key ?? NSNull()
            return .answer(venue.streamAnswer(id: id, status: 200, body: VenueJSON.encode(result)))
        }
    }

    /// The request's key (its own, or the stream's), admitted as a call to the REST twin would be.
    func admit(
        _ apiKey: String?, restMethod: String, path: String, id: StreamRequestID, method: String, _ session: StreamSession
    ) async throws(GatewayRefusal) -> Admission {
        guard let key = apiKey ?? state.withLock({ $0.key }) else {
            throw GatewayRefusal(
                .unauthorized, .authentication, "no Warden agent key: send it as the request's apiKey, or log on with session.logon")
        }
        var admission = try await gateway.admit(
            venue: venue, method: restMethod, rawPath: path, query: nil, headers: [Gateway.wardenKeyHeader: key],
            requestID: session.subject.requestID)
        admission.auditTags = Self.detail(id, method, ["stream": "websocket"]).merging(session.client) { $1 }
        try session.adopt(admission)
        return admission
    }

    func refuse(_ refusal: GatewayRefusal, id: StreamRequestID, method: String, _ session: StreamSession) -> StreamStep {
        let outcome: Outcome =
            switch refusal.kind {
            case .rateLimit: .rateLimited
            case .budget: .budgetExceeded
            default: .refused
            }
        gateway.countRefusal(refusal)
        session.record(
            .refuse, outcome: outcome, Self.detail(id, method, ["reason": refusal.reason, "status": String(refusal.status.code)]),
            key: refusal.key)
        let body = venue.errorBody(status: refusal.status, kind: refusal.kind, message: refusal.reason).body
        return .answer(venue.streamAnswer(id: id, status: refusal.status.code, body: body))
    }

    /// An answer goes back to the agent under the agent's id; an order's answer settles its reservation.
    func fromVenue(_ message: Data, _ session: StreamSession) async -> StreamStep {
        guard let (id, status) = venue.streamAnswerStatus(message),
            let pending = state.withLock({ $0.pending.removeValue(forKey: id) })
        else { return .relay(message) }
        var answer = message
        if let range = answer.range(of: Data(id.json.utf8)) { answer.replaceSubrange(range, with: Data(pending.agentID.json.utf8)) }
        guard let order = pending.order else { return .relay(answer) }
        var detail = order.detail
        detail["status"] = String(status)
        detail["ms"] = GatewayCalls.milliseconds(since: order.sent)
        if !order.tickets.isEmpty {
            if (400..<500).contains(status) {
                await release(order.tickets)
                detail["reservation"] = "released"
            } else {
                detail["reservation"] = "kept"
            }
        }
        session.record(.result, outcome: .forwarded, detail, order.admission)
        return .relay(answer)
    }

    /// Requests still unanswered when the stream closed: the venue may have acted on them, so their
    /// reservations stay, and each gets its row.
    func ended(_ session: StreamSession) async {
        let open = state.withLock { state in
            defer { state.pending = [:] }
            return state.pending.values.compactMap(\.order)
        }
        for order in open {
            var detail = order.detail
            detail["reservation"] = order.tickets.isEmpty ? nil : "kept"
            detail["ended"] = "unanswered"
            session.record(.result, outcome: .interrupted, detail, order.admission)
        }
    }

    func release(_ tickets: [String]) async {
        for ticket in tickets { try? await gateway.trading.release(ticket) }
    }

    /// The agent's id of a request as read (null when it named none readable).
    static func id(of request: StreamRequest) -> StreamRequestID {
        switch request {
        case .session(let id, _, _), .publicData(let id, _), .signedRead(let id, _, _), .rest(let id, _, _, _, _, _): id
        case .refused(let id, _): id ?? StreamRequestID(nil)!
        }
    }

    static func detail(_ id: StreamRequestID, _ method: String, _ extra: [String: String]) -> [String: String] {
        extra.merging(["ws_method": String(method.prefix(64)), "ws_id": String(id.json.prefix(64))]) { $1 }
    }
}
