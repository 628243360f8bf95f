import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import WardenCore

extension HTTPServerBuilder {
    /// Warden's HTTP/1.1 connections (see `HTTP1Front`), answering with `responder`. Hummingbird still
    /// accepts the connections, stops them gracefully and runs the services; only the per-connection
    /// reading and writing is Warden's.
    public static func front(
        _ responder: FrontResponder, bodyCap: Int,
        clientTimeout: TimeAmount = .seconds(Int64(WardenConfig.ServerSection().clientTimeoutSeconds)),
        shutdownGrace: TimeAmount = .seconds(Int64(WardenConfig.ServerSection().shutdownGraceSeconds))
    ) -> HTTPServerBuilder {
        .init { _ in HTTP1Front(responder: responder, bodyCap: bodyCap, clientTimeout: clientTimeout, shutdownGrace: shutdownGrace) }
    }
}

/// One HTTP/1.1 connection, handled by channel handlers rather than an async stream per connection:
/// SwiftNIO's HTTP/1 decoder and encoder, then `CallHandler`, which answers each request in one task
/// started on the connection's event loop, keeps pipelined requests in order, answers malformed ones
/// with 400 and closes idle connections when the server stops.
///
/// Why: Hummingbird's own connection handler bridges every request part and every response write
/// through async sequences, and runs the connection's task on whichever loop accepted it; the
/// measurements are in docs/benchmarks.md.
struct HTTP1Front: ServerChildChannel {
    struct Connection: ServerChildChannelValue {
        let channel: any Channel
    }

    let responder: FrontResponder
    /// The longest body any route takes: one declared longer is refused with 413 before a route runs,
    /// and a streamed one that grows past it fails to read.
    let bodyCap: Int
    /// How long a client may stay silent while Warden waits on it (see `CallHandler`).
    let clientTimeout: TimeAmount
    /// How long a stopping server lets an answer in progress go on before it closes the connection.
    let shutdownGrace: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            // No outbound header validation: every answer's fields are `HTTPTypes` fields, legal by construction.
            try pipeline.addHandler(HTTPResponseEncoder())
            try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try pipeline.addHandler(CallHandler(responder: responder, bodyCap: bodyCap, clientTimeout: clientTimeout,
                                                    shutdownGrace: shutdownGrace))
            return Connection(channel: channel)
        }
    }

    func handle(value: Connection, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}

