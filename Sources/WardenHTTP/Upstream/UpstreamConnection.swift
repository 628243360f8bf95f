import NIOCore
import NIOHTTP1

/// The body of an upstream answer, as it arrives; reading it slowly slows reading from the upstream.
public typealias UpstreamBody = NIOThrowingAsyncSequenceProducer<
    ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, UpstreamDemand
>

/// An upstream's answer. A body of known, modest length comes whole with the head (handing it over
/// chunk by chunk through an async sequence costs more than the call itself); any other body streams,
/// handed over with its first bytes. An answer that breaks off before then fails with `UpstreamCutShort`,
/// so the caller can still answer its own client with an error rather than a truncated body.
public struct UpstreamResponse: Sendable {
    public enum Body: Sendable {
        case whole(ByteBuffer)
        case stream(UpstreamBody)
    }

    /// Bodies up to this length (by their Content-Length) come whole.
    public static let wholeLimit = 1 << 20

    public let status: HTTPResponseStatus
    public let headers: HTTPHeaders
    public let body: Body
}

/// The upstream sent an answer's head, then the connection closed (`cause` `.closed`), fell silent
/// (`.timedOut`) or sent bytes that are not HTTP (`.malformed`) before any of its body was handed over.
/// `status` is what the upstream had decided.
public struct UpstreamCutShort: Error, Equatable {
    public let status: HTTPResponseStatus
    public let cause: UpstreamError
}

