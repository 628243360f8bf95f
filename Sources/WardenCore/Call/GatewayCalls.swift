import Foundation
import HTTPTypes
import NIOCore
import WardenStore
import WardenVenues

/// Counts how gateway calls end (the server's metrics).
public protocol CallObserver: Sendable {
    func ended(venue: String, outcome: Outcome)
    func upstream(venue: String, took: Duration)
}

/// A gateway call from admission to its last audit row: admit → classify and plan → reserve → record →
/// send through the call's transport → settle → record. The server only turns HTTP into an `InboundCall`
/// and a `GatewayAnswer` back into HTTP. Reads and LLM calls are recorded as they end, without waiting for
/// the disk; anything that can change something at the venue is recorded durably before it is sent.
public struct GatewayCalls: Sendable {
    let gateway: Gateway
    let observer: any CallObserver
    /// The `Host` values the gateway answers (its listen address): anything else may be a DNS-rebound page.
    let allowedHosts: Set<String>
    /// With `[server] tls_client_ca`: a call whose connection presented no verified client certificate is refused.
    let requiresClientCertificate: Bool

    public init(gateway: Gateway, observer: any CallObserver, allowedHosts: Set<String>, requiresClientCertificate: Bool = false) {
        self.gateway = gateway
        self.observer = observer
        self.allowedHosts = allowedHosts
        self.requiresClientCertificate = requiresClientCertificate
    }

    static let maxExchangeBodyBytes = 1024 * 1024
    static let fetchSite = HTTPField.Name("sec-fetch-site")!

    public func handle(_ call: InboundCall) async -> GatewayAnswer {
        guard let venue = gateway.registry.venue(named: call.venueName) else { return unknownVenue(call) }
        // Set once the key is admitted on a credential shared with its owner: that credential's owner sees refusals too.
        var sharedBy: String?
        do {
            try checkBrowser(call)
            // Fail closed: while audit rows cannot be committed, nothing is sent, booked or simulated.
            guard gateway.audit.healthy else {
                throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made")
            }
            if let exchange = venue as? any ExchangeVenue, gateway.presentedKey(venue: venue, headers: call.headers) == nil {
                return try await publicRead(call, exchange)
            }
            let admission = try await gateway.admit(
                venue: venue, method: call.method.rawValue, rawPath: call.rawPath,
                query: call.query, headers: call.headers, requestID: call.requestID)
            if !admission.ownsCredential { sharedBy = admission.credentialOwnerID }
            if let exchange = venue as? any ExchangeVenue { return try await trade(call, admission, exchange) }
            return try await forward(call, admission)
        } catch let refusal as GatewayRefusal {
            return refuse(refusal, call, venue: venue, sharedBy: refusal.sharedBy ?? sharedBy)
        } catch {
            return refuse(
                GatewayRefusal(.badGateway, .upstream, "the gateway could not complete the call"), call, venue: venue,
                sharedBy: sharedBy)
        }
    }

    /// A browser page (a cross-site form, a DNS-rebound origin) must never drive the gateway.
    func checkBrowser(_ call: InboundCall) throws(GatewayRefusal) {
        guard let host = call.authority?.lowercased(), allowedHosts.contains(host) else {
            throw GatewayRefusal(
                .forbidden, .permission, "the Host header must be this gateway's listen address or one of its public_hosts")
        }
        if requiresClientCertificate, call.origin.certificate == nil {
            throw GatewayRefusal(
                .forbidden, .permission, "this gateway requires a client certificate issued by its client CA (tls_client_ca)")
        }
        if call.headers[.origin] != nil {
            throw GatewayRefusal(.forbidden, .permission, "requests from web pages (with an Origin header) are refused")
        }
        if let site = call.headers[Self.fetchSite], site != "none" {
            throw GatewayRefusal(.forbidden, .permission, "requests from web pages are refused")
        }
    }

    // MARK: the three kinds of call

