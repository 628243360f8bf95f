import Foundation
import HTTPTypes
import Synchronization
import WardenStore
import WardenVenues

/// What to do with one message of a stream: what goes to the venue, what goes to the agent (each in
/// order), and whether the stream must close.
public struct StreamStep: Sendable {
    public var toVenue: [Data] = []
    public var toAgent: [Data] = []
    /// Why the stream must close once these are sent (a policy the venue broke by itself).
    public var close: String? = nil

    /// The agent's message (perhaps rewritten) goes up.
    public static func forward(_ message: Data) -> StreamStep { StreamStep(toVenue: [message]) }
    /// Warden answers the agent itself; nothing goes up.
    public static func answer(_ message: Data) -> StreamStep { StreamStep(toAgent: [message]) }
    /// The venue's message (perhaps rewritten) goes down.
    public static func relay(_ message: Data) -> StreamStep { StreamStep(toAgent: [message]) }
}

/// What a stream applies to the messages that could act on the account (see `StreamRoute`).
protocol StreamPolicy: Sendable {
    /// Whether the agent's messages are read (else they are relayed unread).
    var readsAgent: Bool { get }
    /// Whether the venue's messages are read (else they are relayed unread).
    var readsVenue: Bool { get }
    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep
    func fromVenue(_ message: Data, _ session: StreamSession) async -> StreamStep
    /// What Warden sends the venue before any of the agent's messages.
    var opening: [Data] { get }
    /// The stream closed: whatever it still holds (reservations) is settled.
    func ended(_ session: StreamSession) async
}

extension StreamPolicy {
    var opening: [Data] { [] }
    func fromVenue(_ message: Data, _ session: StreamSession) async -> StreamStep { .relay(message) }
    func ended(_ session: StreamSession) async {}
}

/// Relays both ways unread: a REST service's stream, a public market stream.
struct Unread: StreamPolicy {
    var readsAgent: Bool { false }
    var readsVenue: Bool { false }
    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep { .forward(message) }
}

/// Each command the agent sends is taken as the venue classifies it (`VenueAdapter.streamCommand`): the
/// venue's subscriptions pass, anything else is answered with the venue's stream error, the stream open.
struct VenueCommands: StreamPolicy {
    var readsAgent: Bool { true }
    var readsVenue: Bool { false }

    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep {
        switch session.subject.venue.streamCommand(message) {
        case .read: return .forward(message)
        case .refused(let reason):
            session.record(.refuse, outcome: .refused, ["reason": reason, "status": "403"])
            return .answer(session.subject.venue.streamError("refused by Warden: " + reason, to: message))
        }
    }
}

/// One WebSocket between an agent and a venue, from its handshake to its close: the policy its
/// messages are held to, the counts its closing audit row reports, and whether its key still stands.
public final class StreamSession: Sendable {
    let gateway: Gateway
    let subject: CallSubject
    let policy: any StreamPolicy
    /// The key as the agent presented it, looked up again while the stream is open; nil on a keyless stream
    /// (until a request on it names one: `adopt`).
    private let presented: Mutex<String?>
    /// The admission of the key a keyless stream's requests named (see `adopt`).
    private let requestKey = Mutex<Admission?>(nil)
    let client: [String: String]
    /// Whose place among the open streams it holds (`OpenStreams`): its key family's, or its client's until a
    /// request on it names a key.
    private let holding: Mutex<String>
    var holder: String { holding.withLock { $0 } }
    let opened = ContinuousClock.now
    private let counts = Mutex(Counts())

    struct Counts {
        var agentMessages = 0, agentBytes = 0, venueMessages = 0, venueBytes = 0
    }

    /// How long the agent may stay silent before the stream is closed.
    public let idleTimeout: Duration
    /// The agent's messages are read (not relayed unread).
    public var readsAgent: Bool { policy.readsAgent }
    /// The venue's messages are read (not relayed unread).
    public var readsVenue: Bool { policy.readsVenue }

    init(
        gateway: Gateway, subject: CallSubject, policy: any StreamPolicy, presented: String?, holder: String,
        client: [String: String], idleTimeout: Duration
    ) {
        self.holding = Mutex(holder)
        self.gateway = gateway
        self.subject = subject
        self.policy = policy
        self.presented = Mutex(presented)
        self.client = client
        self.idleTimeout = idleTimeout
    }

    /// What goes to the venue before any of the agent's messages.
    public var opening: [Data] { policy.opening }