/// One keep-alive HTTP/1.1 connection to an upstream, carrying one exchange at a time. Lives on its
/// channel's event loop: every method runs there.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// One request and its answer.
    private final class Exchange {
        let answer: EventLoopPromise<UpstreamResponse>
        let keepAlive: Bool
        /// The head, while a whole body is being gathered.
        var head: HTTPResponseHead?
        var gathered = ByteBuffer()
        /// The stream's source, once a streamed answer's head came.
        var body: UpstreamBody.Source?
        /// A streamed answer not handed over yet: its head came, none of its body.
        var pending: UpstreamResponse?
        var reusable = true
        init(answer: EventLoopPromise<UpstreamResponse>, keepAlive: Bool) {
            self.answer = answer
            self.keepAlive = keepAlive
        }
    }

    let origin: UpstreamTarget.Origin
    /// Notes whether any byte of the current exchange's answer came.
    let answerBytes = AnswerBytes()
    /// When the connection last went back to its pool.
    var idleSince = NIODeadline.uptimeNanoseconds(0)
    private var silenceLimit = TimeAmount.seconds(300)
    /// Called when an exchange ended with the connection fit for another one.
    var onReusable: ((UpstreamConnection) -> Void)?
    /// Called once when the connection closes.
    var onClose: ((UpstreamConnection) -> Void)?

    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    private var generation = 0
    /// The reader is behind: socket reads wait until it asks for more.
    private var paused = false
    private var heldRead = false
    private var lastHeard = NIODeadline.now()
    private var silenceCheck: Scheduled<Void>?
    private var silenceDue = NIODeadline.uptimeNanoseconds(0)

    init(origin: UpstreamTarget.Origin) { self.origin = origin }

    var isOpen: Bool { context?.channel.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Sends a request whose head already carries its framing and Host; the answer's head completes `answer`.
    /// The upstream may stay silent for at most `timeout` at a time.
    func send(_ head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount, answer: EventLoopPromise<UpstreamResponse>) {
        guard let context, context.channel.isActive, exchange == nil else {
            answer.fail(UpstreamError.closed)
            return
        }
        generation += 1
        answerBytes.came = false
        exchange = Exchange(answer: answer, keepAlive: head.isKeepAlive)
        silenceLimit = timeout
        heard()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func close() { context?.close(promise: nil) }

    // MARK: reading the answer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let exchange else {
            // Nothing was asked: an upstream talking out of turn is not reused.
            context.close(promise: nil)
            return
        }
        heard()
        switch part {
        case .head(let head):
            guard head.status.code >= 200 || head.status == .switchingProtocols else { return }  // interim answers
            exchange.reusable = head.isKeepAlive
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length <= UpstreamResponse.wholeLimit {
                exchange.head = head
                exchange.gathered.reserveCapacity(length)
            } else {
                let stream = makeStream(context)
                exchange.body = stream.source
                exchange.pending = UpstreamResponse(status: head.status, headers: head.headers, body: .stream(stream.sequence))
            }
        case .body(var chunk):
            if exchange.head != nil {
                exchange.gathered.writeBuffer(&chunk)
                return
            }
            switch exchange.body?.yield(chunk) {
            case .stopProducing: paused = true
            case .dropped: exchange.reusable = false
            case .produceMore, nil: break
            }
            if let pending = exchange.pending {
                exchange.pending = nil
                exchange.answer.succeed(pending)
            }
        case .end:
            self.exchange = nil
            // The socket belongs to the next exchange now, even if this answer's reader is still behind.
            readAgain()
            if let head = exchange.head {
                exchange.answer.succeed(UpstreamResponse(status: head.status, headers: head.headers, body: .whole(exchange.gathered)))
            } else if let body = exchange.body {
                if let pending = exchange.pending { exchange.answer.succeed(pending) }  // an empty body
                body.finish()
            } else {
                exchange.answer.fail(UpstreamError.malformed)  // an end with no final head
            }
            if exchange.keepAlive && exchange.reusable && context.channel.isActive {
                onReusable?(self)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if paused { heldRead = true } else { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        silenceCheck?.cancel()
        silenceCheck = nil
        fail(.closed)
        closed()
        context.fireChannelInactive()
    }

    /// Tells the pool, once, that the connection has closed (or never opened).
    func closed() {
        let onClose = onClose
        self.onClose = nil
        onClose?(self)
    }

    /// Bytes the HTTP/1 parser refuses make the answer malformed; the connection's end within an
    /// answer (the parser's `invalidEOFState`) or any other error (a reset, TLS) closes it.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch error {
        case let error as UpstreamError: fail(error)
        case HTTPParserError.invalidEOFState: fail(.closed)
        case is HTTPParserError, is ByteToMessageDecoderError: fail(.malformed)
        default: fail(.closed)
        }
        context.close(promise: nil)
    }

    /// Ends the current exchange with `error`: before the head the caller gets it (`closed` only if no
    /// byte of the answer came, else `malformed`: an answer cut off within its head), after the head but
    /// before any body was handed over (a body being gathered, a stream's first bytes) the caller gets
    /// `UpstreamCutShort`, after that the body's reader gets it.
    private func fail(_ error: UpstreamError) {
        guard let exchange else { return }
        self.exchange = nil
        let status = exchange.head?.status ?? exchange.pending?.status
        exchange.body?.finish(error)
        if exchange.body != nil, exchange.pending == nil { return }
        if let status {
            exchange.answer.fail(UpstreamCutShort(status: status, cause: error))
        } else {
            exchange.answer.fail(error == .closed && answerBytes.came ? UpstreamError.malformed : error)
        }
    }

    private func makeStream(_ context: ChannelHandlerContext) -> UpstreamBody.NewSequence {
        UpstreamBody.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16), finishOnDeinit: false,
            delegate: UpstreamDemand(connection: NIOLoopBound(self, eventLoop: context.eventLoop), generation: generation))
    }

    // MARK: the reader's demand

    func resume(_ generation: Int) {
        guard generation == self.generation, paused else { return }
        readAgain()
        heard()
    }

    private func readAgain() {
        paused = false
        if heldRead {
            heldRead = false
            context?.read()
        }
    }

    /// The reader stopped before the end (the agent went away): the rest of the answer is not wanted.
    func abandon(_ generation: Int) {
        guard generation == self.generation, exchange != nil else { return }
        fail(.closed)
        context?.close(promise: nil)
    }

    // MARK: silence

    /// Notes that the upstream spoke. One timer per connection checks, when it fires, whether the
    /// exchange in progress has been silent for the whole limit. It is neither re-armed on every read
    /// nor cancelled when an exchange ends (a timer scheduled and cancelled per call cost more than the
    /// check); it is only moved earlier when a call's limit is shorter than the pending check allows.
    private func heard() {
        lastHeard = .now()
        let due = lastHeard + silenceLimit
        if silenceCheck != nil, silenceDue <= due { return }
        silenceCheck?.cancel()
        scheduleSilenceCheck(at: due)
    }

    private func scheduleSilenceCheck(at due: NIODeadline) {
        guard let loop = context?.eventLoop else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        silenceDue = due
        silenceCheck = loop.scheduleTask(deadline: due) { bound.value.checkSilence() }
    }

    private func checkSilence() {
        silenceCheck = nil
        guard exchange != nil else { return }  // idle: the next call arms a check again
        if paused {
            heard()  // the reader is behind, not the upstream
        } else if NIODeadline.now() - lastHeard >= silenceLimit {
            fail(.timedOut)
            context?.close(promise: nil)
        } else {
            scheduleSilenceCheck(at: lastHeard + silenceLimit)
        }
    }
}

/// Relays the body reader's demand to the connection's event loop.
public struct UpstreamDemand: NIOAsyncSequenceProducerDelegate {
    let connection: NIOLoopBound<UpstreamConnection>
    let generation: Int

    public func produceMore() {
        connection.eventLoop.execute { connection.value.resume(generation) }
    }

    public func didTerminate() {
        connection.eventLoop.execute { connection.value.abandon(generation) }
    }
}

/// Notes that bytes of an answer came, before the HTTP/1 parser makes anything of them: an upstream
/// that closes a connection without a byte may not have seen the request; one that sent something did.
final class AnswerBytes: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    var came = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        came = true
        context.fireChannelRead(data)
    }
}