    /// LLM and REST-service calls: the request is read whole (LLM bodies also to price them), the answer is relayed.
    func forward(_ call: InboundCall, _ admission: Admission) async throws -> GatewayAnswer {
        let venue = admission.venue
        var outgoing = request(url: admission.upstreamURL, method: call.method.rawValue, call)
        var headers = ForwardedHeaders.forwardable(call.headers, venue: venue)
        venue.authorize(&headers, secret: admission.secret)

        var reservation: Reservation?
        var meter: UsageMeter?
        if let dialect = venue.usage {
            // LLM calls are read whole (they are small) to price them before they are sent.
            let original = try await collect(call, limit: gateway.config.gateway.maxRequestBytes, key: admission.key)
            call.origin.bodyRead()
            let (held, bounded, info) = try await gateway.reserve(
                admission, method: call.method.rawValue, body: Data(buffer: original),
                dialect: dialect)
            let prepared = dialect.prepare(bounded, streaming: info.stream)
            reservation = held
            meter = UsageMeter(dialect: dialect, streaming: info.stream, stripUsageChunk: prepared.stripUsageChunk)
            headers[.acceptEncoding] = "identity"  // usage is read from the body
            if !prepared.body.isEmpty { outgoing.body = ByteBuffer(data: prepared.body) }
        } else if call.headers[.contentLength].flatMap(Int.init).map({ $0 > 0 }) ?? (call.headers[.transferEncoding] != nil) {
            // Read whole before sending: an upstream that answers before it has read the body would
            // otherwise leave two readers on the request body (the upstream client and the server's drain).
            let body = try await collect(call, limit: gateway.config.gateway.maxRequestBytes, key: admission.key)
            call.origin.bodyRead()
            // Checked as the upstream will read it: with the headers that are forwarded.
            try gateway.checkBody(
                Data(buffer: body), contentType: headers[.contentType], contentEncoding: headers[.contentEncoding], key: admission.key)
            outgoing.body = body
        }
        outgoing.headers = headers
        let held = reservation
        // A REST service call that is not a read may change something there: it is recorded before it is sent.
        let acts = venue.usage == nil && !call.method.isRead
        return try await relay(outgoing, call, CallSubject(admission), detail: [:], durable: acts, meter: meter) { [gateway] ending in
            guard let held else { return [:] }
            // Unsent: nothing was used. Unanswered or cut short: the venue may have run (and billed) it, so the
            // reservation stays spent. Complete: the metered cost.
            let used: TokenUsage? =
                switch ending {
                case .unsent: TokenUsage(input: 0, output: 0)
                case .unanswered: nil
                case .answered(_, let failed, let usage): failed ? nil : usage
                }
            let sent: Bool = if case .unsent = ending { false } else { true }
            let cost = await gateway.settle(held, usage: used, sent: sent)
            await gateway.countSpend(cost, admission: admission)
            var detail = ["cost_usd": cost.description]
            if case .answered = ending, let usage = used {
                detail["input_tokens"] = String(usage.input); detail["output_tokens"] = String(usage.output)
            }
            return detail
        }
    }

