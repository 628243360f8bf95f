import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOWebSocket
@_spi(WSInternal) import WSCore

/// Limits every WebSocket the front or the upstream side opens is held to.
public struct WebSocketLimits: Sendable {
    /// The longest frame taken; a longer one closes the socket (1009).
    public var maxFrameBytes: Int
    /// The longest message (its frames joined) taken; a longer one closes the socket (1009).
    public var maxMessageBytes: Int
    /// How often a ping is sent; a peer that has not answered the last one by then is closed.
    public var pingInterval: Duration

    public init(maxFrameBytes: Int, maxMessageBytes: Int, pingInterval: Duration) {
        self.maxFrameBytes = maxFrameBytes
        self.maxMessageBytes = maxMessageBytes
        self.pingInterval = pingInterval
    }
}

/// The agent's side of a WebSocket that a route accepted.
public typealias WebSocketSession = @Sendable (WebSocketInboundStream, WebSocketOutboundWriter) async throws -> Void

/// What a route that accepted a WebSocket does if the connection never became one (the client left first).
public typealias WebSocketAbandoned = @Sendable () async -> Void

/// How a route takes its request's connection over as a WebSocket: it `accept`s with the session to
/// run and answers 101 (`WebSocketSwitch.answer`); the front writes that answer, switches the
/// connection from HTTP/1 to WebSocket frames and runs the session until the socket closes.
public final class WebSocketSwitch: Sendable {
    private let accepted = NIOLockedValueBox<Accepted?>(nil)

    struct Accepted {
        let session: WebSocketSession
        let abandoned: WebSocketAbandoned
        let limits: WebSocketLimits
    }

    public init() {}

    /// `session` runs once the connection is a WebSocket; `abandoned` instead, if it never becomes one.
    public func accept(limits: WebSocketLimits, session: @escaping WebSocketSession, abandoned: @escaping WebSocketAbandoned) {
        accepted.withLockedValue { $0 = Accepted(session: session, abandoned: abandoned, limits: limits) }
    }

    func take() -> Accepted? {
        accepted.withLockedValue { taken in
            defer { taken = nil }
            return taken
        }
    }

    /// The request asks for a WebSocket (RFC 6455 §4.2.1): GET, `Upgrade: websocket`, `upgrade` among
    /// the Connection options.
    public static func isUpgrade(_ request: HTTPRequest) -> Bool {
        guard request.method == .get, let upgrade = request.headerFields[.upgrade],
            upgrade.lowercased().split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == "websocket" })
        else { return false }
        return request.headerFields[values: .connection].contains { value in
            value.lowercased().split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces) == "upgrade" }
        }
    }

    /// The 101 answer's fields for a handshake, or why it cannot be taken: version 13 and a key of 16
    /// bytes in base64 are required.
    public static func answer(to request: HTTPRequest) -> Result<HTTPFields, HandshakeError> {
        guard request.headerFields[.secWebSocketVersion] == "13" else { return .failure(.init("Sec-WebSocket-Version must be 13")) }
        guard let key = request.headerFields[.secWebSocketKey], Data(base64Encoded: key)?.count == 16 else {
            return .failure(.init("Sec-WebSocket-Key must be 16 bytes in base64"))
        }
        let digest = Insecure.SHA1.hash(data: Data((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        return .success([.upgrade: "websocket", .connection: "upgrade", .secWebSocketAccept: Data(digest).base64EncodedString()])
    }

    public struct HandshakeError: Error, Sendable {
        public let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Writes the 101 head, swaps the connection's HTTP/1 handlers for WebSocket frame handlers and runs
    /// `session` on it until the socket closes. `CallHandler` holds reads after an upgrade request, so
    /// no byte of the WebSocket reaches the HTTP parser.
    static func run(_ accepted: Accepted, head: HTTPResponse, on channel: any Channel, logger: Logger) async {
        let limits = accepted.limits
        let ran = NIOLockedValueBox(false)
        defer {
            if !ran.withLockedValue({ $0 }) { Task { await accepted.abandoned() } }
        }
        let switched = channel.eventLoop.submit { () throws -> NIOAsyncChannel<WebSocketFrame, WebSocketFrame> in
            let pipeline = channel.pipeline.syncOperations
            channel.writeAndFlush(HTTPResponsePart.head(head), promise: nil)
            try pipeline.removeHandler(pipeline.handler(type: CallHandler.self))
            try pipeline.removeHandler(pipeline.handler(type: HTTPResponseEncoder.self))
            try pipeline.removeHandler(pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
            try pipeline.addHandler(WebSocketFrameEncoder())
            try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: limits.maxFrameBytes)))
            try pipeline.addHandler(WebSocketProtocolErrorHandler())
            try pipeline.addHandler(MaskedFramesOnly())
            let socket = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            channel.read()
            return socket
        }
        guard let socket = try? await switched.get() else {
            try? await channel.close()
            return
        }
        _ = try? await WebSocketHandler.handle(
            type: .server,
            configuration: .init(
                extensions: [], autoPing: .enabled(timePeriod: limits.pingInterval), closeTimeout: .seconds(5), validateUTF8: true,
                maxFrameSize: limits.maxFrameBytes),
            asyncChannel: socket, context: SocketContext(logger: logger)
        ) { inbound, outbound, _ in
            ran.withLockedValue { $0 = true }
            try await accepted.session(inbound, outbound)
        }
    }
}

struct SocketContext: WebSocketContext {
    let logger: Logger
}

/// A client's frames must be masked (RFC 6455 §5.1): an unmasked one closes the connection with 1002.
final class MaskedFramesOnly: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    private var closed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let frame = unwrapInboundIn(data)
        guard frame.maskKey != nil else {
            closed = true
            var reason = context.channel.allocator.buffer(capacity: 2)
            reason.write(webSocketErrorCode: .protocolError)
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, data: reason)
            context.writeAndFlush(wrapOutboundOut(close)).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
    }
}
