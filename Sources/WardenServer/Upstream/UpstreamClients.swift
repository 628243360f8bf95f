import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import HTTPTypes
import WardenVenues

/// A request as Warden sends it upstream. The body is whole: the client sets its framing.
public struct UpstreamHTTPRequest: Sendable {
    public var url: String
    public var method: HTTPMethod
    public var headers: HTTPHeaders
    public var body: ByteBuffer?
    /// How long connecting, and every silence of the upstream after it, may last.
    public var timeout: TimeAmount

    public init(url: String, method: HTTPMethod, headers: HTTPHeaders = [:], body: ByteBuffer? = nil, timeout: TimeAmount) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// The gateway's HTTP/1.1 client: keep-alive connections pooled per event loop and origin, so a call
/// goes out on the loop that serves the agent and comes back without waiting for another thread.
/// It never follows redirects (they could carry credentials elsewhere), never decompresses, verifies
/// TLS against the system's roots, and gives up on an upstream that stays silent past the timeout.
public final class UpstreamClients: Sendable {
    private let pools: [ObjectIdentifier: UpstreamPool]
    private let group: MultiThreadedEventLoopGroup

    public convenience init() { self.init(tls: TLSContextSource()) }

    /// `tls` supplies the TLS context; tests give one that trusts their own upstream's certificate.
    init(tls: TLSContextSource) {
        group = .singleton
        var pools: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = UpstreamPool(loop: loop, tls: tls)
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
        let (sent, body) = (head, request.body)
        let send = { @Sendable in pool.send(sent, body: body, to: target.origin, timeout: request.timeout, answer: answer) }
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
    /// Idle connections kept per origin; more are closed.
    static let maxIdlePerOrigin = 128
    static let maxConnectTimeout = TimeAmount.seconds(10)

    let loop: any EventLoop
    let tls: TLSContextSource
    private var idle: [UpstreamTarget.Origin: [UpstreamConnection]] = [:]

    init(loop: any EventLoop, tls: TLSContextSource) {
        self.loop = loop
        self.tls = tls
    }

    func send(_ head: HTTPRequestHead, body: ByteBuffer?, to origin: UpstreamTarget.Origin, timeout: TimeAmount,
              answer: EventLoopPromise<UpstreamResponse>) {
        loop.assertInEventLoop()
        // The most recently used connection first: the least likely to have been closed by the upstream.
        while let connection = idle[origin]?.popLast() {
            guard connection.isOpen else { continue }
            guard HTTPRequest.Method.isRead(head.method.rawValue) else { return connection.send(head, body: body, timeout: timeout, answer: answer) }
            // A kept connection can be closed by the upstream (as idle) just as a call goes out on it. A
            // call that changes nothing goes again on a new connection when that happens before any answer;
            // any other call is never sent twice: the upstream may have acted on it.
            let first = loop.makePromise(of: UpstreamResponse.self)
            connection.send(head, body: body, timeout: timeout, answer: first)
            first.futureResult.whenComplete { [self] result in
                guard case .failure(UpstreamError.closed) = result else { return answer.completeWith(result) }
                sendNew(head, body: body, to: origin, timeout: timeout, answer: answer)
            }
            return
        }
        sendNew(head, body: body, to: origin, timeout: timeout, answer: answer)
    }


    private func sendNew(_ head: HTTPRequestHead, body: ByteBuffer?, to origin: UpstreamTarget.Origin, timeout: TimeAmount,
                         answer: EventLoopPromise<UpstreamResponse>) {
        connect(origin, timeout: min(timeout, Self.maxConnectTimeout)).whenComplete { result in
            switch result {
            case .success(let connection): connection.send(head, body: body, timeout: timeout, answer: answer)
            case .failure: answer.fail(UpstreamError.unreachable)
            }
        }
    }

    private func connect(_ origin: UpstreamTarget.Origin, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        let connection = UpstreamConnection(origin: origin)
        let bound = NIOLoopBound(self, eventLoop: loop)
        connection.onReusable = { bound.value.park($0) }
        connection.onClose = { bound.value.forget($0) }
        let handler = NIOLoopBound(connection, eventLoop: loop)
        let tlsContext: NIOSSLContext?
        do { tlsContext = origin.tls ? try tls.get() : nil } catch { return loop.makeFailedFuture(error) }
        let serverName = Self.isIPAddress(origin.host) ? nil : origin.host
        return ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tlsContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(host: origin.host, port: origin.port)
            .map { _ in handler.value }
    }

    private func park(_ connection: UpstreamConnection) {
        guard idle[connection.origin, default: []].count < Self.maxIdlePerOrigin else { return connection.close() }
        idle[connection.origin, default: []].append(connection)
    }

    private func forget(_ connection: UpstreamConnection) {
        idle[connection.origin]?.removeAll { $0 === connection }
    }

    func closeIdle() {
        for connection in idle.values.joined() { connection.close() }
        idle.removeAll()
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." }
    }
}
