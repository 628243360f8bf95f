import Foundation
import Synchronization
import WardenStore
import WardenVenues

/// An LLM's realtime session (OpenAI Realtime) on an agent key. Each response the agent asks for
/// (`response.create`) gets an output ceiling written in and its worst case reserved against the key's
/// family budget before it goes up; the venue's `response.done` reports what it used, and the
/// reservation is settled to that. A response the venue starts on its own (voice activity detection)
/// was not reserved: on a key with a budget Warden cancels it at once and tells the agent why.
///
/// The worst case of a response's input is everything the conversation can hold: every byte the agent
/// sent on the stream (a token is at least a byte, audio included) plus every output token so far
/// (earlier answers are read again as input), plus the venue's framing.
///
/// On a key with a budget the venue must not start responses by itself: before any of the agent's events
/// Warden turns turn detection's `create_response` off and caps the session's output at
/// `default_max_output_tokens` (in the beta's and the GA's session shapes: the venue refuses the one it
/// does not speak, and that refusal is not passed on), and writes both again in every `session.update` the
/// agent sends. Should a venue start one all the same, the stream's deposit pays for it: a budgeted stream
/// holds one such response's worst case against the budget for as long as it is open (its handshake is
/// refused when that does not fit), given back at its close.
final class RealtimeBudget: StreamPolicy {
    let gateway: Gateway
    let admission: Admission
    let price: WardenConfig.ModelPrice?
    private let state = Mutex(State())

    struct Pending: Sendable {
        let eventID: String
        let reservation: Reservation
    }

    struct State {
        /// Asked for and sent, not yet started by the venue, in order.
        var waiting: [Pending] = []
        /// Started by the venue, by response id.
        var running: [String: Reservation] = [:]
        var outputTokens = 0
        /// A response the venue started by itself on a budgeted key: the stream closes when it is done.
        var closing: String?
        /// Held while a budgeted stream is open: what a response the venue starts by itself can cost.
        var deposit: Reservation?
    }

    var readsAgent: Bool { true }
    var readsVenue: Bool { true }
    var budgeted: Bool { admission.key.dailyBudgetUSD != nil }

    /// The event ids of Warden's own session updates, whose `error` answers go no further.
    static let ownEvents: Set<String> = ["wdn_no_auto_response_beta", "wdn_no_auto_response"]

    var opening: [Data] {
        guard budgeted else { return [] }
        let off: [String: Any] = ["type": "server_vad", "create_response": false]
        let ceiling = gateway.config.gateway.defaultMaxOutputTokens
        return [
            VenueJSON.encode([
                "type": "session.update", "event_id": "wdn_no_auto_response_beta",
                "session": ["turn_detection": off, "max_response_output_tokens": ceiling],
            ]),
            VenueJSON.encode([
                "type": "session.update", "event_id": "wdn_no_auto_response",
                "session": ["type": "realtime", "audio": ["input": ["turn_detection": off]], "max_output_tokens": ceiling],
            ]),
        ]
    }

    /// The deposit of a budgeted stream: one response the venue might start by itself, at the session's
    /// output cap, held for as long as the stream is open; a family that cannot hold it is refused.
    func holdDeposit() async throws(GatewayRefusal) {
        guard let budget = admission.key.dailyBudgetUSD, let price else { return }
        let key = admission.key, day = SpendRepository.day()
        guard let worst = price.cost(input: Gateway.inputOverheadTokens, output: gateway.config.gateway.defaultMaxOutputTokens),
            let least = USD(micros: 1)
        else { throw GatewayRefusal(.forbidden, .permission, "the stream's deposit cannot be priced", key: key) }
        let amount = max(worst, least)  // at least a micro-dollar: a spent family is refused at any price
        try await gateway.reserve(amount, budget: budget, keyID: key.rootID, venue: admission.venue.name, day: day, key: key)
        let deposit = Reservation(keyID: key.rootID, venue: admission.venue.name, day: day, amount: amount, price: price, budgeted: true)
        state.withLock { $0.deposit = deposit }
    }

    init(gateway: Gateway, admission: Admission, query: String?) throws(GatewayRefusal) {
        self.gateway = gateway
        self.admission = admission
        let model = Self.parameter("model", in: query)
        price = model.flatMap { gateway.config.prices[admission.venue.name]?[$0] }
        if admission.key.dailyBudgetUSD != nil, price == nil {
            throw GatewayRefusal(
                .forbidden, .permission,
                "model \(model ?? "(none)") has no price in [prices.\(admission.venue.name)]; a key with a budget may only call priced models",
                key: admission.key)
        }
    }

    static func parameter(_ name: String, in query: String?) -> String? {
        URLComponents(string: "?" + (query ?? ""))?.queryItems?.first { $0.name == name }?.value
    }

