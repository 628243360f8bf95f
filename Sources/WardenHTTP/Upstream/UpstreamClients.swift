import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A request as the gateway sends it upstream. The body is whole: the client sets its framing.
public struct UpstreamHTTPRequest: Sendable {
    public var url: String
    public var method: HTTPMethod
    public var headers: HTTPHeaders
    public var body: ByteBuffer?
    /// How long connecting, and every silence of the upstream after it, may last.
    public var timeout: TimeAmount
    /// Whether it may be sent a second time, on a new connection, when a kept-alive one closed or answered
    /// malformed before any answer: only for a request that changes nothing upstream, which the caller knows.
    public var retryable: Bool
    /// Asked again when the call had to wait for a connection, just before it goes out: whether it may
    /// still be sent (its client is there, it is not past its deadline). When not, it fails `withdrawn`.
    public var stillWanted: (@Sendable () -> Bool)?

    public init(
        url: String, method: HTTPMethod, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, timeout: TimeAmount,
        retryable: Bool = false, stillWanted: (@Sendable () -> Bool)? = nil
    ) {
        self.retryable = retryable
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.stillWanted = stillWanted
    }
}

/// How the gateway's client keeps its connections.
public struct UpstreamClientSettings: Sendable, Equatable {
    /// A pooled connection idle longer than this is closed rather than reused. Below the keep-alive of
    /// common upstreams (Node's 5 s, many load balancers' 60 s), so Warden, not the upstream, ends an
    /// idle connection: a call sent on one the upstream is closing could fail without an answer, and
    /// only a call that changes nothing can be sent again.
    public var idleTimeout: TimeAmount
    /// Connections, in use or idle, to one origin (scheme, host, port) at most. Shared out between the
    /// event loops, each pooling its own: each may open `ceil(max / loops)`. A call that finds its
    /// loop's share in use waits, first come first served, for one to be free, for as long as it may
    /// wait to connect (its timeout, at most 10 s); then it fails as `unreachable`, not sent.
    public var maxConnectionsPerOrigin: Int

    public init(idleTimeout: TimeAmount = .seconds(4), maxConnectionsPerOrigin: Int = 64) {
        self.idleTimeout = idleTimeout
        self.maxConnectionsPerOrigin = maxConnectionsPerOrigin
    }
}

/// The gateway's HTTP/1.1 client: keep-alive connections pooled per event loop and origin, so a call
/// goes out on the loop that serves the agent and comes back without waiting for another thread.
/// It never follows redirects (they could carry credentials elsewhere), never decompresses, verifies
/// TLS against the system's roots, and gives up on an upstream that stays silent past the timeout.
public final class UpstreamClients: Sendable {
    private let pools: [ObjectIdentifier: UpstreamPool]
    private let group: MultiThreadedEventLoopGroup

    public convenience init(settings: UpstreamClientSettings = .init()) { self.init(tls: TLSContextSource(), settings: settings) }

    /// `tls` supplies the TLS context; tests give one that trusts their own upstream's certificate.
    init(tls: TLSContextSource, settings: UpstreamClientSettings = .init()) {
        group = .singleton
        let loops = Array(group.makeIterator())
        let share = max(1, (settings.maxConnectionsPerOrigin + loops.count - 1) / loops.count)
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in loops {
            pools[ObjectIdentifier(loop)] = UpstreamPool(loop: loop, tls: tls, idleTimeout: settings.idleTimeout, maxPerOrigin: share)
        }
        self.pools = pools
    }

    /// Sends `request` on a connection of `loop` (any loop when it is not one of the group's) and returns
    /// the answer once its head is in: with its body whole, or streaming from its first bytes on (see
    /// `UpstreamResponse`).
    public func execute(_ request: UpstreamHTTPRequest, on loop: (any EventLoop)? = nil) async throws -> UpstreamResponse {
        let target = try UpstreamTarget(url: request.url)
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: target.requestTarget, headers: request.headers)
        head.headers.remove(name: "host")
        head.headers.remove(name: "transfer-encoding")
        head.headers.remove(name: "content-length")
        head.headers.add(name: "host", value: target.hostHeader)
        if let body = request.body {
            head.headers.add(name: "content-length", value: String(body.readableBytes))
        } else if [.POST, .PUT, .PATCH].contains(request.method) {
            head.headers.add(name: "content-length", value: "0")
        }
        let pool = pool(for: loop)
        let answer = pool.loop.makePromise(of: UpstreamResponse.self)
        let call = UpstreamPool.Call(
            head: head, body: request.body, origin: target.origin, timeout: request.timeout, answer: answer,
            mayRetry: request.retryable, stillWanted: request.stillWanted)
        let send = { @Sendable in pool.send(call) }
        // A task already on the pool's loop (tasks run on the event loops) sends at once rather than a loop turn later.
        if pool.loop.inEventLoop { send() } else { pool.loop.execute(send) }
        return try await answer.futureResult.get()
    }

    private func pool(for loop: (any EventLoop)?) -> UpstreamPool {
        if let loop, let pool = pools[ObjectIdentifier(loop)] { return pool }
        return pools[ObjectIdentifier(group.next())]!
    }

    /// Closes the idle connections; calls in flight finish on theirs.
    public func shutdown() async throws {
        for pool in pools.values {
            try await pool.loop.submit { pool.closeIdle() }.get()
        }
    }
}

