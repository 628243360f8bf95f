import Foundation
import Synchronization
import Hummingbird
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import WardenCore
import WardenStore
import WardenVenues

/// `/proxy/{venue}/…`: identify the agent key, apply the policy, sign with the real credential, forward
/// (the response streamed back), and audit every call: durably before it is sent when it can change
/// something at the venue, otherwise (reads, LLM calls) as it ends, without waiting for the disk.
struct GatewayController {
    let gateway: Gateway
    let clients: UpstreamClients
    let metrics: GatewayMetrics
    let allowedHosts: Set<String>

    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]

    func addRoutes(to router: Router<WardenContext>) {
        for method in Self.methods {
            router.on("/proxy/{venue}/**", method: method) { request, context in await handle(request, context) }
            router.on("/proxy/{venue}", method: method) { request, context in await handle(request, context) }
        }
    }

    func handle(_ request: Request, _ context: WardenContext) async -> Response {
        let name = context.parameters.get("venue") ?? ""
        guard let venue = gateway.registry.venue(named: name) else {
            metrics.request(venue: "unknown", decision: "refused")
            let detail = "no venue called \(name); known: \(gateway.registry.names.joined(separator: ", "))"
            // Recorded like any refusal, with no key (none is looked at); the name is the caller's, so bounded.
            if gateway.audit.healthy {
                gateway.audit.record(.gateway("gateway.refuse", outcome: "refused", venue: String(name.prefix(64)), key: nil, credentialID: nil,
                                              method: request.method.rawValue, path: request.uri.path, requestID: context.requestID,
                                              detail: ["status": "404", "reason": "unknown venue"]))
            } else {
                gateway.audit.countUnrecorded()
            }
            return plainProblem(.notFound, detail)
        }
        let rawPath = String(request.uri.path.dropFirst("/proxy/\(name)".count))
        // Set once the key is admitted on a credential shared with its owner: that credential's owner sees refusals too.
        var sharedBy: String?
        do {
            try checkBrowser(request)
            // Fail closed: while audit rows cannot be committed, nothing is sent, booked or simulated.
            guard gateway.audit.healthy else {
                throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made")
            }
            let loop = Inbound(context, sendWithin: .seconds(gateway.config.gateway.sendDeadlineSeconds))
            if let exchange = venue as? any ExchangeVenue, gateway.presentedKey(venue: venue, headers: request.headers) == nil {
                return try await publicRead(request, exchange, rawPath: rawPath, requestID: context.requestID, on: loop)
            }
            let admission = try await gateway.admit(venue: venue, method: request.method.rawValue, rawPath: rawPath,
                                                    query: request.uri.query, headers: request.headers, requestID: context.requestID)
            if !admission.ownsCredential { sharedBy = admission.credentialOwnerID }
            if let exchange = venue as? any ExchangeVenue { return try await trade(request, admission, exchange, on: loop) }
            return try await forward(request, admission, on: loop)
        } catch let refusal as GatewayRefusal {
            return await refuse(refusal, venue: venue, method: request.method.rawValue, path: rawPath, requestID: context.requestID,
                                sharedBy: refusal.sharedBy ?? sharedBy)
        } catch {
            return await refuse(GatewayRefusal(.badGateway, .upstream, "the gateway could not complete the call"),
                                venue: venue, method: request.method.rawValue, path: rawPath, requestID: context.requestID, sharedBy: sharedBy)
        }
    }

    static let fetchSite = HTTPField.Name("sec-fetch-site")!

    /// A browser page (a cross-site form, a DNS-rebound origin) must never drive the gateway.
    func checkBrowser(_ request: Request) throws(GatewayRefusal) {
        guard let host = request.head.authority?.lowercased(), allowedHosts.contains(host) else {
            throw GatewayRefusal(.forbidden, .permission, "the Host header must be this gateway's listen address")
        }
        if request.headers[.origin] != nil {
            throw GatewayRefusal(.forbidden, .permission, "requests from web pages (with an Origin header) are refused")
        }
        if let site = request.headers[Self.fetchSite], site != "none" {
            throw GatewayRefusal(.forbidden, .permission, "requests from web pages are refused")
        }
    }

    // MARK: forwarding

    /// LLM and REST-service calls: the request is read whole (LLM bodies also to price them), the answer is relayed.
    func forward(_ request: Request, _ admission: Admission, on loop: Inbound) async throws -> Response {
        let venue = admission.venue
        var outgoing = outgoingRequest(url: admission.upstreamURL, method: request.method.rawValue)
        var headers = Self.forwardableHeaders(request.headers, venue: venue)
        venue.authorize(&headers, secret: admission.secret)

        var reservation: Reservation?
        var meter: UsageMeter?
        if let dialect = venue.usage {
            // LLM calls are read whole (they are small) to price them before they are sent.
            let original = try await collect(request, limit: gateway.config.gateway.maxRequestBytes, key: admission.key)
            loop.restart()
            let (held, bounded, info) = try await gateway.reserve(admission, method: request.method.rawValue, body: original, dialect: dialect)
            let prepared = dialect.prepare(bounded, streaming: info.stream)
            reservation = held
            meter = UsageMeter(dialect: dialect, streaming: info.stream, stripUsageChunk: prepared.stripUsageChunk)
            headers[.acceptEncoding] = "identity"  // usage is read from the body
            if !prepared.body.isEmpty { outgoing.body = ByteBuffer(data: prepared.body) }
        } else if request.headers[.contentLength].flatMap(Int.init).map({ $0 > 0 }) ?? (request.headers[.transferEncoding] != nil) {
            // Read whole before sending: an upstream that answers before it has read the body would
            // otherwise leave two readers on the request body (the upstream client and the server's drain).
            let body = try await collect(request, limit: gateway.config.gateway.maxRequestBytes, key: admission.key)
            loop.restart()
            try gateway.checkBody(body, contentType: request.headers[.contentType], key: admission.key)
            outgoing.body = ByteBuffer(data: body)
        }
        outgoing.headers = HTTPHeaders(headers.map { ($0.name.rawName, $0.value) })
        let held = reservation
        // A REST service call that is not a read may change something there: it is recorded before it is sent.
        let acts = venue.usage == nil && !["GET", "HEAD", "OPTIONS"].contains(request.method.rawValue)
        return try await relay(outgoing, request, Subject(admission), detail: [:], durable: acts, meter: meter, on: loop) { [gateway] ending in
            guard let held else { return [:] }
            // Unsent: nothing was used. Unanswered or cut short: the venue may have run (and billed) it, so the
            // reservation stays spent. Complete: the metered cost.
            let used: TokenUsage? = switch ending {
            case .unsent: TokenUsage(input: 0, output: 0)
            case .unanswered: nil
            case .answered(_, let failed, let usage): failed ? nil : usage
            }
            let sent: Bool = if case .unsent = ending { false } else { true }
            let cost = await gateway.settle(held, usage: used, sent: sent)
            var detail = ["cost_usd": cost.description]
            if case .answered = ending, let usage = used { detail["input_tokens"] = String(usage.input); detail["output_tokens"] = String(usage.output) }
            return detail
        }
    }

    /// Exchange calls: read whole (they are small), classified and priced by the trading policy, then
    /// signed and sent, or answered by the simulator.
    func trade(_ request: Request, _ admission: Admission, _ venue: any ExchangeVenue, on loop: Inbound) async throws -> Response {
        let body = try await collect(request, limit: min(gateway.config.gateway.maxRequestBytes, Self.maxExchangeBodyBytes), key: admission.key)
        loop.restart()
        try gateway.checkBody(body, contentType: request.headers[.contentType], key: admission.key)
        let plan = try await gateway.trading.plan(
            admission, venue: venue, method: request.method.rawValue, query: request.uri.query ?? "", body: body,
            headers: Self.forwardableHeaders(request.headers, venue: venue), reasonNotToSend: { loop.reasonNotToSend() })
        switch plan.route {
        case .answer(let status, let answer):
            let walletAuth = plan.audit["class"] == "wallet_auth"
            gateway.audit.record(entry(Subject(admission), action: walletAuth ? "gateway.result" : "gateway.simulate",
                                       outcome: walletAuth ? "forwarded" : "dry_run", request: request,
                                       extra: plan.audit.merging(["status": String(status.code)]) { $1 }))
            metrics.request(venue: venue.name, decision: walletAuth ? "forwarded" : "dry_run")
            return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: answer)))
        case .forward(let signed, let url):
            // Reads are recorded as they end; anything else may act on the account and is recorded before it is sent.
            let reads = ["public_read", "private_read"].contains(plan.audit["class"] ?? "")
            // A live order's row is already on disk: it committed with the order's reservation.
            return try await send(signed, url: url, request, Subject(admission), detail: plan.audit, durable: !reads && !plan.recorded,
                                  tickets: plan.reservations, on: loop)
        }
    }

    /// Public market data from an SDK that sends no key for it (py-clob-client): forwarded with no
    /// credential at all, and only for calls the venue's adapter classifies as public.
    func publicRead(_ request: Request, _ venue: any ExchangeVenue, rawPath: String, requestID: String,
                    on loop: Inbound) async throws -> Response {
        let path = try gateway.canonical(method: request.method.rawValue, rawPath: rawPath, query: request.uri.query, headers: request.headers)
        let body = try await collect(request, limit: Self.maxExchangeBodyBytes, key: nil)
        loop.restart()
        try gateway.checkBody(body, contentType: request.headers[.contentType], key: nil)
        let (unsigned, url) = try gateway.trading.publicCall(venue: venue, method: request.method.rawValue, path: path,
                                                              query: request.uri.query ?? "", body: body,
                                                              headers: Self.forwardableHeaders(request.headers, venue: venue))
        return try await send(unsigned, url: url, request, Subject(venue: venue, key: nil, credentialID: nil, path: path, requestID: requestID),
                              detail: ["class": "public_read", "keyless": "true"], durable: false, tickets: [], on: loop)
    }

    /// Sends a prepared exchange call; live orders' reservations are kept, or released when the venue refuses the call.
    func send(_ signed: UpstreamRequest, url: String, _ request: Request, _ subject: Subject, detail: [String: String],
              durable: Bool, tickets: [String], on loop: Inbound) async throws -> Response {
        var outgoing = outgoingRequest(url: url, method: signed.method)
        outgoing.headers = HTTPHeaders(signed.headers.map { ($0.name.rawName, $0.value) })
        if !signed.body.isEmpty { outgoing.body = ByteBuffer(data: signed.body) }
        return try await relay(outgoing, request, subject, detail: detail, durable: durable, meter: nil, on: loop) { [gateway] ending in
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
    func collect(_ request: Request, limit: Int, key: AgentKeyRecord?) async throws(GatewayRefusal) -> Data {
        do { return Data(buffer: try await request.body.collect(upTo: limit)) } catch is NIOTooManyBytesError {
            throw GatewayRefusal(.contentTooLarge, .invalidRequest, "the request body is larger than \(limit) bytes", key: key)
        } catch {
            throw GatewayRefusal(.badRequest, .invalidRequest, "the request body is malformed or incomplete", key: key)
        }
    }

    /// How a relayed call ended, for settling what it reserved.
    enum Ending: Sendable {
        /// Nothing left Warden (the call could not be recorded, or no connection to the upstream could be made).
        case unsent
        /// Sent, but no response head came back: the venue may have acted on it.
        case unanswered
        /// The venue answered; `failed` when its body stream broke; the metered usage, if any.
        case answered(HTTPResponse.Status, failed: Bool, usage: TokenUsage?)
    }

    static let maxExchangeBodyBytes = 1024 * 1024

    struct AuditUnavailable: Error {}

    /// Records the call (`durable`: waits until the record is on disk), sends it, returns the answer (whole
    /// when the upstream's client read it whole, else streamed), and settles and records the result before
    /// the client has the last byte. `settle` gets how the call ended and returns details for the result row.
    func relay(_ outgoing: UpstreamHTTPRequest, _ request: Request, _ subject: Subject, detail: [String: String], durable: Bool,
               meter: UsageMeter?, on loop: Inbound, settle: @escaping @Sendable (Ending) async -> [String: String]) async throws -> Response {
        let venue = subject.venue
        let started = ContinuousClock.now
        // Fail closed: no call leaves while its record could not be written.
        do {
            guard gateway.audit.healthy else { throw AuditUnavailable() }
            if durable {
                try await gateway.audit.append(entry(subject, action: "gateway.forward", outcome: "allowed", request: request, extra: detail))
            }
        } catch {
            _ = await settle(.unsent)
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made", key: subject.key)
        }

        if let late = loop.reasonNotToSend() {
            _ = await settle(.unsent)
            throw GatewayRefusal(.serviceUnavailable, .unavailable, late, key: subject.key)
        }
        let upstream: UpstreamResponse
        do {
            upstream = try await clients.execute(outgoing, on: loop.eventLoop)
        } catch let cut as UpstreamCutShort {
            // The venue answered, then its answer broke off before any of it reached the agent: settled as
            // the cut-short answer it is (a 4xx still refused the call), answered like an unanswered call.
            let status = HTTPResponse.Status(code: Int(cut.status.code))
            _ = await settle(.answered(status, failed: true, usage: nil))
            let what = "the upstream's answer (status \(status.code)) broke off before its end"
            throw cut.cause == .timedOut
                ? GatewayRefusal(.gatewayTimeout, .timeout, what + ": it fell silent", key: subject.key)
                : GatewayRefusal(.badGateway, .upstream, what + ": the connection closed", key: subject.key)
        } catch {
            // No connection could be made: nothing left Warden. Otherwise the venue may have acted on the call.
            _ = await settle(error as? UpstreamError == .unreachable ? .unsent : .unanswered)
            throw error as? UpstreamError == .timedOut
                ? GatewayRefusal(.gatewayTimeout, .timeout, "the upstream did not answer in time", key: subject.key)
                : GatewayRefusal(.badGateway, .upstream, "the upstream could not be reached", key: subject.key)
        }

        var responseHeaders = Self.returnableHeaders(upstream.headers)
        if meter?.streaming == true { responseHeaders[.contentLength] = nil }
        let status = HTTPResponse.Status(code: Int(upstream.status.code))
        // Settles and records how the call ended; the agent has the last byte only after this.
        let conclude = { @Sendable [gateway, metrics] (failed: Bool, usage: TokenUsage?) async in
            var result = detail
            result.reserveCapacity(detail.count + 8)
            result["status"] = String(status.code)
            result["ms"] = Self.milliseconds(since: started)
            for (name, value) in await settle(.answered(status, failed: failed, usage: usage)) { result[name] = value }
            let outcome = failed ? "interrupted" : "forwarded"
            metrics.upstream(venue: venue.name, seconds: ContinuousClock.now - started)
            metrics.request(venue: venue.name, decision: outcome)
            gateway.audit.record(entry(subject, action: "gateway.result", outcome: outcome, request: request, extra: result))
        }

        let stream: UpstreamBody
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
            if responseHeaders[.contentLength] != nil, request.method != .head { responseHeaders[.contentLength] = String(answer.readableBytes) }
            return Response(status: status, headers: responseHeaders, body: .init(byteBuffer: answer))
        case .stream(let body):
            stream = body
        }
        // With a Content-Length the client is done at the last byte, so that byte waits until the call
        // is settled and audited; chunked streams end with `finish`, which comes after both anyway.
        let holdLast = responseHeaders[.contentLength] != nil
        let body = ResponseBody { [meter] writer in
            var meter = meter
            var failure: (any Error)?
            var last: ByteBuffer?
            do {
                for try await chunk in stream {
                    let out = meter.map { _ in ByteBuffer(bytes: meter!.consume(Array(buffer: chunk))) } ?? chunk
                    guard out.readableBytes > 0 else { continue }
                    if holdLast {
                        if let previous = last { try await writer.write(previous) }
                        last = out
                    } else {
                        try await writer.write(out)
                    }
                }
                if let rest = meter.map({ _ in meter!.finish() }), !rest.isEmpty { try await writer.write(ByteBuffer(bytes: rest)) }
            } catch {
                failure = error
            }
            await conclude(failure != nil, meter?.usage)
            if let failure { throw failure }
            if let last { try await writer.write(last) }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: responseHeaders, body: body)
    }

    // MARK: refusals

    func refuse(_ refusal: GatewayRefusal, venue: any VenueAdapter, method: String, path: String, requestID: String,
                sharedBy: String? = nil) async -> Response {
        let outcome: String = switch refusal.kind {
        case .rateLimit: "rate_limited"
        case .budget: "budget_exceeded"
        case .upstream, .timeout: "upstream_error"
        default: "refused"
        }
        metrics.request(venue: venue.name, decision: outcome)
        // While the audit store cannot keep up, refusals are counted (one `audit.gap` row when it can), not queued.
        if refusal.kind == .unavailable, !gateway.audit.healthy {
            gateway.audit.countUnrecorded()
        } else {
            gateway.audit.record(.gateway("gateway.refuse", outcome: outcome, venue: venue.name, key: refusal.key, credentialID: nil,
                                      credentialOwnerID: sharedBy, method: method, path: path, requestID: requestID,
                                      detail: ["status": String(refusal.status.code), "reason": refusal.reason]))
        }
        let (contentType, body) = venue.errorBody(status: refusal.status, kind: refusal.kind, message: refusal.reason)
        var headers: HTTPFields = [.contentType: contentType]
        if let wait = refusal.retryAfter { headers[.retryAfter] = String(wait) }
        return Response(status: refusal.status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    }

    /// Where a call came from: the event loop its upstream call goes out on, and what decides whether it
    /// may still be sent (its client is there, its request was read in full less than `sendWithin` ago).
    /// A class: the clock restarts once the body is read, for every holder.
    final class Inbound: Sendable {
        let eventLoop: any EventLoop
        let channel: any Channel
        let sendWithin: Duration
        private let sendBy: Mutex<ContinuousClock.Instant>

        init(_ context: WardenContext, sendWithin: Duration) {
            eventLoop = context.eventLoop
            channel = context.channel
            sendBy = Mutex(context.arrived + sendWithin)
            self.sendWithin = sendWithin
        }

        /// The request's body has been read: the deadline counts from now (a slow upload is not a slow store).
        func restart() {
            let now = ContinuousClock.now
            sendBy.withLock { $0 = now + sendWithin }
        }

        /// Why the call must not be sent now, if it must not: its client has gone, or it waited too long.
        func reasonNotToSend() -> String? {
            if !channel.isActive { return "the client disconnected before the call was sent; it was not sent" }
            if ContinuousClock.now > sendBy.withLock({ $0 }) {
                return "the call waited more than \(sendWithin) for the store and was not sent"
            }
            return nil
        }
    }

    func plainProblem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        let body = try? JSONSerialization.data(withJSONObject: ["type": "https://warden.local/problems/unknown_venue", "title": status.reasonPhrase,
                                                               "status": status.code, "code": "unknown_venue", "detail": detail], options: [.sortedKeys])
        return Response(status: status, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(data: body ?? Data())))
    }

    // MARK: helpers

    /// A request to the upstream with the gateway's timeout; the caller adds headers and body.
    func outgoingRequest(url: String, method: String) -> UpstreamHTTPRequest {
        UpstreamHTTPRequest(url: url, method: HTTPMethod(rawValue: method), headers: [:], body: nil,
                            timeout: .seconds(Int64(gateway.config.gateway.upstreamTimeoutSeconds)))
    }

    /// Who and what a forwarded call is about, for its audit rows.
    struct Subject: Sendable {
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

    func entry(_ s: Subject, action: String, outcome: String, request: Request, extra: [String: String] = [:]) -> AuditEntry {
        .gateway(action, outcome: outcome, venue: s.venue.name, key: s.key, credentialID: s.credentialID,
                 credentialOwnerID: s.credentialOwnerID, method: request.method.rawValue,
                 path: s.path.description, requestID: s.requestID, detail: extra)
    }

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]
    static let neverForwarded: Set<String> = ["x-warden-key", "cookie", "origin", "referer"]

    static let alwaysStripped = hopByHop.union(neverForwarded).union(MethodOverride.headers)

    static func forwardableHeaders(_ incoming: HTTPFields, venue: any VenueAdapter) -> HTTPFields {
        let auth = venue.inboundAuthHeaders
        var out = HTTPFields()
        for field in incoming where !alwaysStripped.contains(field.name.canonicalName) && !auth.contains(field.name) { out.append(field) }
        if let content = incoming[.contentLength] { out[.contentLength] = content }
        return HopByHop.removingConnectionOptions(from: out, namedIn: incoming)
    }

    static func returnableHeaders(_ upstream: HTTPHeaders) -> HTTPFields {
        var out = HTTPFields()
        out.reserveCapacity(upstream.count)
        for (name, value) in upstream {
            guard let fieldName = HTTPField.Name(name) else { continue }
            let lower = fieldName.canonicalName
            guard !hopByHop.contains(lower) || lower == "content-length", !lower.hasPrefix("access-control-"), lower != "set-cookie"
            else { continue }
            out.append(HTTPField(name: fieldName, value: value))
        }
        return out
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return Decimals.fixed(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15, places: 1)
    }
}
