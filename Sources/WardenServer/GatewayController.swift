import Foundation
import Synchronization
import Hummingbird
import HTTPTypes
import NIOCore
import NIOHTTP1
import WardenCore
import WardenHTTP
import WardenVenues

/// `/proxy/{venue}/…`: turns an HTTP request into an `InboundCall` for `GatewayCalls` (Core), which
/// decides, records and sends it through the upstream client, and turns its answer back into HTTP.
struct GatewayController {
    let calls: GatewayCalls
    let clients: UpstreamClients
    /// How long after its request was read a call may still be sent (`[gateway] send_deadline_seconds`).
    let sendWithin: Duration
    /// Frame, message and ping settings of every stream (`[gateway] stream_*`).
    let streamLimits: WebSocketLimits
    /// How long a venue may take to answer a stream's handshake (`[gateway] upstream_timeout_seconds`).
    let handshakeWithin: Duration

    static let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .head, .options]

    func addRoutes(to router: Router<WardenContext>) {
        for method in Self.methods {
            router.on("/proxy/{venue}/**", method: method) { request, context in await handle(request, context) }
            router.on("/proxy/{venue}", method: method) { request, context in await handle(request, context) }
            for (prefix, venue) in VenueRegistry.rootMounts {
                router.on("\(prefix)/**", method: method) { request, context in
                    await handle(request, context, venue: venue, rawPath: request.uri.path)
                }
            }
        }
    }

    func handle(_ request: Request, _ context: WardenContext) async -> Response {
        let name = context.parameters.get("venue") ?? ""
        return await handle(request, context, venue: name, rawPath: String(request.uri.path.dropFirst("/proxy/\(name)".count)))
    }

    func handle(_ request: Request, _ context: WardenContext, venue name: String, rawPath: String) async -> Response {
        let call = InboundCall(
            venueName: name, method: request.method, rawPath: rawPath,
            query: request.uri.query, authority: request.head.authority, headers: request.headers, requestID: context.requestID,
            origin: Inbound(context, sendWithin: sendWithin), body: InboundBody(body: request.body),
            transport: ClientTransport(clients: clients, eventLoop: context.eventLoop))
        if WebSocketSwitch.isUpgrade(request.head) { return await openStream(request, context, call) }
        return Self.response(await calls.handle(call))
    }

    static func response(_ answer: GatewayAnswer) -> Response {
        switch answer.body {
        case .whole(let buffer):
            return Response(status: answer.status, headers: answer.headers, body: .init(byteBuffer: buffer))
        case .stream(let stream):
            return Response(
                status: answer.status, headers: answer.headers,
                body: ResponseBody { writer in
                    try await stream.write { try await writer.write($0) }
                    try await writer.finish(nil)
                })
        }
    }

    /// Where a call came from: whether it may still be sent (its client is there, its request was read in
    /// full less than `sendWithin` ago). A class: the clock restarts once the body is read, for every holder.
    final class Inbound: CallOrigin {
        let channel: any Channel
        let client: ClientOrigin
        let sendWithin: Duration
        private let sendBy: Mutex<ContinuousClock.Instant>

        init(_ context: WardenContext, sendWithin: Duration) {
            channel = context.channel
            client = context.origin
            sendBy = Mutex(context.arrived + sendWithin)
            self.sendWithin = sendWithin
        }

        func bodyRead() {
            let now = ContinuousClock.now
            sendBy.withLock { $0 = now + sendWithin }
        }

        var clientAddress: String { client.address }

        var certificate: (subject: String, fingerprint: String)? {
            client.certificate.map { ($0.subject, $0.fingerprint) }
        }

        func reasonNotToSend() -> String? {
            if !channel.isActive { return "the client disconnected before the call was sent; it was not sent" }
            if ContinuousClock.now > sendBy.withLock({ $0 }) {
                return "the call waited more than \(sendWithin) for the store and was not sent"
            }
            return nil
        }
    }

    /// The request's body, read whole on demand.
    struct InboundBody: CallBody {
        let body: RequestBody

        func collect(upTo limit: Int) async throws(CallBodyError) -> ByteBuffer {
            do { return try await body.collect(upTo: limit) } catch is NIOTooManyBytesError { throw .tooLarge } catch { throw .malformed }
        }
    }

    /// The upstream client on the event loop that serves the agent.
    struct ClientTransport: CallTransport {
        let clients: UpstreamClients
        let eventLoop: any EventLoop

        func send(_ request: CallRequest) async throws(TransportFailure) -> TransportAnswer {
            let origin = request.origin
            let outgoing = UpstreamHTTPRequest(
                url: request.url, method: HTTPMethod(rawValue: request.method),
                headers: HTTPHeaders(request.headers.map { ($0.name.rawName, $0.value) }), body: request.body,
                timeout: TimeAmount(request.timeout), retryable: HTTPRequest.Method.isRead(request.method),
                stillWanted: { origin.reasonNotToSend() == nil })
            let response: UpstreamResponse
            do { response = try await clients.execute(outgoing, on: eventLoop) } catch let cut as UpstreamCutShort {
                throw .cutShort(status: HTTPResponse.Status(code: Int(cut.status.code)), silent: cut.cause == .timedOut)
            } catch let error as UpstreamError {
                switch error {
                case .unreachable, .invalidURL: throw .unreachable
                case .withdrawn: throw .withdrawn
                case .timedOut: throw .timedOut
                default: throw .failed
                }
            } catch {
                throw .failed
            }
            let headers = ForwardedHeaders.returnable(response.headers, count: response.headers.count)
            let status = HTTPResponse.Status(code: Int(response.status.code))
            switch response.body {
            case .whole(let whole): return TransportAnswer(status: status, headers: headers, body: .whole(whole))
            case .stream(let stream): return TransportAnswer(status: status, headers: headers, body: .stream(stream))
            }
        }
    }
}

extension GatewayMetrics: CallObserver {
    func ended(venue: String, outcome: Outcome) { request(venue: venue, outcome: outcome) }
    func upstream(venue: String, took: Duration) { upstream(venue: venue, seconds: took) }
}