    static let created = Data("response.created".utf8)
    static let done = Data("response.done".utf8)
    static let error = Data("\"error\"".utf8)

    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep {
        if state.withLock({ $0.closing != nil }) {
            return refuse("the stream is closing: a response the venue started by itself is being cancelled", message, session)
        }
        // Every event's type is read as the venue will read it (escapes decoded, one object, no member
        // named twice), without building the document: audio arrives in large appends.
        guard JSONMembers.isStrict(message), let type = try? JSONMembers.read(message, names: ["type"])["type"]?.string else {
            return refuse("a Realtime event is one JSON object naming each member once, with a type", message, session)
        }
        if type == "session.update", budgeted { return withoutAutoResponses(message, session) }
        guard type == "response.create" else { return .forward(message) }
        // A number Foundation cannot hold (1e400) is valid JSON the venue may read: refused, never forwarded unpriced.
        guard var event = VenueJSON.object(message) else {
            return refuse("the response.create event could not be read whole", message, session)
        }
        var response = event["response"] as? [String: Any] ?? [:]
        let ceiling: Int
        switch response["max_output_tokens"] {
        case nil, is NSNull: ceiling = gateway.config.gateway.defaultMaxOutputTokens
        case let text as String where text == "inf": ceiling = gateway.config.gateway.defaultMaxOutputTokens
        case let number as NSNumber where String(cString: number.objCType) != "c" && Int(number.stringValue).map({ $0 >= 1 }) == true:
            ceiling = Int(number.stringValue) ?? 0
        default:
            return refuse("max_output_tokens must be a whole number of at least 1, or \"inf\"", message, session)
        }
        response["max_output_tokens"] = ceiling
        response["max_response_output_tokens"] = nil  // an older name of the same limit: only Warden's stands
        event["response"] = response
        let eventID = (event["event_id"] as? String) ?? "wdn_\(UUID().uuidString.lowercased())"
        event["event_id"] = eventID
        let reservation: Reservation
        do { reservation = try await reserve(ceiling: ceiling, session: session) } catch {
            session.record(.refuse, outcome: error.kind == .budget ? .budgetExceeded : .refused, ["reason": error.reason, "status": "429"])
            return .answer(admission.venue.streamError("refused by Warden: " + error.reason, to: message))
        }
        state.withLock { $0.waiting.append(Pending(eventID: eventID, reservation: reservation)) }
        session.record(
            .forward, outcome: .allowed,
            ["event": "response.create", "reserved_usd": reservation.amount.description, "max_output_tokens": String(ceiling)])
        return .forward(VenueJSON.encode(event))
    }

    /// An agent's `session.update` on a budgeted key, its turn detection (in either shape) kept from starting responses.
    func withoutAutoResponses(_ message: Data, _ session: StreamSession) -> StreamStep {
        guard var event = VenueJSON.object(message) else {
            return refuse("the session.update event could not be read whole", message, session)
        }
        guard var settings = event["session"] as? [String: Any] else { return .forward(message) }
        func off(_ detection: Any?) -> Any? {
            guard var detection = detection as? [String: Any] else { return detection }
            detection["create_response"] = false
            return detection
        }
        if settings["turn_detection"] != nil { settings["turn_detection"] = off(settings["turn_detection"]) }
        // The session's output cap bounds a response the venue might start by itself: never above Warden's.
        let ceiling = gateway.config.gateway.defaultMaxOutputTokens
        for name in ["max_output_tokens", "max_response_output_tokens"] where settings[name] != nil {
            let given = (settings[name] as? NSNumber).flatMap { String(cString: $0.objCType) == "c" ? nil : Int($0.stringValue) }
            settings[name] = min(given.map { max($0, 1) } ?? ceiling, ceiling)
        }
        if var audio = settings["audio"] as? [String: Any], var input = audio["input"] as? [String: Any], input["turn_detection"] != nil {
            input["turn_detection"] = off(input["turn_detection"])
            audio["input"] = input
            settings["audio"] = audio
        }
        event["session"] = settings
        return .forward(VenueJSON.encode(event))
    }

    func refuse(_ reason: String, _ message: Data, _ session: StreamSession) -> StreamStep {
        session.record(.refuse, outcome: .refused, ["reason": reason, "status": "400"])
        return .answer(admission.venue.streamError("refused by Warden: " + reason, to: message))
    }

    /// The response's worst case, held against the family's budget (nothing held for a key without one).
    func reserve(ceiling: Int, session: StreamSession) async throws(GatewayRefusal) -> Reservation {
        let key = admission.key, venue = admission.venue.name, day = SpendRepository.day()
        guard let budget = key.dailyBudgetUSD, let price else {
            return Reservation(keyID: key.rootID, venue: venue, day: day, amount: .zero, price: price, budgeted: false)
        }
        let input = session.agentBytes + state.withLock { $0.outputTokens } + Gateway.inputOverheadTokens
        guard let worst = price.cost(input: input, output: ceiling) else {
            throw GatewayRefusal(.forbidden, .permission, "the response's worst-case cost cannot be priced", key: key)
        }
        try await gateway.reserve(worst, budget: budget, keyID: key.rootID, venue: venue, day: day, key: key)
        return Reservation(keyID: key.rootID, venue: venue, day: day, amount: worst, price: price, budgeted: true)
    }