/// Reads one request, then hands it to a task. A body of declared length up to `eagerLimit` (nearly
/// every gateway call) is read whole first. A longer or chunked body is streamed to the route, which
/// starts at once: the socket is read only as fast as the route takes the body, and a route that
/// answers without reading it (a refused key) has the rest read and dropped, so nobody can make Warden
/// hold a large body before it has decided anything.
///
/// A request pipelined behind one still being answered waits, with reading paused, until that answer
/// has ended and the socket has taken it (the channel is writable again): a client that pipelines and
/// never reads holds at most one answer and one read's worth of requests, then costs nothing until it
/// reads or its silence cuts it off. Reading is not paused while an answer is only awaited: SwiftNIO's
/// pipelining handler did that for every request, which cost two `epoll_ctl` calls per call (see
/// docs/benchmarks.md).
///
/// A client that stays silent for `clientTimeout` while Warden waits on it is cut off, so idle or
/// half-sent connections cannot pile up: an idle connection is closed, one part-way through sending a
/// request is answered 408 and closed. Nothing counts while an answer is awaited or written, or while
/// a route is not taking its streamed body: then it is Warden, not the client, that is silent.
///
/// It also translates between SwiftNIO's HTTP/1 messages and the routes' `HTTPTypes`, which keeps
/// what `HTTPTypes` has no place for: the request's version and whether its connection is kept alive
/// (an HTTP/1.0 request without `Connection: keep-alive`, or any with `Connection: close`, has its
/// connection closed after the answer).
final class CallHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    typealias BodyProducer = NIOThrowingAsyncSequenceProducer<ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDemand>

    static let eagerLimit = 256 * 1024
    let responder: FrontResponder
    let bodyCap: Int
    private var head: HTTPRequest?
    private var body = ByteBuffer()
    /// The current request's version and whether the connection outlives its answer.
    private var version = HTTPVersion.http1_1
    private var keepAlive = true
    /// The connection is ending: nothing more is read from it.
    private var closing = false
    /// A streamed body: where its parts go, how many came, and whether the route wants no more now.
    private var stream: BodyProducer.Source?
    private var streamed = 0
    /// Which request's stream is current: a stream's late signals (its route let go of it after a
    /// pipelined request began) must not touch the next one.
    private var streamNumber = 0
    private var paused = false
    private var readPending = false
    /// A request was handed to its route and its answer has not ended.
    private var answering = false
    /// The current request's parts are still arriving: its head came, its end has not.
    private var receiving = false
    /// Parts of requests pipelined behind the one being answered, in order.
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    /// The socket has room (the channel's writability): no new request starts, and nothing is read,
    /// while the answers already written wait for the client to take them.
    private var writable = true
    /// The server is stopping: the connection closes after the answer in progress.
    private var quiescing = false
    /// The task answering the current request.
    private var answer: Task<Void, Never>?
    private var context: ChannelHandlerContext?
    let clientTimeout: TimeAmount
    let shutdownGrace: TimeAmount
    /// When the client last sent something, or Warden last began waiting on it.
    private var lastHeard = NIODeadline.now()
    private var silenceCheck: RepeatedTask?

    init(responder: FrontResponder, bodyCap: Int, clientTimeout: TimeAmount, shutdownGrace: TimeAmount) {
        self.responder = responder
        self.bodyCap = bodyCap
        self.clientTimeout = clientTimeout
        self.shutdownGrace = shutdownGrace
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        lastHeard = .now()
        // Checked four times per timeout, so a silent client is cut off within 1.25 timeouts.
        let interval = TimeAmount.nanoseconds(max(clientTimeout.nanoseconds / 4, 1_000_000))
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        silenceCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            handler.value.checkSilence()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        silenceCheck?.cancel()
        silenceCheck = nil
        self.context = nil
    }

    /// Warden waits on the client: between requests, while one arrives, while a body is read that its
    /// route takes (or that is being dropped after the route answered), or while the client has not
    /// taken the answers written (a client that never reads is cut off like a silent one).
    private var waitsOnClient: Bool { !closing && !paused && (!answering || receiving) }

    private func checkSilence() {
        guard let context, waitsOnClient, NIODeadline.now() - lastHeard >= clientTimeout else { return }
        if receiving, !answering {
            refuse(.requestTimeout, context)
        } else {
            closing = true
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = .now()
        guard !closing else { return }
        let part = unwrapInboundIn(data)
        guard queued.isEmpty, !mustWait(part) else { return queued.append(part) }
        process(part, context: context)
    }

    /// A part of the next request waits while an answer is in progress, and its head also while the
    /// socket is full; anything behind a waiting part waits too.
    private func mustWait(_ part: HTTPServerRequestPart) -> Bool {
        if answering { return !receiving }
        if case .head = part { return !writable }
        return false
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let message):
            receiving = true
            version = message.version
            keepAlive = message.isKeepAlive
            guard let head = Self.request(message) else { return refuse(.badRequest, context) }
            let declared = head.headerFields[.contentLength].flatMap(Int.init) ?? 0
            if declared > bodyCap { return refuse(.payloadTooLarge, context) }
            if head.headerFields[.expect]?.lowercased() == "100-continue" {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .continue))), promise: nil)
            }
            if declared > Self.eagerLimit || head.headerFields[.transferEncoding] != nil {
                startStream(head, context: context)
            } else {
                self.head = head
                body = ByteBuffer()
            }
        case .body(var part):
            if stream != nil { return feed(part) }
            guard head != nil else { return }
            if body.readableBytes == 0 { body = part } else { body.writeBuffer(&part) }
        case .end:
            receiving = false
            if let stream {
                stream.finish()
                self.stream = nil
                resumeReading()
                return
            }
            guard let head else { return }
            self.head = nil
            let whole = body
            body = ByteBuffer()
            start(Request(head: head, body: .init(buffer: whole)), on: context.channel)
        }
    }

    /// The routes' view of a request head, or nil when it has no `HTTPTypes` form. The path of the
    /// usual origin-form target is taken as it is; any other form goes through the library's conversion,
    /// which parses every target as a URL (its cost: docs/benchmarks.md).
    static func request(_ message: HTTPRequestHead) -> HTTPRequest? {
        guard message.uri.utf8.first == UInt8(ascii: "/") else {
            return try? HTTPRequest(message, secure: false, splitCookie: false)
        }
        guard let method = try? HTTPRequest.Method(message.method) else { return nil }
        return HTTPRequest(method: method, scheme: "http", authority: message.headers.first(name: "host"),
                           path: message.uri, headerFields: HTTPFields(message.headers, splitCookie: false))
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            context.write(wrapOutboundOut(.head(responseHead(response))), promise: promise)
        case .body(let part):
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: promise)
        case .end(let trailers):
            let end = wrapOutboundOut(.end(trailers.map(HTTPHeaders.init)))
            answering = false
            lastHeard = .now()
            if keepAlive, !quiescing {
                context.write(end, promise: promise)
                // A full socket holds the next request back until `channelWritabilityChanged`.
                return answerQueued(context)
            }
            // Read nothing more: a request pipelined after this one is not answered.
            closing = true
            queued.removeAll()
            let ended = context.eventLoop.makePromise(of: Void.self)
            ended.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
            ended.futureResult.cascade(to: promise)
            context.write(end, promise: ended)
        }
    }

    /// The response in HTTP/1 terms: an HTTP/1.0 client gets an HTTP/1.0 answer (so a body of unknown
    /// length is framed by the close, not chunked), told whether the connection stays.
    private func responseHead(_ response: HTTPResponse) -> HTTPResponseHead {
        var head = HTTPResponseHead(response)
        guard response.status.code >= 200 else { return head }
        if version == .http1_0 { head.version = .http1_0 }
        if !keepAlive || quiescing {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else if version == .http1_0 {
            head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        return head
    }

    func read(context: ChannelHandlerContext) {
        guard !closing else { return }
        if holdsReads { readPending = true } else { context.read() }
    }

    /// Reading waits while the route wants no more of its body, a pipelined request waits, or the
    /// socket is full.
    private var holdsReads: Bool { paused || !queued.isEmpty || !writable }

    /// The answer ended, or the socket took what was written: the requests that waited go on, in order,
    /// until one is being answered and all of its parts that came are with its route (a streamed body's
    /// route starts at its head), or the socket is full.
    private func answerQueued(_ context: ChannelHandlerContext) {
        while !closing, let part = queued.first, !mustWait(part) {
            queued.removeFirst()
            process(part, context: context)
        }
        readIfHeld()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writable = context.channel.isWritable
        if writable, context.channel.isActive {
            lastHeard = .now()  // the client took some of its answers
            answerQueued(context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func startStream(_ head: HTTPRequest, context: ChannelHandlerContext) {
        streamNumber += 1
        let demand = BodyDemand(handler: NIOLoopBound(self, eventLoop: context.eventLoop), stream: streamNumber)
        let producer = BodyProducer.makeSequence(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
                                                 finishOnDeinit: false, delegate: demand)
        stream = producer.source
        streamed = 0
        start(Request(head: head, body: .init(asyncSequence: producer.sequence)), on: context.channel)
    }

    private func feed(_ part: ByteBuffer) {
        guard let stream else { return }
        streamed += part.readableBytes
        if streamed > bodyCap {
            stream.finish(NIOTooManyBytesError(maxBytes: bodyCap))
            return bodyAbandoned()
        }
        switch stream.yield(part) {
        case .produceMore: break
        case .stopProducing: paused = true
        case .dropped: bodyAbandoned()
        }
    }

    /// The route of stream `number` wants more of its body.
    fileprivate func wantsMore(_ number: Int) {
        if number == streamNumber { resumeReading() }
    }

    /// The route of stream `number` let go of its body.
    fileprivate func letGo(_ number: Int) {
        if number == streamNumber, stream != nil { bodyAbandoned() }
    }

    private func resumeReading() {
        if paused { lastHeard = .now() }
        paused = false
        readIfHeld()
    }

    private func readIfHeld() {
        if readPending, !holdsReads, let context {
            readPending = false
            context.read()
        }
    }

    /// The route stopped reading the body (it answered, or the body went over the cap): the rest is
    /// read and dropped, so the connection can carry the next request.
    private func bodyAbandoned() {
        // Finished here too (a no-op when the route's side already ended it): a source dropped unfinished traps.
        stream?.finish()
        stream = nil
        resumeReading()
    }

    /// A request refused before any route sees it (a body declared longer than any route takes, or a
    /// head with no `HTTPTypes` form) is answered with `status` and its connection closes, its body
    /// unread. A client that sent `Expect: 100-continue` is told to go on only for other bodies.
    private func refuse(_ status: HTTPResponseStatus, _ context: ChannelHandlerContext) {
        head = nil
        closing = true
        let refusal = HTTPResponseHead(version: version, status: status, headers: ["connection": "close", "content-length": "0"])
        context.write(wrapOutboundOut(.head(refusal)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    /// Bytes that cannot be parsed end the connection: with a 400 when no answer is in progress,
    /// otherwise once the answer in progress has ended. Any other error closes it at once.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stream?.finish(error)
        stream = nil
        queued.removeAll()
        guard error is HTTPParserError || error is ByteToMessageDecoderError else { return context.close(promise: nil) }
        if answering {
            closing = true
            keepAlive = false
        } else if !closing {
            refuse(.badRequest, context)
        }
    }

    /// The server is stopping: an idle connection closes now, a busy one after its answer or after
    /// `shutdownGrace`, whichever comes first. The client
    /// closed its side: the connection closes now, also during an answer, so a gateway call whose client
    /// has gone is not sent (its route sees the channel inactive), as a proxy treats a client's abort.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            closing = true
            return context.close(promise: nil)
        }
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        quiescing = true
        queued.removeAll()
        if !answering, !receiving { return context.close(promise: nil) }
        // An answer that does not end within the grace (a stream that never ends) is ended by the close:
        // its route sees the write fail and records the call as interrupted.
        context.eventLoop.scheduleTask(in: shutdownGrace) { [channel = context.channel] in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Whatever the answer waits for (an upstream stream that has gone quiet) is not waited for any more.
        answer?.cancel()
        answer = nil
        stream?.finish(ChannelError.eof)
        stream = nil
        queued.removeAll()
        context.fireChannelInactive()
    }

    /// With tasks on the event loops (`runTasksOnEventLoops`), the task starts on this loop and stays.
    private func start(_ request: Request, on channel: any Channel) {
        answering = true
        let responder = responder
        answer = Task { await responder.answer(request, on: channel) }
    }
}

/// Tells the connection's handler, on its loop, when the route wants more of a streamed body or has
/// stopped reading it.
struct BodyDemand: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<CallHandler>
    let stream: Int

    func produceMore() {
        handler.eventLoop.execute { handler.value.wantsMore(stream) }
    }

    func didTerminate() {
        handler.eventLoop.execute { handler.value.letGo(stream) }
    }
}
