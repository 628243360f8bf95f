import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL

extension HTTPServerBuilder {
    /// The gateway's HTTP/1.1 connections (see `HTTP1Front`), answering with `responder`. Hummingbird still
    /// accepts the connections, stops them gracefully and runs the services; only the per-connection
    /// reading and writing is this module's.
    public static func front(
        _ responder: FrontResponder, bodyCap: Int,
        clientTimeout: TimeAmount = .seconds(60), shutdownGrace: TimeAmount = .seconds(10),
        tls: FrontTLS? = nil, proxies: TrustedProxies = .init([])
    ) -> HTTPServerBuilder {
        .init { _ in
            HTTP1Front(
                responder: responder, bodyCap: bodyCap, clientTimeout: clientTimeout, shutdownGrace: shutdownGrace,
                tls: tls, proxies: proxies)
        }
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
    /// TLS on every connection, when configured.
    var tls: FrontTLS? = nil
    /// Peers whose forwarded client address and scheme are taken (see `TrustedProxies`).
    var proxies = TrustedProxies([])

    /// Most header fields (trailers included) a request may have; one with more is refused with 431 before
    /// its head is whole. Agents' SDKs send 10–20; 100 leaves room for proxies and tracing headers in
    /// between while keeping the work a request can cause before any route runs small.
    static let maxHeaderFields = 100

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Connection> {
        channel.eventLoop.makeCompletedFuture {
            if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.current)) }
            try Self.addHandlers(
                to: channel.pipeline.syncOperations, responder: responder, bodyCap: bodyCap,
                clientTimeout: clientTimeout, shutdownGrace: shutdownGrace, secure: tls != nil, proxies: proxies)
            return Connection(channel: channel)
        }
    }

    /// The connection's handlers: SwiftNIO's server pipeline (its request decoder tells its response
    /// encoder each request's method, so an answer to HEAD or CONNECT never carries a body, whatever
    /// the route wrote), then `CallHandler`. No pipelining assistance, error handler or outbound header
    /// validation: `CallHandler` does the first two, and every answer's fields are `HTTPTypes` fields,
    /// legal by construction. The decoder refuses a head over `maxHeaderFields` fields or 80 KiB.
    static func addHandlers(
        to pipeline: ChannelPipeline.SynchronousOperations, responder: FrontResponder, bodyCap: Int,
        clientTimeout: TimeAmount, shutdownGrace: TimeAmount, secure: Bool = false, proxies: TrustedProxies = .init([])
    ) throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldCount = maxHeaderFields
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withServerUpgrade: nil, withErrorHandling: false,
            withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: limits)
        try pipeline.addHandler(
            CallHandler(
                responder: responder, bodyCap: bodyCap, clientTimeout: clientTimeout,
                shutdownGrace: shutdownGrace, secure: secure, proxies: proxies))
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
/// Before a route sees a request, its head is checked (each refusal closes the connection, see
/// docs/http.md): bytes SwiftNIO's parser refuses (a request smuggling vector: Content-Length with
/// Transfer-Encoding, two Content-Lengths, obs-fold, a bare LF, a bad chunk size) get 400, a head over
/// `HTTP1Front.maxHeaderFields` fields or 80 KiB 431, two Host fields 400, an expectation other than
/// `100-continue` 417, a declared body over `bodyCap` 413. `100 Continue` goes only to an HTTP/1.1
/// client that asked for it.
///
/// It also translates between SwiftNIO's HTTP/1 messages and the routes' `HTTPTypes`, which keeps
/// what `HTTPTypes` has no place for: the request's version and whether its connection is kept alive
/// (an HTTP/1.0 request without `Connection: keep-alive`, or any with `Connection: close`, has its
/// connection closed after the answer).
final class CallHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    typealias BodyProducer = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, BodyDemand
    >

    /// Where the connection is between a request's head and the end of its answer.
    enum State: Equatable {
        /// Between requests: the next head is awaited.
        case idle
        /// A request's head came and its end has not, and no route runs: its body is gathered whole
        /// for its route, or (its route answered before reading it) read and dropped.
        case receiving
        /// A route answers while its request's body still arrives: the body streams to it.
        case streaming
        /// The request is whole and handed to its route; its answer has not ended.
        case answering
        /// The connection is ending: nothing more is read from it.
        case closing

        /// A route runs: its answer has not ended.
        var answering: Bool { self == .streaming || self == .answering }
    }

    static let eagerLimit = 256 * 1024
    static let hostField = HTTPField.Name("host")!
    let responder: FrontResponder
    let bodyCap: Int
    private var state = State.idle
    private var head: HTTPRequest?
    private var body = ByteBuffer()
    /// The current request's version and whether the connection outlives its answer.
    private var version = HTTPVersion.http1_1
    private var keepAlive = true
    /// The answer in progress is to HEAD or CONNECT: its body is dropped here (SwiftNIO's encoder
    /// frames it as bodiless and would fail the write).
    private var bodiless = false
    /// The current request switches protocols for SwiftNIO's parser (CONNECT, or an Upgrade named in
    /// Connection), which parses nothing after it: nothing more is read, the connection closes after
    /// the answer.
    private var lastParsed = false
    /// A streamed body: where its parts go and how many bytes came.
    private var stream: BodyProducer.Source?
    private var streamed = 0
    /// Which request's stream is current: a stream's late signals (its route let go of it after a
    /// pipelined request began) must not touch the next one.
    private var streamNumber = 0
    /// The route wants no more of its streamed body now.
    private var paused = false
    private var readPending = false
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

    /// The connection is over TLS (`HTTP1Front.tls`).
    let secure: Bool
    let proxies: TrustedProxies
    /// The connection's peer and verified client certificate, read at its first request.
    private var peer: SocketAddress?
    private var certificate: ClientCertificate?
    private var peerRead = false

    init(
        responder: FrontResponder, bodyCap: Int, clientTimeout: TimeAmount, shutdownGrace: TimeAmount, secure: Bool = false,
        proxies: TrustedProxies = .init([])
    ) {
        self.responder = responder
        self.bodyCap = bodyCap
        self.clientTimeout = clientTimeout
        self.shutdownGrace = shutdownGrace
        self.secure = secure
        self.proxies = proxies
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
    private var waitsOnClient: Bool { !paused && state != .answering && state != .closing }

    private func checkSilence() {
        guard let context, waitsOnClient, NIODeadline.now() - lastHeard >= clientTimeout else { return }
        if state == .receiving {
            refuse(.requestTimeout, context)
        } else {
            state = .closing
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = .now()
        guard state != .closing else { return }
        let part = unwrapInboundIn(data)
        guard queued.isEmpty, !mustWait(part) else { return queued.append(part) }
        process(part, context: context)
    }

    /// A part of the next request waits while an answer is in progress, and its head also while the
    /// socket is full; anything behind a waiting part waits too.
    private func mustWait(_ part: HTTPServerRequestPart) -> Bool {
        switch state {
        case .answering: return true
        case .streaming: return false
        default:
            if case .head = part { return !writable }
            return false
        }
    }

    private func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let message):
            state = .receiving
            version = message.version
            keepAlive = message.isKeepAlive
            bodiless = message.method == .HEAD || message.method == .CONNECT
            lastParsed = Self.switchesProtocols(message)
            if lastParsed { keepAlive = false }
            // A second Host is the only one left in the fields: the first became the authority.
            guard let head = Self.request(message), !head.headerFields.contains(Self.hostField) else { return refuse(.badRequest, context) }
            if let expectation = head.headerFields[.expect] {
                guard Self.isContinue(expectation) else { return refuse(.expectationFailed, context) }
            }
            // The parser refuses such a head only after handing it over (the route would start): refused here.
            if let codings = head.headerFields[.transferEncoding], !Self.endsInChunked(codings) { return refuse(.badRequest, context) }
            let declared = head.headerFields[.contentLength].flatMap(Int.init) ?? 0
            if declared > bodyCap { return refuse(.payloadTooLarge, context) }
            // An HTTP/1.0 client's expectation is ignored (RFC 9110 §10.1.1): it may not understand a 1xx.
            if version.major == 1, version.minor >= 1, head.headerFields[.expect] != nil {
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
            if let stream {
                stream.finish()
                self.stream = nil
                resumeReading()
            }
            switch state {
            case .streaming:
                state = .answering
            case .receiving:
                guard let head else {
                    state = .idle  // the rest of a body its route did not read: dropped
                    return
                }
                self.head = nil
                let whole = body
                body = ByteBuffer()
                start(Request(head: head, body: .init(buffer: whole)), on: context.channel)
            case .idle, .answering, .closing:
                break
            }
        }
    }

    /// Whether SwiftNIO's parser takes `message` as the last HTTP/1 message on the connection, as
    /// llhttp does: a CONNECT, or an `Upgrade` field with `upgrade` among the Connection options.
    static func switchesProtocols(_ message: HTTPRequestHead) -> Bool {
        if message.method == .CONNECT { return true }
        guard message.headers.contains(name: "upgrade") else { return false }
        return message.headers[canonicalForm: "connection"].contains { $0.utf8.elementsEqual("upgrade".utf8, by: Self.sameLetter) }
    }

    /// The last transfer coding of `codings` (the Transfer-Encoding fields, joined) is `chunked`: a
    /// request body whose length is otherwise unknown (RFC 9112 §6.3) is refused.
    static func endsInChunked(_ codings: String) -> Bool {
        let last = codings.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).last ?? codings.utf8[...]
        let trimmed = last.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        var token = Substring(trimmed).utf8[...]
        while let end = token.last, end == UInt8(ascii: " ") || end == UInt8(ascii: "\t") { token = token.dropLast() }
        return token.elementsEqual("chunked".utf8, by: sameLetter)
    }

    /// `value` is `100-continue`, in any case.
    static func isContinue(_ value: String) -> Bool {
        value.utf8.elementsEqual("100-continue".utf8, by: sameLetter)
    }

    /// ASCII bytes equal but for case; `lower` is lowercase.
    @inline(__always) static func sameLetter(_ byte: UInt8, _ lower: UInt8) -> Bool {
        byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
    }

    /// The routes' view of a request head, or nil when it has no `HTTPTypes` form. The path of the
    /// usual origin-form target is taken as it is; any other form goes through the library's conversion,
    /// which parses every target as a URL (its cost: docs/benchmarks.md).
    static func request(_ message: HTTPRequestHead) -> HTTPRequest? {
        guard message.uri.utf8.first == UInt8(ascii: "/") else {
            guard var request = try? HTTPRequest(message, secure: false, splitCookie: false) else { return nil }
            // An absolute-form target's authority stands in for Host (RFC 9112 §3.2.2).
            if let authority = Self.authority(ofAbsolute: message.uri) { request.authority = authority }
            return request
        }
        guard let method = try? HTTPRequest.Method(message.method) else { return nil }
        return HTTPRequest(
            method: method, scheme: "http", authority: message.headers.first(name: "host"),
            path: message.uri, headerFields: HTTPFields(message.headers, splitCookie: false))
    }

    /// `host[:port]` of `scheme://[userinfo@]host[:port]/…`, or nil for a target of another form.
    static func authority(ofAbsolute target: String) -> String? {
        guard let separator = target.range(of: "://") else { return nil }
        let rest = target[separator.upperBound...]
        var authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        return authority.isEmpty ? nil : String(authority)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let response):
            context.write(wrapOutboundOut(.head(responseHead(response))), promise: promise)
        case .body(let part):
            // An answer to HEAD or CONNECT has no body (RFC 9110 §9.3.2, §9.3.6): what a route writes
            // for one (a gateway call's upstream body) goes nowhere, and the route goes on.
            if bodiless { promise?.succeed(); return }
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: promise)
        case .end(let trailers):
            let end = wrapOutboundOut(.end(trailers.map(HTTPHeaders.init)))
            switch state {
            case .streaming: state = .receiving  // the route answered before its body ended: the rest is dropped
            case .answering: state = .idle
            case .idle, .receiving, .closing: break
            }
            lastHeard = .now()
            if keepAlive, !quiescing, state != .closing {
                context.write(end, promise: promise)
                // A full socket holds the next request back until `channelWritabilityChanged`.
                return answerQueued(context)
            }
            // Read nothing more: a request pipelined after this one is not answered.
            state = .closing
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
        if !keepAlive || quiescing || state == .closing {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else if version == .http1_0 {
            head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        return head
    }

    func read(context: ChannelHandlerContext) {
        guard state != .closing else { return }
        if holdsReads { readPending = true } else { context.read() }
    }

    /// Reading waits while the route wants no more of its body, a pipelined request waits, the socket
    /// is full, or the request being answered is the last the parser reads.
    private var holdsReads: Bool { paused || !queued.isEmpty || !writable || (lastParsed && state == .answering) }

    /// The answer ended, or the socket took what was written: the requests that waited go on, in order,
    /// until one is being answered and all of its parts that came are with its route (a streamed body's
    /// route starts at its head), or the socket is full.
    private func answerQueued(_ context: ChannelHandlerContext) {
        while state != .closing, let part = queued.first, !mustWait(part) {
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
        let producer = BodyProducer.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8),
            finishOnDeinit: false, delegate: demand)
        stream = producer.source
        streamed = 0
        start(Request(head: head, body: .init(asyncSequence: producer.sequence)), on: context.channel)
        state = .streaming
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

    /// A request refused before any route sees it is answered with `status` and its connection closes,
    /// its body unread. A client that sent `Expect: 100-continue` is told to go on only for other bodies.
    private func refuse(_ status: HTTPResponseStatus, _ context: ChannelHandlerContext) {
        head = nil
        state = .closing
        bodiless = false
        let refusal = HTTPResponseHead(version: version, status: status, headers: ["connection": "close", "content-length": "0"])
        context.write(wrapOutboundOut(.head(refusal)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    /// Bytes that cannot be parsed end the connection: with a 400 (431 for a head over the limits) when
    /// no answer is in progress, otherwise once the answer in progress has ended. Any other error
    /// closes it at once.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        stream?.finish(error)
        stream = nil
        queued.removeAll()
        guard error is HTTPParserError || error is ByteToMessageDecoderError else { return context.close(promise: nil) }
        switch state {
        case .streaming, .answering:
            state = .closing
            keepAlive = false
        case .closing:
            break
        case .idle, .receiving:
            refuse(error as? HTTPParserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest, context)
        }
    }

    /// The server is stopping: an idle connection closes now, a busy one after its answer or after
    /// `shutdownGrace`, whichever comes first. The client
    /// closed its side: the connection closes now, also during an answer, so a gateway call whose client
    /// has gone is not sent (its route sees the channel inactive), as a proxy treats a client's abort.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            state = .closing
            return context.close(promise: nil)
        }
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        quiescing = true
        queued.removeAll()
        if state == .idle { return context.close(promise: nil) }
        // An answer that does not end within the grace (a stream that never ends) is ended by the close:
        // its route sees the write fail and records the call as interrupted.
        context.eventLoop.scheduleTask(in: shutdownGrace) { [channel = context.channel] in channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closing
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
        state = .answering
        let responder = responder
        let origin = origin(of: request.head, on: channel)
        answer = Task { await responder.answer(request, from: origin, on: channel) }
    }

    /// Where the request came from. The TLS handshake is over before a request is read, so the client's
    /// certificate (if any) is known at the first.
    private func origin(of head: HTTPRequest, on channel: any Channel) -> ClientOrigin {
        if !peerRead {
            peerRead = true
            peer = channel.remoteAddress
            if secure { certificate = FrontTLS.clientCertificate(of: channel) }
        }
        guard !proxies.isEmpty, let forwarded = proxies.forwarded(peer: peer, headers: head.headerFields) else {
            return ClientOrigin(peer: peer, secure: secure, certificate: certificate)
        }
        return ClientOrigin(peer: peer, forwardedFor: forwarded.client, secure: forwarded.https ?? secure, certificate: certificate)
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