    /// Exchange calls: read whole (they are small), classified and priced by the trading policy, then
    /// signed and sent, or answered by the simulator.
    func trade(_ call: InboundCall, _ admission: Admission, _ venue: any ExchangeVenue) async throws -> GatewayAnswer {
        let body = Data(
            buffer: try await collect(
                call, limit: min(gateway.config.gateway.maxRequestBytes, Self.maxExchangeBodyBytes),
                key: admission.key))
        call.origin.bodyRead()
        let headers = ForwardedHeaders.forwardable(call.headers, venue: venue)
        try gateway.checkBody(body, contentType: headers[.contentType], contentEncoding: headers[.contentEncoding], key: admission.key)
        let plan = try await gateway.trading.plan(
            admission, venue: venue, method: call.method.rawValue, query: call.query ?? "", body: body, headers: headers)
        switch plan.route {
        case .answer(let status, let answer):
            // Answered by the simulator: nothing reached the venue.
            gateway.audit.record(
                entry(
                    CallSubject(admission), .simulate, outcome: .dryRun, call,
                    extra: plan.audit.merging(["status": String(status.code)]) { $1 }))
            observer.ended(venue: venue.name, outcome: .dryRun)
            return GatewayAnswer(status: status, contentType: "application/json", body: answer)
        case .held(let status, let answer):
            observer.ended(venue: venue.name, outcome: .held)
            return GatewayAnswer(status: venue.refusalStatus ?? status, contentType: "application/json", body: answer)
        case .walletAuth(let signed, let url):
            return try await walletAuth(signed, url: url, call, admission, venue, detail: plan.audit)
        case .redacted(let signed, let url):
            return try await redactedRead(signed, url: url, call, admission, venue, detail: plan.audit)
        case .forward(let signed, let url):
            // A live order's row is already on disk: it committed with the order's reservation.
            return try await send(
                signed, url: url, call, CallSubject(admission), detail: plan.audit,
                durable: !plan.kind.isRead && !plan.recorded, tickets: plan.reservations)
        }
    }

    /// A level-1 wallet call: recorded before it is sent, sent like any other call, its whole answer made
    /// safe by the trading policy (minted credentials are stored, never handed over), then recorded.
    func walletAuth(
        _ signed: UpstreamRequest, url: String, _ call: InboundCall, _ admission: Admission, _ venue: any ExchangeVenue,
        detail: [String: String]
    ) async throws -> GatewayAnswer {
        let subject = CallSubject(admission)
        let started = ContinuousClock.now
        try await mayBeSent(call, subject, detail: detail, durable: true) { _ in [:] }
        let (upstream, body) = try await sendReadingWhole(signed, url: url, call, subject, key: admission.key)
        let (status, shown, extra) = try await gateway.trading.completeWalletAuth(
            status: upstream.status, body: body, venue: venue, admission: admission)
        var result = detail.merging(extra) { $1 }
        result["status"] = String(upstream.status.code)
        result["ms"] = Self.milliseconds(since: started)
        observer.upstream(venue: venue.name, took: ContinuousClock.now - started)
        observer.ended(venue: venue.name, outcome: .forwarded)
        gateway.audit.record(entry(subject, .result, outcome: .forwarded, call, extra: result))
        return GatewayAnswer(status: status, contentType: "application/json", body: shown)
    }

    /// A read whose answer repeats the credential: sent, read whole, every credential value in it replaced (the
    /// API key by the agent's own key, the rest by a placeholder), then recorded.
    func redactedRead(
        _ signed: UpstreamRequest, url: String, _ call: InboundCall, _ admission: Admission, _ venue: any ExchangeVenue,
        detail: [String: String]
    ) async throws -> GatewayAnswer {
        let subject = CallSubject(admission)
        let started = ContinuousClock.now
        let (upstream, answer) = try await sendReadingWhole(signed, url: url, call, subject, key: admission.key)
        var body = answer
        for (field, value) in admission.secret where value.utf8.count >= 8 {
            let stand = Data((field == "api_key" ? admission.presentedKey : "stored-in-warden").utf8)
            body = body.replacing(Data(value.utf8), with: stand)
        }
        var result = detail
        result["status"] = String(upstream.status.code)
        result["ms"] = Self.milliseconds(since: started)
        result["redacted"] = "true"
        observer.upstream(venue: venue.name, took: ContinuousClock.now - started)
        observer.ended(venue: venue.name, outcome: .forwarded)
        gateway.audit.record(entry(subject, .result, outcome: .forwarded, call, extra: result))
        return GatewayAnswer(status: upstream.status, contentType: "application/json", body: body)
    }

