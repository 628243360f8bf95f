import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WardenCore
import WardenHTTP
import WSCore

/// `/proxy/{venue}/…` asked for a WebSocket: the handshake is decided as a call is (`GatewayCalls.openStream`),
/// the venue's stream is opened with the real credential before the agent is answered 101, and the
/// two are relayed (`StreamRelay`) until either side closes, the agent falls idle, or its key stops standing.
extension GatewayController {
    func openStream(_ request: Request, _ context: WardenContext, _ call: InboundCall) async -> Response {
        let accept: HTTPFields
        switch WebSocketSwitch.answer(to: request.head) {
        case .failure(let error):
            let problem = ["status": 400, "title": "Bad Request", "code": "invalid_request", "detail": error.reason] as [String: Any]
            let body = (try? JSONSerialization.data(withJSONObject: problem, options: [.sortedKeys])) ?? Data()
            return Response(
                status: .badRequest, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(data: body)))
        case .success(let fields): accept = fields
        }
        switch await calls.openStream(call) {
        case .refused(let answer):
            return Self.response(answer)
        case .open(let plan):
            let upstream: UpstreamSocket
            do {
                upstream = try await UpstreamSocket.open(
                    url: plan.url, headers: plan.headers, limits: streamLimits, within: handshakeWithin, logger: context.logger)
            } catch {
                let failure: GatewayCalls.StreamFailure =
                    switch error {
                    case .refused: .refused
                    case .unreachable: .unreachable
                    case .timedOut: .timedOut
                    }
                return Self.response(await calls.streamUnopened(plan.session, call, failure: failure))
            }
            calls.streamOpened(plan.session)
            let relay = StreamRelay(session: plan.session, upstream: upstream, maxMessageBytes: streamLimits.maxMessageBytes)
            context.webSocket.accept(limits: streamLimits) { inbound, outbound in
                try await relay.run(inbound, outbound)
            } abandoned: {
                await relay.abandon()
            }
            return Response(status: .switchingProtocols, headers: accept)
        }
    }
}

/// Relays one stream both ways. Each direction reads a message only once the last one was written on
/// the other side, so a slow reader slows the writer's socket instead of filling Warden's memory. A
/// watchdog closes the stream when its key stops standing (revoked, frozen, owner disabled: within the
/// key cache's poll plus `checkEvery`) or its agent has sent nothing for the session's idle timeout.
struct StreamRelay: Sendable {
    let session: StreamSession
    let upstream: UpstreamSocket
    let maxMessageBytes: Int
    static let checkEvery = Duration.milliseconds(250)

    /// How one side of the relay ended.
    enum End: Error {
        /// `keyStopped`: the key no longer stands, or the policy closed the stream (the reason says which).
        case agentClosed, venueClosed, idle, keyStopped(String)
        case failed(any Error, agent: Bool)

        var reason: String {
            switch self {
            case .agentClosed: "the agent closed the stream"
            case .venueClosed: "the venue closed the stream"
            case .idle: "the agent sent nothing for the idle timeout"
            case .keyStopped(let why): "closed by Warden: " + why
            case .failed(_, let agent): agent ? "the agent's side failed" : "the venue's side failed"
            }
        }
    }

    func run(_ agentIn: WebSocketInboundStream, _ agentOut: WebSocketOutboundWriter) async throws {
        let heard = LastHeard()
        for message in session.opening { try? await upstream.outbound.write(.text(String(decoding: message, as: UTF8.self))) }
        let end = await withTaskGroup(of: End.self) { group in
            group.addTask { await pump(from: .agent, agentIn, agentOut, heard: heard) }
            group.addTask { await pump(from: .venue, upstream.inbound, agentOut, heard: heard) }
            group.addTask { await watch(heard: heard) }
            let first = await group.next() ?? .agentClosed
            group.cancelAll()
            return first
        }
        try? await upstream.outbound.close(.normalClosure, reason: nil)
        upstream.finish()
        await session.closed(end.reason)
        switch end {
        case .keyStopped(let why): try? await agentOut.close(.policyViolation, reason: String(why.prefix(120)))
        case .idle: try? await agentOut.close(.goingAway, reason: "idle")
        case .venueClosed: try? await agentOut.close(.normalClosure, reason: nil)
        case .failed(let error, agent: true): throw error  // closed with the code it carries (a message too large: 1009)
        case .failed(_, agent: false): try? await agentOut.close(.unexpectedServerError, reason: "the venue's side failed")
        case .agentClosed: break
        }
    }

