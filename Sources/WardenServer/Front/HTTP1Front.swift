import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

extension HTTPServerBuilder {
    /// Warden's HTTP/1.1 connections (see `HTTP1Front`), answering with `responder`. Hummingbird still
    /// accepts the connections, stops them gracefully and runs the services; only the per-connection
    /// reading and writing is Warden's.
    public static func front(_ responder: FrontResponder, bodyCap: Int) -> HTTPServerBuilder {
        .init { _ in HTTP1Front(responder: responder, bodyCap: bodyCap) }
    }
}

/// One HTTP/1.1 connection, handled by channel handlers rather than an async stream per connection: a
/// request is read whole (up to `bodyCap`), then answered in one task started on the connection's
/// event loop, which writes the response straight to the channel. SwiftNIO's pipeline handler keeps
/// pipelined requests in order, answers malformed ones with 400, and closes idle connections when
/// the server stops.
///
/// Why: Hummingbird's own connection handler bridges every request part and every response write
/// through async sequences, and runs the connection's task on whichever loop accepted it. That cost
/// about 55 µs per call at one connection, more than Warden's own work on a call.
struct HTTP1Front: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }

    let responder: FrontResponder
    /// Bodies over this are not buffered: the route sees a body that fails to read (and refuses it).
    let bodyCap: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(CallHandler(responder: responder, bodyCap: bodyCap))
            return Connection(channel: channel)
        }
    }

    func handle(value: Connection, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}

/// Gathers one request's head and body, then hands the whole request to a task. The pipeline handler
/// in front delivers the next request only once this one's response has ended.
final class CallHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let responder: FrontResponder
    let bodyCap: Int
    private var head: HTTPRequest?
    private var body = ByteBuffer()

    init(responder: FrontResponder, bodyCap: Int) {
        self.responder = responder
        self.bodyCap = bodyCap
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = ByteBuffer()
            if Self.waitsForContinue(head, cap: bodyCap) {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        case .body(var part):
            guard let head else { return }  // the rest of a body already refused
            if body.readableBytes + part.readableBytes > bodyCap {
                self.head = nil
                body = ByteBuffer()
                start(Request(head: head, body: .init(asyncSequence: OverCap(cap: bodyCap))), on: context.channel)
            } else if body.readableBytes == 0 {
                body = part
            } else {
                body.writeBuffer(&part)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let whole = body
            body = ByteBuffer()
            start(Request(head: head, body: .init(buffer: whole)), on: context.channel)
        }
    }

    /// A client that asked whether to send its body is told to go on, unless the body it declared is
    /// over the cap: then it sends the body after its own wait, and the route refuses it.
    static func waitsForContinue(_ head: HTTPRequest, cap: Int) -> Bool {
        guard head.headerFields[.expect]?.lowercased() == "100-continue" else { return false }
        return (head.headerFields[.contentLength].flatMap(Int.init) ?? 0) <= cap
    }

    /// A request that cannot be parsed ends the connection (SwiftNIO's error handler has answered 400).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// With tasks on the event loops (`runTasksOnEventLoops`), the task starts on this loop and stays.
    private func start(_ request: Request, on channel: any Channel) {
        let responder = responder
        Task { await responder.answer(request, on: channel) }
    }
}

/// The body of a request longer than the front buffers: reading it fails as an over-long body does.
private struct OverCap: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let cap: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        let cap: Int
        func next() async throws -> ByteBuffer? { throw NIOTooManyBytesError(maxBytes: cap) }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(cap: cap) }
}