    /// Sends a signed call and reads its whole answer, for Warden to look at before the agent sees it.
    func sendReadingWhole(
        _ signed: UpstreamRequest, url: String, _ call: InboundCall, _ subject: CallSubject, key: AgentKeyRecord
    ) async throws -> (TransportAnswer, Data) {
        var outgoing = request(url: url, method: signed.method, call)
        outgoing.headers = signed.headers
        if !signed.body.isEmpty { outgoing.body = ByteBuffer(data: signed.body) }
        let upstream: TransportAnswer
        do { upstream = try await call.transport.send(outgoing) } catch { throw await failed(error, subject) { _ in [:] } }
        return (upstream, try await whole(upstream.body, limit: Self.maxExchangeBodyBytes, key: key))
    }

    /// An answer's body read whole, for Warden to look at before anything reaches the agent.
    func whole(_ body: TransportAnswer.Body, limit: Int, key: AgentKeyRecord) async throws(GatewayRefusal) -> Data {
        switch body {
        case .whole(let buffer): return Data(buffer: buffer)
        case .stream(let stream):
            do { return Data(buffer: try await stream.collect(upTo: limit)) } catch is NIOTooManyBytesError {
                throw GatewayRefusal(.badGateway, .upstream, "the upstream's answer is larger than \(limit) bytes", key: key)
            } catch {
                throw GatewayRefusal(.badGateway, .upstream, "the upstream's answer broke off before its end", key: key)
            }
        }
    }

    /// Public market data from an SDK that sends no key for it (py-clob-client): forwarded with no
    /// credential at all, and only for calls the venue's adapter classifies as public.
    func publicRead(_ call: InboundCall, _ venue: any ExchangeVenue) async throws -> GatewayAnswer {
        let path = try gateway.canonical(method: call.method.rawValue, rawPath: call.rawPath, query: call.query, headers: call.headers)
        let body = Data(buffer: try await collect(call, limit: Self.maxExchangeBodyBytes, key: nil))
        call.origin.bodyRead()
        let headers = ForwardedHeaders.forwardable(call.headers, venue: venue)
        try gateway.checkBody(body, contentType: headers[.contentType], contentEncoding: headers[.contentEncoding], key: nil)
        let (unsigned, url) = try gateway.trading.publicCall(
            venue: venue, method: call.method.rawValue, path: path,
            query: call.query ?? "", body: body, headers: headers)
        return try await send(
            unsigned, url: url, call, CallSubject(venue: venue, key: nil, credentialID: nil, path: path, requestID: call.requestID),
            detail: ["class": CallKind.publicRead.rawValue, "keyless": "true"], durable: false, tickets: [])
    }

    /// Sends a prepared exchange call; live orders' reservations are kept, or released when the venue refuses the call.
    func send(
        _ signed: UpstreamRequest, url: String, _ call: InboundCall, _ subject: CallSubject, detail: [String: String],
        durable: Bool, tickets: [String]
    ) async throws -> GatewayAnswer {
        var outgoing = request(url: url, method: signed.method, call)
        outgoing.headers = signed.headers
        if !signed.body.isEmpty { outgoing.body = ByteBuffer(data: signed.body) }
        return try await relay(outgoing, call, subject, detail: detail, durable: durable, meter: nil) { [gateway] ending in
            guard !tickets.isEmpty else { return [:] }
            // Never sent, or refused by the venue (4xx): the reservation goes back. No answer at all, or a server
            // error (the venue says the order may have executed), may still mean an order, so it is kept.
            switch ending {
            case .unanswered: return ["reservation": "kept"]
            case .answered(let status, _, _) where !(400..<500).contains(status.code): return ["reservation": "kept"]
            case .unsent, .answered: break
            }
            for ticket in tickets { try? await gateway.trading.release(ticket) }
            return ["reservation": "released"]
        }
    }

    /// Only a body past `limit` is 413; one that broke off or could not be parsed (a bad chunk size) is 400.
    func collect(_ call: InboundCall, limit: Int, key: AgentKeyRecord?) async throws(GatewayRefusal) -> ByteBuffer {
        do { return try await call.body.collect(upTo: limit) } catch {
            switch error {
            case .tooLarge:
                throw GatewayRefusal(.contentTooLarge, .invalidRequest, "the request body is larger than \(limit) bytes", key: key)
            case .malformed: throw GatewayRefusal(.badRequest, .invalidRequest, "the request body is malformed or incomplete", key: key)
            }
        }
    }

