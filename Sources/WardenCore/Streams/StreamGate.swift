import Foundation
import HTTPTypes
import WardenVenues

/// How an agent's WebSocket handshake was decided: refused with an HTTP answer, or to be opened.
public enum StreamOpening: Sendable {
    case refused(GatewayAnswer)
    case open(StreamPlan)
}

/// A stream Warden will open: the venue's WebSocket URL and handshake fields (the credential in them),
/// and the session its messages go through.
public struct StreamPlan: Sendable {
    public let url: String
    public let headers: HTTPFields
    public let session: StreamSession
}

extension GatewayCalls {
    /// The WebSocket handshake fields the agent's client made for Warden; the venue's are made anew.
    static let handshakeFields: [HTTPField.Name] = [
        .secWebSocketKey, .secWebSocketVersion, .secWebSocketExtensions, .secWebSocketProtocol, .secWebSocketAccept,
    ]

    /// Decides an agent's WebSocket handshake as a call is decided (the browser rules, the key, the
    /// service's rules), then where it goes and with which credential. Every refusal is recorded as a
    /// call's is; an opened stream gets a `gateway.stream_open` row.
    public func openStream(_ call: InboundCall) async -> StreamOpening {
        guard let venue = gateway.registry.venue(named: call.venueName) else { return .refused(unknownVenue(call)) }
        var sharedBy: String?
        do {
            try checkBrowser(call)
            guard gateway.audit.healthy else {
                throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the stream was not opened")
            }
            let path = try gateway.canonical(method: "GET", rawPath: call.rawPath, query: call.query, headers: call.headers)
            guard let route = venue.stream(at: path.description) else {
                throw GatewayRefusal(
                    .notFound, .invalidRequest, "\(venue.name) has no stream Warden relays at \(path.description.prefix(128))")
            }
            var headers = ForwardedHeaders.forwardable(call.headers, venue: venue)
            for name in Self.handshakeFields { headers[name] = nil }
            let base = gateway.config.streamBase(venue: venue, path: path.description, route: route)
            let url = Self.webSocketURL(base) + path.encoded + (call.query.map { $0.isEmpty ? "" : "?" + $0 } ?? "")
            let presented = gateway.presentedKey(venue: venue, headers: call.headers)
            let subject: CallSubject
            let policy: any StreamPolicy
            if route == .marketData || route == .requests || route == .authInMessages, presented == nil {
                subject = CallSubject(venue: venue, key: nil, credentialID: nil, path: path, requestID: call.requestID)
                policy = try requestPolicy(venue, route: route, admission: nil)
            } else {
                let admission = try await gateway.admit(
                    venue: venue, method: "GET", rawPath: call.rawPath, query: call.query, headers: call.headers,
                    requestID: call.requestID)
                if !admission.ownsCredential { sharedBy = admission.credentialOwnerID }
                subject = CallSubject(admission)
                switch route {
                case .relay:
                    venue.authorize(&headers, secret: admission.secret)
                    policy = Unread()
                case .marketData:
                    policy = Unread()
                case .signedHandshake:
                    headers = try signedHandshake(venue, path: path.description, headers: headers, admission: admission)
                    policy = VenueCommands()
                case .realtime:
                    venue.authorize(&headers, secret: admission.secret)
                    let budget = try RealtimeBudget(gateway: gateway, admission: admission, query: call.query)
                    try await budget.holdDeposit()
                    policy = budget
                case .requests, .authInMessages:
                    policy = try requestPolicy(venue, route: route, admission: admission)
                }
            }
            let holder = subject.key.map { "key:" + $0.rootID } ?? "client:" + call.origin.clientAddress
            let limit = gateway.config.gateway.streamMaxPerKey
            guard gateway.streams.take(holder, limit: limit) else {
                throw GatewayRefusal(
                    .tooManyRequests, .rateLimit,
                    "\(limit) streams are already open for this key and the keys minted from it (stream_max_per_key)", key: subject.key)
            }
            let session = StreamSession(
                gateway: gateway, subject: subject, policy: policy, presented: presented, holder: holder,
                client: Self.caller(call, into: [:]), idleTimeout: .seconds(gateway.config.gateway.streamIdleSeconds))
            return .open(StreamPlan(url: url, headers: headers, session: session))
        } catch let refusal as GatewayRefusal {
            return .refused(refuse(refusal, call, venue: venue, sharedBy: refusal.sharedBy ?? sharedBy))
        } catch {
            return .refused(refuse(GatewayRefusal(.badGateway, .upstream, "the stream could not be opened"), call, venue: venue))
        }
    }