    /// The agent left before its side became a WebSocket: the venue's side closes, the stream is recorded as closed.
    func abandon() async {
        try? await upstream.outbound.close(.normalClosure, reason: nil)
        upstream.finish()
        await session.closed("the agent left before the stream opened")
    }

    /// Which end of the stream a message comes from.
    enum Side { case agent, venue }

    /// One direction of the relay: each message read from `side` is relayed unread (and counted) or taken by
    /// the session's policy. A failure to read is that side's; a failure to write, the other's.
    func pump(from side: Side, _ inbound: WebSocketInboundStream, _ agentOut: WebSocketOutboundWriter, heard: LastHeard) async -> End {
        let fromAgent = side == .agent
        let reads = fromAgent ? session.readsAgent : session.readsVenue
        var messages = inbound.messages(maxSize: maxMessageBytes).makeAsyncIterator()
        while true {
            let next: WebSocketMessage?
            do { next = try await messages.next() } catch { return .failed(error, agent: fromAgent) }
            guard let message = next else { return fromAgent ? .agentClosed : .venueClosed }
            if fromAgent { heard.now() }
            do {
                if reads {
                    let data = Self.data(message)
                    try await send(fromAgent ? await session.fromAgent(data) : await session.fromVenue(data), agentOut)
                } else {
                    if fromAgent { session.count(agent: Self.size(message)) } else { session.count(venue: Self.size(message)) }
                    try await (fromAgent ? upstream.outbound : agentOut).write(Self.frame(message))
                }
            } catch let end as End {
                return end
            } catch {
                return .failed(error, agent: !fromAgent)
            }
        }
    }

    func send(_ step: StreamStep, _ agentOut: WebSocketOutboundWriter) async throws {
        for message in step.toVenue { try await upstream.outbound.write(.text(String(decoding: message, as: UTF8.self))) }
        for message in step.toAgent { try await agentOut.write(.text(String(decoding: message, as: UTF8.self))) }
        if let reason = step.close { throw End.keyStopped(reason) }
    }

    func watch(heard: LastHeard) async -> End {
        let idle = session.idleTimeout.components.seconds * 1_000_000_000 + session.idleTimeout.components.attoseconds / 1_000_000_000
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.checkEvery)
            if Task.isCancelled { break }
            if let why = await session.mustClose() { return .keyStopped(why) }
            if Self.now() - heard.nanos.load(ordering: .relaxed) > idle { return .idle }
        }
        return .agentClosed
    }

    static func now() -> Int64 { Int64(DispatchTime.now().uptimeNanoseconds) }

    /// When the agent last sent a message (monotonic nanoseconds).
    final class LastHeard: Sendable {
        let nanos = Atomic<Int64>(StreamRelay.now())
        func now() { nanos.store(StreamRelay.now(), ordering: .relaxed) }
    }

    static func frame(_ message: WebSocketMessage) -> WebSocketOutboundWriter.OutboundFrame {
        switch message {
        case .text(let text): .text(text)
        case .binary(let buffer): .binary(buffer)
        }
    }

    static func size(_ message: WebSocketMessage) -> Int {
        switch message {
        case .text(let text): text.utf8.count
        case .binary(let buffer): buffer.readableBytes
        }
    }

    static func data(_ message: WebSocketMessage) -> Data {
        switch message {
        case .text(let text): Data(text.utf8)
        case .binary(let buffer): Data(buffer: buffer)
        }
    }
}