    /// A message from the agent, counted, then taken as the policy says.
    public func fromAgent(_ message: Data) async -> StreamStep {
        count(agent: message.count)
        return await policy.fromAgent(message, self)
    }

    /// A message from the venue, counted, then taken as the policy says.
    public func fromVenue(_ message: Data) async -> StreamStep {
        count(venue: message.count)
        return await policy.fromVenue(message, self)
    }

    /// Counts a message relayed unread.
    public func count(agent bytes: Int) {
        counts.withLock {
            $0.agentMessages += 1; $0.agentBytes += bytes
        }
    }
    public func count(venue bytes: Int) {
        counts.withLock {
            $0.venueMessages += 1; $0.venueBytes += bytes
        }
    }

    var agentBytes: Int { counts.withLock { $0.agentBytes } }

    /// Why the stream must close now: its key was revoked or expired, frozen, or its owner disabled
    /// (looked up as a call would be, so a change made anywhere is seen within the key cache's poll).
    public func mustClose() async -> String? {
        guard let presented = presented.withLock({ $0 }) else { return nil }
        do { _ = try await gateway.resolve(venue: subject.venue, presented: presented) } catch { return error.reason }
        return nil
    }

    /// The key a request on a keyless stream named, watched from now on like a handshake's (its closing row
    /// names it), the stream counted among its family's from now on. Refused when the stream already has
    /// another key (one stream, one key), or the family already holds `stream_max_per_key` streams.
    func adopt(_ admission: Admission) throws(GatewayRefusal) {
        let first = try presented.withLock { (presented: inout String?) throws(GatewayRefusal) -> Bool in
            if let presented {
                guard presented == admission.presentedKey else {
                    throw GatewayRefusal(.forbidden, .permission, "this stream already carries another agent key", key: admission.key)
                }
                return false
            }
            presented = admission.presentedKey
            return true
        }
        guard first else { return }
        let family = "key:" + admission.key.rootID
        let limit = gateway.config.gateway.streamMaxPerKey
        guard gateway.streams.take(family, limit: limit) else {
            presented.withLock { $0 = nil }
            throw GatewayRefusal(
                .tooManyRequests, .rateLimit,
                "\(limit) streams are already open for this key and the keys minted from it (stream_max_per_key)", key: admission.key)
        }
        let client = holding.withLock { holder in
            defer { holder = family }
            return holder
        }
        gateway.streams.give(client)
        requestKey.withLock { $0 = admission }
    }

    /// The stream ended: what it holds is settled, and its closing row says how it ended and what it carried.
    public func closed(_ reason: String) async {
        gateway.streams.give(holder)
        await policy.ended(self)
        let c = counts.withLock { $0 }
        record(
            .streamClose, outcome: .ok,
            [
                "reason": String(reason.prefix(256)), "agent_messages": String(c.agentMessages), "agent_bytes": String(c.agentBytes),
                "venue_messages": String(c.venueMessages), "venue_bytes": String(c.venueBytes),
                "ms": GatewayCalls.milliseconds(since: opened),
            ], subject.key == nil ? requestKey.withLock { $0 } : nil)
    }

    /// A row about this stream, or about one of its messages (`admission`: a request admitted on its own key),
    /// named by the stream's request id.
    func record(_ step: GatewayStep, outcome: Outcome, _ detail: [String: String], _ admission: Admission? = nil) {
        gateway.audit.record(entry(step, outcome: outcome, detail, admission))
    }

    /// A refusal's row, naming the key it was made with if any.
    func record(_ step: GatewayStep, outcome: Outcome, _ detail: [String: String], key: AgentKeyRecord?) {
        var row = entry(step, outcome: outcome, detail)
        if let key, subject.key == nil {
            row.actorID = "key:\(key.id)"
            row.ownerID = key.ownerID
        }
        gateway.audit.record(row)
    }

    func entry(_ step: GatewayStep, outcome: Outcome, _ detail: [String: String], _ admission: Admission? = nil) -> AuditEntry {
        var detail = detail
        for (name, value) in client { detail[name] = value }
        detail["stream"] = "websocket"
        if let admission {
            return admission.auditEntry(step, outcome: outcome, method: "WS", detail: detail)
        }
        return .gateway(
            step, outcome: outcome, venue: subject.venue.name, key: subject.key, credentialID: subject.credentialID,
            credentialOwnerID: subject.credentialOwnerID, method: "GET", path: subject.path.description,
            requestID: subject.requestID, detail: detail)
    }
}