    /// A keyless stream's policy: market data unread, a request stream's requests each admitted on the key
    /// it names.
    func requestPolicy(_ venue: any VenueAdapter, route: StreamRoute, admission: Admission?) throws(GatewayRefusal) -> any StreamPolicy {
        if route == .authInMessages, let authVenue = venue as? any StreamAuthVenue {
            return MessageAuth(gateway: gateway, venue: authVenue)
        }
        guard route == .requests else { return Unread() }
        guard let requests = venue as? any StreamRequestVenue else {
            throw GatewayRefusal(.notFound, .invalidRequest, "\(venue.name) has no request stream")
        }
        return VenueRequests(gateway: gateway, venue: requests, handshake: admission)
    }

    /// A venue that signs its stream's handshake signs it as a GET of its path (Kalshi).
    func signedHandshake(_ venue: any VenueAdapter, path: String, headers: HTTPFields, admission: Admission) throws(GatewayRefusal)
        -> HTTPFields
    {
        guard let exchange = venue as? any ExchangeVenue else { return headers }
        var request = UpstreamRequest(method: "GET", path: path, query: "", headers: headers, body: Data())
        do { try exchange.sign(&request, secret: admission.secret, signed: true, now: Date()) } catch {
            throw GatewayRefusal(.badGateway, .upstream, error.description, key: admission.key)
        }
        return request.headers
    }

    /// `https://…` as `wss://…`, `http://…` as `ws://…`; a `ws`/`wss` URL as it is.
    static func webSocketURL(_ base: String) -> String {
        var url = base.hasSuffix("/") ? String(base.dropLast()) : base
        if url.hasPrefix("https://") {
            url = "wss://" + url.dropFirst("https://".count)
        } else if url.hasPrefix("http://") {
            url = "ws://" + url.dropFirst("http://".count)
        }
        return url
    }

    /// The stream is open at both ends: its first row.
    public func streamOpened(_ session: StreamSession) {
        session.record(.streamOpen, outcome: .allowed, ["status": "101"])
    }

    /// Why the venue's side of a stream did not open.
    public enum StreamFailure: Sendable {
        case refused, unreachable, timedOut
    }

    /// The venue refused the stream's handshake, could not be reached or did not answer in time: answered as
    /// a call the venue failed.
    public func streamUnopened(_ session: StreamSession, _ call: InboundCall, failure: StreamFailure) async -> GatewayAnswer {
        gateway.streams.give(session.holder)
        await session.policy.ended(session)  // what it held at the handshake (a deposit) goes back
        var refusal =
            switch failure {
            case .refused: GatewayRefusal(.badGateway, .upstream, "the venue refused the stream's handshake", key: session.subject.key)
            case .unreachable:
                GatewayRefusal(.badGateway, .upstream, "the venue's stream could not be reached", key: session.subject.key)
            case .timedOut:
                GatewayRefusal(
                    .gatewayTimeout, .timeout, "the venue did not answer the stream's handshake in time", key: session.subject.key)
            }
        refusal.sharedBy = session.subject.credentialOwnerID
        return refuse(refusal, call, venue: session.subject.venue, sharedBy: session.subject.credentialOwnerID)
    }
}