/// The TLS context, made once on first use (loading the system's trust roots is slow).
final class TLSContextSource: Sendable {
    private let configuration: TLSConfiguration
    private let context = Mutex<Result<NIOSSLContext, any Error>?>(nil)

    /// The default verifies certificates and host names against the system's trust roots.
    init(configuration: TLSConfiguration = .makeClientConfiguration()) { self.configuration = configuration }

    func get() throws -> NIOSSLContext {
        try context.withLock { current in
            if let current { return try current.get() }
            let made = Result { try NIOSSLContext(configuration: configuration) }
            current = made
            return try made.get()
        }
    }
}

/// The connections of one event loop, by origin. Confined to its loop: every method runs there, which
/// is what makes it safe to share.
final class UpstreamPool: @unchecked Sendable {
    static let maxConnectTimeout = TimeAmount.seconds(10)

    /// A request on its way: sent once a connection is free.
    struct Call: Sendable {
        let head: HTTPRequestHead
        let body: ByteBuffer?
        let origin: UpstreamTarget.Origin
        let timeout: TimeAmount
        let answer: EventLoopPromise<UpstreamResponse>
        /// It may go again on a new connection if a kept one closes before any byte of its answer: it
        /// changes nothing upstream, and it has not gone again yet.
        var mayRetry: Bool
        let stillWanted: (@Sendable () -> Bool)?

        /// After a wait for a connection: whether the caller still wants it sent; if not, it fails, unsent.
        func mayGoAfterWaiting() -> Bool {
            guard let stillWanted, !stillWanted() else { return true }
            answer.fail(UpstreamError.withdrawn)
            return false
        }
    }

    /// A call waiting for a connection of its origin.
    final class Waiter {
        let call: Call
        var expiry: Scheduled<Void>?
        init(call: Call) { self.call = call }
    }

    /// One origin's connections on this loop.
    final class Origin {
        /// Connections open or being opened, idle or not.
        var open = 0
        /// Idle connections, the most recently used last.
        var idle: [UpstreamConnection] = []
        var waiting = CircularBuffer<Waiter>()
    }

    let loop: any EventLoop
    let tls: TLSContextSource
    let idleTimeout: TimeAmount
    let maxPerOrigin: Int
    private var origins: [UpstreamTarget.Origin: Origin] = [:]
    /// Closes connections idle past `idleTimeout`; scheduled while any is idle.
    private var sweep: Scheduled<Void>?

    init(loop: any EventLoop, tls: TLSContextSource, idleTimeout: TimeAmount, maxPerOrigin: Int) {
        self.loop = loop
        self.tls = tls
        self.idleTimeout = idleTimeout
        self.maxPerOrigin = maxPerOrigin
    }

    private func origin(_ key: UpstreamTarget.Origin) -> Origin {
        if let origin = origins[key] { return origin }
        let origin = Origin()
        origins[key] = origin
        return origin
    }

    /// Sends `call` on an idle connection of its origin, else on a new one, else once one is free.
    func send(_ call: Call) {
        loop.assertInEventLoop()
        let origin = origin(call.origin)
        // The most recently used connection first: the least likely to have been closed by the upstream.
        let now = NIODeadline.now()
        while let connection = origin.idle.popLast() {
            guard connection.isOpen else { continue }
            // Idle too long: the upstream may be closing it this very moment.
            guard now - connection.idleSince <= idleTimeout else {
                connection.close()
                continue
            }
            return send(call, onKept: connection)
        }
        sendNew(call)
    }

    /// Sends `call` on a connection that carried calls before. A kept connection can be closed by the
    /// upstream (as idle) just as a call goes out on it, or still hold bytes the last answer should not
    /// have had (a body after a HEAD answer), which read as a malformed answer. A read goes again on a new
    /// connection when either happens before any answer came through; any other call is never sent twice
    /// (the upstream may have acted on it), nor is an answer cut short after its head.
    private func send(_ call: Call, onKept connection: UpstreamConnection) {
        guard call.mayRetry else { return connection.send(call.head, body: call.body, timeout: call.timeout, answer: call.answer) }
        let first = loop.makePromise(of: UpstreamResponse.self)
        connection.send(call.head, body: call.body, timeout: call.timeout, answer: first)
        first.futureResult.whenComplete { [self] result in
            switch result {
            case .failure(UpstreamError.closed), .failure(UpstreamError.malformed): break
            default: return call.answer.completeWith(result)
            }
            var again = call
            again.mayRetry = false
            sendNew(again)
        }
    }