    // MARK: relaying

    /// How a relayed call ended, for settling what it reserved.
    enum Ending: Sendable {
        /// Nothing left Warden (the call could not be recorded, or no connection to the upstream could be made).
        case unsent
        /// Sent, but no response head came back: the venue may have acted on it.
        case unanswered
        /// The venue answered; `failed` when its body stream broke; the metered usage, if any.
        case answered(HTTPResponse.Status, failed: Bool, usage: TokenUsage?)
    }

    struct AuditUnavailable: Error {}

    /// Records the call (`durable`: waits until the record is on disk), sends it, returns the answer (whole
    /// when the transport read it whole, else streamed), and settles and records the result before the
    /// agent has the last byte. `settle` gets how the call ended and returns details for the result row.
    func relay(
        _ outgoing: CallRequest, _ call: InboundCall, _ subject: CallSubject, detail: [String: String], durable: Bool,
        meter: UsageMeter?, settle: @escaping @Sendable (Ending) async -> [String: String]
    ) async throws -> GatewayAnswer {
        let venue = subject.venue
        let started = ContinuousClock.now
        try await mayBeSent(call, subject, detail: detail, durable: durable, settle: settle)
        let upstream: TransportAnswer
        do {
            upstream = try await call.transport.send(outgoing)
        } catch {
            throw await failed(error, subject, settle: settle)
        }

        var headers = upstream.headers
        if meter?.streaming == true { headers[.contentLength] = nil }
        let status = upstream.status
        // Settles and records how the call ended; the agent has the last byte only after this.
        let conclude = { @Sendable [gateway, observer] (failed: Bool, usage: TokenUsage?) async in
            var result = detail
            result.reserveCapacity(detail.count + 8)
            result["status"] = String(status.code)
            result["ms"] = Self.milliseconds(since: started)
            for (name, value) in await settle(.answered(status, failed: failed, usage: usage)) { result[name] = value }
            let outcome: Outcome = failed ? .interrupted : .forwarded
            observer.upstream(venue: venue.name, took: ContinuousClock.now - started)
            observer.ended(venue: venue.name, outcome: outcome)
            gateway.audit.record(entry(subject, .result, outcome: outcome, call, extra: result))
        }

        switch upstream.body {
        case .whole(let whole):
            var answer = whole
            var usage: TokenUsage?
            if var meter {
                if meter.streaming {
                    answer = ByteBuffer(bytes: meter.consume(Array(buffer: whole)) + meter.finish())
                    usage = meter.usage
                } else {
                    usage = whole.withUnsafeReadableBytes { meter.dialect.reportedUsage(in: $0) }  // passed on as it came
                }
            }
            await conclude(false, usage)
            // A HEAD answer has no body: its Content-Length is the upstream's, for the GET it stands for.
            if headers[.contentLength] != nil, call.method != .head { headers[.contentLength] = String(answer.readableBytes) }
            return GatewayAnswer(status: status, headers: headers, body: .whole(answer))
        case .stream(let body):
            let stream = AnswerStream(upstream: body, meter: meter, holdLast: headers[.contentLength] != nil, conclude: conclude)
            return GatewayAnswer(status: status, headers: headers, body: .stream(stream))
        }
    }