    func fromVenue(_ message: Data, _ session: StreamSession) async -> StreamStep {
        guard message.range(of: Self.created) != nil || message.range(of: Self.done) != nil || message.range(of: Self.error) != nil,
            let event = VenueJSON.object(message), let type = event["type"] as? String
        else { return .relay(message) }
        switch type {
        case "response.created": return started(event, message, session)
        case "response.done":
            if let id = await finished(event, session), state.withLock({ $0.closing == id }) {
                return StreamStep(toAgent: [message], close: "a response the venue started by itself on a key with a budget")
            }
        case "error":
            if let own = (event["error"] as? [String: Any])?["event_id"] as? String, Self.ownEvents.contains(own) { return StreamStep() }
            await failed(event)
        default: break
        }
        return .relay(message)
    }

    /// The venue started a response: the one asked for first, or one it started by itself.
    func started(_ event: [String: Any], _ message: Data, _ session: StreamSession) -> StreamStep {
        guard let id = (event["response"] as? [String: Any])?["id"] as? String else { return .relay(message) }
        let asked = state.withLock { state -> Bool in
            guard !state.waiting.isEmpty else { return false }
            state.running[id] = state.waiting.removeFirst().reservation
            return true
        }
        if asked { return .relay(message) }
        let key = admission.key
        // Not asked for: on a budgeted key the stream's deposit pays for it; on any other it is charged from the
        // usage its response.done reports, as an unbudgeted call's spend is.
        let unreserved = Reservation(
            keyID: key.rootID, venue: admission.venue.name, day: SpendRepository.day(), amount: .zero, price: price, budgeted: false)
        state.withLock { state in
            state.running[id] = state.deposit ?? unreserved
            state.deposit = nil
        }
        guard key.dailyBudgetUSD != nil else { return .relay(message) }
        // On a budgeted key it is cancelled, and the stream closes once its usage is in (response.done): each
        // stream can cost at most one such start, and nothing more is sent up meanwhile.
        state.withLock { $0.closing = id }
        let reason =
            "a response the venue started by itself (turn detection) cannot be reserved against this key's budget: it was "
            + "cancelled and the stream closes; set turn_detection.create_response to false and send response.create"
        session.record(.refuse, outcome: .refused, ["reason": reason, "response": String(id.prefix(64)), "status": "403"])
        return StreamStep(
            toVenue: [VenueJSON.encode(["type": "response.cancel", "response_id": id])],
            toAgent: [message, admission.venue.streamError("refused by Warden: " + reason, to: Data())])
    }

    /// The venue finished a response: its reservation is settled to the usage it reports. Returns its id.
    func finished(_ event: [String: Any], _ session: StreamSession) async -> String? {
        guard let response = event["response"] as? [String: Any], let id = response["id"] as? String,
            let reservation = state.withLock({ $0.running.removeValue(forKey: id) })
        else { return nil }
        let usage = (response["usage"] as? [String: Any]).flatMap { u -> TokenUsage? in
            guard let input = u["input_tokens"] as? Int, let output = u["output_tokens"] as? Int else { return nil }
            return TokenUsage(input: input, output: output)
        }
        let cost = await gateway.settle(reservation, usage: usage)
        await gateway.countSpend(cost, admission: admission)
        state.withLock { $0.outputTokens += max(usage?.output ?? 0, 0) }
        var detail = ["event": "response.done", "response": String(id.prefix(64)), "cost_usd": cost.description]
        if let usage { detail["input_tokens"] = String(usage.input); detail["output_tokens"] = String(usage.output) }
        session.record(.result, outcome: .forwarded, detail)
        return id
    }

    /// The venue refused a response.create Warden sent (one was already running): its reservation goes back.
    func failed(_ event: [String: Any]) async {
        guard let id = (event["error"] as? [String: Any])?["event_id"] as? String,
            let pending = state.withLock({ state -> Pending? in
                guard let index = state.waiting.firstIndex(where: { $0.eventID == id }) else { return nil }
                return state.waiting.remove(at: index)
            })
        else { return }
        _ = await gateway.settle(pending.reservation, usage: nil, sent: false)
    }

    /// The stream closed with responses unfinished: the venue may have billed them, so they stay spent.
    func ended(_ session: StreamSession) async {
        let (open, deposit) = state.withLock { state in
            defer { state.waiting = []; state.running = [:]; state.deposit = nil }
            return (state.waiting.map(\.reservation) + Array(state.running.values), state.deposit)
        }
        for reservation in open { _ = await gateway.settle(reservation, usage: nil) }
        if let deposit {
            try? await SpendRepository(gateway.database).release(
                keyID: deposit.keyID, venue: deposit.venue, day: deposit.day, amount: deposit.amount)
        }
    }
}