    /// Sends `call` on a new connection, or queues it while its origin has all the connections it may.
    private func sendNew(_ call: Call) {
        let origin = origin(call.origin)
        guard origin.open < maxPerOrigin else { return wait(call, in: origin) }
        origin.open += 1
        connect(call.origin, timeout: min(call.timeout, Self.maxConnectTimeout)).whenComplete { [self] result in
            switch result {
            case .success(let connection):
                // Connecting took a while: a call no longer wanted leaves the new connection to the next one.
                guard call.mayGoAfterWaiting() else { return reuse(connection) }
                connection.send(call.head, body: call.body, timeout: call.timeout, answer: call.answer)
            case .failure: call.answer.fail(UpstreamError.unreachable)
            }
        }
    }

    private func wait(_ call: Call, in origin: Origin) {
        let waiter = Waiter(call: call)
        origin.waiting.append(waiter)
        let bound = NIOLoopBound((pool: self, waiter: waiter), eventLoop: loop)
        waiter.expiry = loop.scheduleTask(in: min(call.timeout, Self.maxConnectTimeout)) {
            bound.value.pool.expire(bound.value.waiter, of: call.origin)
        }
    }

    /// `waiter` waited as long as it may: it fails, not sent.
    private func expire(_ waiter: Waiter, of key: UpstreamTarget.Origin) {
        guard let origin = origins[key], let index = origin.waiting.firstIndex(where: { $0 === waiter }) else { return }
        origin.waiting.remove(at: index)
        waiter.call.answer.fail(UpstreamError.unreachable)
    }

    /// The first waiting call its caller still wants sent; the others fail, unsent.
    private func nextWaiter(_ origin: Origin) -> Call? {
        while let waiter = origin.waiting.popFirst() {
            waiter.expiry?.cancel()
            if waiter.call.mayGoAfterWaiting() { return waiter.call }
        }
        return nil
    }

    private func connect(_ origin: UpstreamTarget.Origin, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        let connection = UpstreamConnection(origin: origin)
        let bound = NIOLoopBound(self, eventLoop: loop)
        connection.onReusable = { bound.value.reuse($0) }
        connection.onClose = { bound.value.forget($0) }
        let handler = NIOLoopBound(connection, eventLoop: loop)
        let tlsContext: NIOSSLContext?
        do { tlsContext = origin.tls ? try tls.get() : nil } catch {
            connection.closed()
            return loop.makeFailedFuture(error)
        }
        let serverName = Self.isIPAddress(origin.host) ? nil : origin.host
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHandler(handler.value.answerBytes)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(host: origin.host, port: origin.port)
            .map { _ in handler.value }
            .always { result in
                // A connection that never opened is forgotten here; one that opened, when it closes.
                if case .failure = result { handler.value.closed() }
            }
    }

    /// An exchange ended with `connection` fit for another: the first waiting call takes it, else it idles.
    private func reuse(_ connection: UpstreamConnection) {
        let origin = origin(connection.origin)
        if let call = nextWaiter(origin) { return send(call, onKept: connection) }
        connection.idleSince = .now()
        origin.idle.append(connection)
        if sweep == nil { scheduleSweep(at: connection.idleSince + idleTimeout) }
    }

    /// `connection` closed (or never opened): its place goes to the first waiting call.
    private func forget(_ connection: UpstreamConnection) {
        guard let origin = origins[connection.origin] else { return }
        origin.open -= 1
        origin.idle.removeAll { $0 === connection }
        if let call = nextWaiter(origin) { sendNew(call) }
    }

    private func scheduleSweep(at deadline: NIODeadline) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        sweep = loop.scheduleTask(deadline: deadline) { bound.value.closeExpired() }
    }

    /// Closes the connections idle past `idleTimeout` (the oldest are first in each list), and comes
    /// back when the next one will be.
    private func closeExpired() {
        sweep = nil
        let now = NIODeadline.now()
        var next: NIODeadline?
        for origin in origins.values {
            while let oldest = origin.idle.first, now - oldest.idleSince > idleTimeout {
                origin.idle.removeFirst()
                oldest.close()
            }
            if let oldest = origin.idle.first { next = min(next ?? oldest.idleSince, oldest.idleSince) }
        }
        if let next { scheduleSweep(at: next + idleTimeout + .milliseconds(1)) }
    }

    func closeIdle() {
        for origin in origins.values {
            for connection in origin.idle { connection.close() }
            origin.idle.removeAll()
        }
        sweep?.cancel()
        sweep = nil
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