    /// Records a call before it is sent (`durable`: waits until the record is on disk) and checks that it may
    /// still go: fail closed, no call leaves while its record could not be written, or once its client has
    /// gone or its deadline has passed. A call that may not go is settled as unsent.
    func mayBeSent(
        _ call: InboundCall, _ subject: CallSubject, detail: [String: String], durable: Bool,
        settle: @Sendable (Ending) async -> [String: String]
    ) async throws(GatewayRefusal) {
        do {
            guard gateway.audit.healthy else { throw AuditUnavailable() }
            if durable { try await gateway.audit.append(entry(subject, .forward, outcome: .allowed, call, extra: detail)) }
        } catch {
            _ = await settle(.unsent)
            throw GatewayRefusal(
                .serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made", key: subject.key)
        }
        if let late = call.origin.reasonNotToSend() {
            _ = await settle(.unsent)
            throw GatewayRefusal(.serviceUnavailable, .unavailable, late, key: subject.key)
        }
    }

    /// A call the transport could not complete, settled by what the venue may have done with it.
    func failed(_ failure: TransportFailure, _ subject: CallSubject, settle: @Sendable (Ending) async -> [String: String]) async
        -> GatewayRefusal
    {
        switch failure {
        case .cutShort(let status, let silent):
            // The venue answered, then its answer broke off before any of it reached the agent: settled as
            // the cut-short answer it is (a 4xx still refused the call), answered like an unanswered call.
            _ = await settle(.answered(status, failed: true, usage: nil))
            let what = "the upstream's answer (status \(status.code)) broke off before its end"
            return silent
                ? GatewayRefusal(.gatewayTimeout, .timeout, what + ": it fell silent", key: subject.key)
                : GatewayRefusal(.badGateway, .upstream, what + ": the connection closed", key: subject.key)
        case .unreachable:
            // No connection could be made: nothing left Warden.
            _ = await settle(.unsent)
            return GatewayRefusal(.badGateway, .upstream, "the upstream could not be reached", key: subject.key)
        case .withdrawn:
            _ = await settle(.unsent)
            return GatewayRefusal(
                .serviceUnavailable, .unavailable,
                "the call waited for a connection to the upstream until its client left or its deadline passed; it was not sent",
                key: subject.key)
        case .timedOut:
            _ = await settle(.unanswered)
            return GatewayRefusal(.gatewayTimeout, .timeout, "the upstream did not answer in time", key: subject.key)
        case .failed:
            _ = await settle(.unanswered)
            return GatewayRefusal(.badGateway, .upstream, "the upstream could not be reached", key: subject.key)
        }
    }

    // MARK: refusals

    func refuse(_ refusal: GatewayRefusal, _ call: InboundCall, venue: any VenueAdapter, sharedBy: String? = nil) -> GatewayAnswer {
        let outcome: Outcome =
            switch refusal.kind {
            case .rateLimit: .rateLimited
            case .budget: .budgetExceeded
            case .upstream, .timeout: .upstreamError
            default: .refused
            }
        observer.ended(venue: venue.name, outcome: outcome)
        gateway.countRefusal(refusal)
        // While the audit store cannot keep up, refusals are counted (one `audit.gap` row when it can), not queued.
        if refusal.kind == .unavailable, !gateway.audit.healthy {
            gateway.audit.countUnrecorded()
        } else {
            var detail = Self.caller(call, into: ["status": String(refusal.status.code), "reason": refusal.reason])
            var entry = AuditEntry.gateway(
                .refuse, outcome: outcome, venue: venue.name, key: refusal.key, credentialID: nil,
                credentialOwnerID: sharedBy, method: call.method.rawValue, path: call.rawPath, requestID: call.requestID, detail: detail)
            if let alarm = refusal.alarm {
                detail = entry.detail
                detail["alarm"] = alarm.rawValue
                detail["client"] = call.origin.clientAddress
                if let honey = refusal.honeyToken {
                    // The decoy's owner sees the attempt; the row names the decoy, never the token itself.
                    detail["honey_token"] = honey.id
                    detail["honey_label"] = honey.label
                    entry.ownerID = honey.ownerID
                }
                entry.detail = detail
            }
            gateway.audit.record(entry)
        }
        let (contentType, body) = venue.errorBody(status: refusal.status, kind: refusal.kind, message: refusal.reason)
        var headers: HTTPFields = [.contentType: contentType]
        if let wait = refusal.retryAfter { headers[.retryAfter] = String(wait) }
        return GatewayAnswer(status: venue.refusalStatus ?? refusal.status, headers: headers, body: .whole(ByteBuffer(data: body)))
    }

    /// No venue of that name: recorded like any refusal, with no key (none is looked at); the name is the
    /// caller's, so bounded. A caller the gateway refuses anyway (a foreign Host, no client certificate) is
    /// told that, not which venues there are.
    func unknownVenue(_ call: InboundCall) -> GatewayAnswer {
        observer.ended(venue: "unknown", outcome: .refused)
        var status = HTTPResponse.Status.notFound
        var code = "unknown_venue"
        var detail = "no venue called \(call.venueName); known: \(gateway.registry.names.joined(separator: ", "))"
        var reason = "unknown venue"
        do throws(GatewayRefusal) { try checkBrowser(call) } catch {
            (status, code, detail, reason) = (error.status, "refused", error.reason, error.reason)
        }
        if gateway.audit.healthy {
            gateway.audit.record(
                .gateway(
                    .refuse, outcome: .refused, venue: String(call.venueName.prefix(64)), key: nil, credentialID: nil,
                    method: call.method.rawValue, path: "/proxy/\(call.venueName)" + call.rawPath,
                    requestID: call.requestID, detail: Self.caller(call, into: ["status": String(status.code), "reason": reason])))
        } else {
            gateway.audit.countUnrecorded()
        }
        let body = try? JSONSerialization.data(
            withJSONObject: [
                "type": "https://warden.local/problems/\(code)", "title": status.reasonPhrase,
                "status": status.code, "code": code, "detail": detail,
            ], options: [.sortedKeys])
        return GatewayAnswer(status: status, contentType: "application/problem+json", body: body ?? Data())
    }

    // MARK: helpers

    /// A request to the upstream with the gateway's timeout; the caller adds headers and body.
    func request(url: String, method: String, _ call: InboundCall) -> CallRequest {
        CallRequest(
            url: url, method: method, headers: [:], body: nil, timeout: .seconds(gateway.config.gateway.upstreamTimeoutSeconds),
            origin: call.origin)
    }

    func entry(_ s: CallSubject, _ step: GatewayStep, outcome: Outcome, _ call: InboundCall, extra: [String: String] = [:]) -> AuditEntry {
        .gateway(
            step, outcome: outcome, venue: s.venue.name, key: s.key, credentialID: s.credentialID,
            credentialOwnerID: s.credentialOwnerID, method: call.method.rawValue,
            path: s.path.description, requestID: s.requestID, detail: Self.caller(call, into: extra))
    }

    /// Every row of a call names its caller: the client's address (as a trusted proxy forwarded it) and
    /// the fingerprint and subject of the client certificate its connection presented, if any.
    static func caller(_ call: InboundCall, into detail: [String: String]) -> [String: String] {
        var detail = detail
        detail["client"] = call.origin.clientAddress
        if let certificate = call.origin.certificate {
            detail["client_cert"] = certificate.fingerprint
            detail["client_cert_subject"] = String(certificate.subject.prefix(256))
        }
        return detail
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return Decimals.fixed(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15, places: 1)
    }
}

/// Who and what a forwarded call is about, for its audit rows.
struct CallSubject: Sendable {
    let venue: any VenueAdapter
    let key: AgentKeyRecord?
    let credentialID: String?
    /// Set when the credential is shared with the key's owner: its owner sees the call too.
    var credentialOwnerID: String? = nil
    let path: CanonicalPath
    let requestID: String

    init(venue: any VenueAdapter, key: AgentKeyRecord?, credentialID: String?, path: CanonicalPath, requestID: String) {
        self.venue = venue
        self.key = key
        self.credentialID = credentialID
        self.path = path
        self.requestID = requestID
    }

    init(_ a: Admission) {
        self.init(venue: a.venue, key: a.key, credentialID: a.credentialID, path: a.path, requestID: a.requestID)
        credentialOwnerID = a.ownsCredential ? nil : a.credentialOwnerID
    }
}
