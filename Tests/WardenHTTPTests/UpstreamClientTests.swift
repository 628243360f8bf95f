import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing
@testable import WardenHTTP

@Suite struct UpstreamTargetTests {
    @Test func splitsOriginHostAndRequestTarget() throws {
        let plain = try UpstreamTarget(url: "http://127.0.0.1:8080/v1/chat?x=1")
        #expect(plain.origin == .init(tls: false, host: "127.0.0.1", port: 8080))
        #expect(plain.hostHeader == "127.0.0.1:8080" && plain.requestTarget == "/v1/chat?x=1")
        let tls = try UpstreamTarget(url: "https://api.example.com")
        #expect(tls.origin == .init(tls: true, host: "api.example.com", port: 443) && tls.requestTarget == "/")
        let v6 = try UpstreamTarget(url: "http://[::1]:9000?q")
        #expect(v6.origin == .init(tls: false, host: "::1", port: 9000) && v6.hostHeader == "[::1]:9000" && v6.requestTarget == "/?q")
    }

    @Test(arguments: [
        "ftp://host/x", "http://", "http://user@host/x", "http://host/a b", "http://host/a\r\nX: y", "http://host/#frag",
        "http://host:0/", "http://host:70000/", "http://host:x/", "http://[::1/", "http://:80/", "http://hést/",
    ])
    func refusesWhatCannotBeWrittenOnARequestLine(_ url: String) {
        #expect(throws: UpstreamError.invalidURL) { try UpstreamTarget(url: url) }
    }
}

/// The gateway's upstream client against a live local upstream.
@Suite struct UpstreamClientTests {
    struct PeerContext: RequestContext {
        var coreContext: CoreRequestContextStorage
        let peerPort: Int
        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            peerPort = source.channel.remoteAddress?.port ?? -1
        }
    }

    /// Opened by the test once it has the first chunk of `/stream`.
    final class Gate: Sendable {
        let stream: AsyncStream<Void>
        let continuation: AsyncStream<Void>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream() }
    }

    /// Something counted across threads: bytes written, connections accepted.
    final class Counter: Sendable {
        let count = Atomic<Int>(0)
    }

    static func upstream(gate: Gate = Gate()) -> some ApplicationProtocol {
        let router = Router(context: PeerContext.self)
        router.get("/peer") { _, context in "\(context.peerPort)" }
        router.post("/echo") { request, _ in
            Response(
                status: .created, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: try await request.body.collect(upTo: 1 << 20)))
        }
        router.get("/close") { _, _ in
            Response(status: .ok, headers: [.connection: "close"], body: .init(byteBuffer: ByteBuffer(string: "bye")))
        }
        router.get("/slow") { _, _ in
            try await Task.sleep(for: .seconds(3))
            return "late"
        }
        router.get("/stream") { _, _ in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "first"))
                    // A client that waits for the whole answer never opens the gate: it is shut after 5 s.
                    Task {
                        try? await Task.sleep(for: .seconds(5)); gate.continuation.finish()
                    }
                    var gateOpened = false
                    for await _ in gate.stream { gateOpened = true; break }
                    try await writer.write(ByteBuffer(string: gateOpened ? "second" : "never"))
                    try await writer.finish(nil)
                })
        }
        router.head("/peer") { _, _ in Response(status: .ok, headers: [.contentLength: "12"]) }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    /// Connections are pooled per event loop: the calls of a test share one.
    static let loop = MultiThreadedEventLoopGroup.singleton.next()

    static func call(
        _ clients: UpstreamClients, _ port: Int, _ path: String, method: HTTPMethod = .GET, body: String? = nil,
        timeout: TimeAmount = .seconds(5), scheme: String = "http", host: String = "127.0.0.1"
    ) async throws -> (HTTPResponseStatus, HTTPHeaders, String) {
        let response = try await clients.execute(
            UpstreamHTTPRequest(
                url: "\(scheme)://\(host):\(port)\(path)", method: method, body: body.map { ByteBuffer(string: $0) }, timeout: timeout,
                retryable: method == .GET),
            on: loop)
        return (response.status, response.headers, try await text(response.body))
    }

    static func text(_ body: UpstreamResponse.Body) async throws -> String {
        switch body {
        case .whole(let whole): return String(buffer: whole)
        case .stream(let stream):
            var text = ""
            for try await chunk in stream { text += String(buffer: chunk) }
            return text
        }
    }

    @Test func reusesAKeptAliveConnectionAndSendsBodiesWhole() async throws {
        let clients = UpstreamClients()
        try await Self.upstream().test(.live) { client in
            let port = try #require(client.port)
            let first = try await Self.call(clients, port, "/peer").2
            let second = try await Self.call(clients, port, "/peer").2
            #expect(first == second, "the second call should reuse the first call's connection")
            let echoed = try await Self.call(clients, port, "/echo", method: .POST, body: String(repeating: "x", count: 100_000))
            #expect(echoed.0 == .created && echoed.2.count == 100_000)
            let head = try await Self.call(clients, port, "/peer", method: .HEAD)
            #expect(head.0 == .ok && head.2.isEmpty, "a HEAD answer has no body, whatever its Content-Length says")
        }
        try await clients.shutdown()
    }

    @Test func doesNotReuseAConnectionTheUpstreamCloses() async throws {
        let clients = UpstreamClients()
        try await Self.upstream().test(.live) { client in
            let port = try #require(client.port)
            let before = try await Self.call(clients, port, "/peer").2
            #expect(try await Self.call(clients, port, "/close").2 == "bye")
            let after = try await Self.call(clients, port, "/peer").2
            #expect(after != before, "the connection the upstream closed must not carry another call")
            #expect(try await Self.call(clients, port, "/peer").2 == after, "the new connection is kept alive in turn")
        }
        try await clients.shutdown()
    }

    @Test func aSafeCallGoesAgainWhenAKeptConnectionClosesUnderItAndNoOtherCallDoes() async throws {
        let clients = UpstreamClients()
        let upstream = try await IdleCloserUpstream.start()
        let first = try await Self.call(clients, upstream.port, "/a")
        #expect(first.0 == .ok && first.2 == "connection 1")
        // The kept connection closes as the next call arrives on it: a GET goes again on a new one.
        let again = try await Self.call(clients, upstream.port, "/b")
        #expect(again.0 == .ok && again.2 == "connection 2")
        #expect(upstream.requests.count.load(ordering: .relaxed) == 3)
        // A POST is never sent twice: the upstream may have acted on it.
        await #expect(throws: UpstreamError.closed) { try await Self.call(clients, upstream.port, "/order", method: .POST, body: "x") }
        #expect(upstream.requests.count.load(ordering: .relaxed) == 4)
        #expect(upstream.connections.count.load(ordering: .relaxed) == 2)
        try await upstream.channel.close()
        try await clients.shutdown()
    }

    @Test func streamsTheAnswerAsItArrives() async throws {
        let clients = UpstreamClients()
        let gate = Gate()
        try await Self.upstream(gate: gate).test(.live) { client in
            let port = try #require(client.port)
            let response = try await clients.execute(
                UpstreamHTTPRequest(url: "http://127.0.0.1:\(port)/stream", method: .GET, timeout: .seconds(5)))
            guard case .stream(let stream) = response.body else { Issue.record("a chunked answer must stream"); return }
            var chunks: [String] = []
            for try await chunk in stream {
                chunks.append(String(buffer: chunk))
                if chunks == ["first"] { gate.continuation.yield() }  // the upstream sends the rest only now
            }
            #expect(chunks.joined() == "firstsecond")
        }
        try await clients.shutdown()
    }

    @Test func aSlowReaderSlowsTheUpstreamInsteadOfFillingMemory() async throws {
        let clients = UpstreamClients()
        let upstream = try await FloodUpstream.start()
        let response = try await clients.execute(
            UpstreamHTTPRequest(url: "http://127.0.0.1:\(upstream.port)/flood", method: .GET, timeout: .seconds(5)))
        guard case .stream(let stream) = response.body else { Issue.record("a chunked answer must stream"); return }
        var iterator = stream.makeAsyncIterator()
        _ = try await iterator.next()
        try await Task.sleep(for: .seconds(1))  // the reader stalls; an unbounded client would read on
        // What the kernel took from the upstream: the client's reads plus both sockets' buffers (a few MiB
        // on loopback). A client that kept reading would have taken all 256 MiB by now.
        let written = upstream.written.count.load(ordering: .relaxed)
        #expect(written < 64 << 20, "the upstream wrote \(written) bytes while the reader had taken one chunk")
        try await upstream.channel.close()
        try await clients.shutdown()
    }

    @Test func aConnectionReusedBeforeTheLastReaderCaughtUpStillReads() async throws {
        let upstream = try await BurstUpstream.start()
        let clients = UpstreamClients()
        let url = "http://127.0.0.1:\(upstream.port)/burst"
        // The whole answer (more chunks than the reader buffers) arrives while nobody reads it: socket reads
        // pause, the answer ends, and the connection goes back to the pool with its reader still behind.
        let first = try await clients.execute(UpstreamHTTPRequest(url: url, method: .GET, timeout: .seconds(5)), on: Self.loop)
        try await Task.sleep(for: .milliseconds(300))
        // The next call on that loop reuses the connection; it must read again rather than wait out its timeout.
        let second = try await Self.call(clients, upstream.port, "/burst", timeout: .seconds(2))
        #expect(second.2 == BurstUpstream.text)
        #expect(try await Self.text(first.body) == BurstUpstream.text)
        #expect(upstream.connections.count.load(ordering: .relaxed) == 1, "both calls go over one connection")
        try await clients.shutdown()
        try await upstream.channel.close()
    }

    @Test func anAnswerCutBeforeItsBodyIsHandedOverFailsWithItsStatus() async throws {
        let clients = UpstreamClients()
        let upstream = try await CutUpstream.start()
        for path in ["/length", "/chunked"] {
            await #expect(throws: UpstreamCutShort(status: .ok, cause: .closed)) {
                _ = try await clients.execute(
                    UpstreamHTTPRequest(url: "http://127.0.0.1:\(upstream.port)\(path)", method: .GET, timeout: .seconds(5)))
            }
        }
        // The upstream answered: even a GET is not sent again.
        #expect(upstream.requests.count.load(ordering: .relaxed) == 2)
        // A stream cut after its first bytes were handed over fails its reader instead.
        let response = try await clients.execute(
            UpstreamHTTPRequest(url: "http://127.0.0.1:\(upstream.port)/late", method: .GET, timeout: .seconds(5)))
        guard case .stream(let stream) = response.body else { Issue.record("a chunked answer must stream"); return }
        await #expect(throws: (any Error).self) { for try await _ in stream {} }
        try await upstream.channel.close()
        try await clients.shutdown()
    }

    @Test func givesUpOnASilentUpstream() async throws {
        let clients = UpstreamClients()
        try await Self.upstream().test(.live) { client in
            let port = try #require(client.port)
            // A new connection's connect shares the call's limit; a second of it leaves the connect room on a
            // loaded machine, so what runs out is the upstream's silence (3 s), not the connect.
            let started = ContinuousClock.now
            await #expect(throws: UpstreamError.timedOut) { try await Self.call(clients, port, "/slow", timeout: .seconds(1)) }
            #expect(ContinuousClock.now - started < .milliseconds(2900), "the 1 s limit, not the upstream's 3 s of silence")
            #expect(try await Self.call(clients, port, "/peer").0 == .ok, "the client still works after a timeout")
            // A kept connection whose last call allowed 10 s of silence holds a shorter limit for the next call.
            let peer = try await Self.call(clients, port, "/peer", timeout: .seconds(10)).2
            #expect(try await Self.call(clients, port, "/peer").2 == peer, "the kept connection carries the next call")
            let again = ContinuousClock.now
            await #expect(throws: UpstreamError.timedOut) { try await Self.call(clients, port, "/slow", timeout: .milliseconds(300)) }
            #expect(ContinuousClock.now - again < .seconds(2))
        }
        try await clients.shutdown()
    }

    @Test func failsCleanlyWhenNothingListensOrTLSCannotBeEstablished() async throws {
        let clients = UpstreamClients()
        let closed = try await Self.closedPort()
        await #expect(throws: UpstreamError.unreachable) {
            _ = try await clients.execute(UpstreamHTTPRequest(url: "http://127.0.0.1:\(closed)/", method: .GET, timeout: .seconds(2)))
        }
        try await Self.upstream().test(.live) { client in
            let port = try #require(client.port)
            // A plain HTTP server is no TLS server: the handshake fails, no call is made and nothing hangs.
            await #expect(throws: (any Error).self) {
                _ = try await clients.execute(
                    UpstreamHTTPRequest(url: "https://127.0.0.1:\(port)/peer", method: .GET, timeout: .seconds(2)))
            }
        }
        try await clients.shutdown()
    }

    @Test func speaksTLSToAnUpstreamItTrustsAndOnlyToThatOne() async throws {
        let certificate = try NIOSSLCertificate(bytes: Array(TestTLS.certificate.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(TestTLS.key.utf8), format: .pem)
        let router = Router(context: PeerContext.self)
        router.get("/peer") { _, context in "\(context.peerPort)" }
        let app = Application(
            router: router,
            server: try .tls(
                .http1(),
                tlsConfiguration: .makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates([certificate])
        let clients = UpstreamClients(tls: TLSContextSource(configuration: trusting))
        let systemRoots = UpstreamClients()
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let first = try await Self.call(clients, port, "/peer", scheme: "https", host: "localhost")
            let second = try await Self.call(clients, port, "/peer", scheme: "https", host: "localhost")
            #expect(first.0 == .ok && first.2 == second.2, "both calls go over one kept-alive TLS connection")
            // The certificate names localhost, not the address: host names are verified.
            await #expect(throws: (any Error).self) { try await Self.call(clients, port, "/peer", scheme: "https", host: "127.0.0.1") }
            // A certificate the system does not trust is refused.
            await #expect(throws: (any Error).self) { try await Self.call(systemRoots, port, "/peer", scheme: "https", host: "localhost") }
            try await clients.shutdown()
            try await systemRoots.shutdown()
        }
    }

    @Test func aConnectionIdleLongerThanTheSettingIsClosedInsteadOfReused() async throws {
        // The upstream closes, without an answer, a connection that was idle 1 s or more when a request
        // comes on it: as a keep-alive timeout that crosses the request on the wire. (Generous times: the
        // suites beside this one load the machine.)
        let upstream = try await ScriptedUpstream.start { connection, _, idle, _ in
            idle >= .seconds(1) ? nil : .init("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n\(connection)")
        }
        let careful = UpstreamClients(settings: .init(idleTimeout: .milliseconds(700)))
        // A connection idle a moment is reused. Two calls in a row are tried a few times: on a machine loaded
        // by the suites beside this one, the second may come after the 700 ms that close the first's connection.
        var first = "", reused = false
        for _ in 1...5 where !reused {
            let started = ContinuousClock.now
            first = try await Self.call(careful, upstream.port, "/a").2
            reused = try await Self.call(careful, upstream.port, "/b").2 == first
            #expect(reused || ContinuousClock.now - started > .milliseconds(600), "a new connection only after a long pause")
        }
        #expect(reused, "a connection idle a moment is reused")
        try await Task.sleep(for: .milliseconds(1200))
        // Idle past the setting: closed by the client, the POST goes on a new connection and is answered.
        let posted = try await Self.call(careful, upstream.port, "/order", method: .POST, body: "x")
        #expect(posted.0 == .ok && posted.2 != first)
        try await careful.shutdown()

        // A client that keeps connections longer than the upstream does sends the POST into the close.
        let trusting = UpstreamClients(settings: .init(idleTimeout: .seconds(60)))
        _ = try await Self.call(trusting, upstream.port, "/a")
        try await Task.sleep(for: .milliseconds(1200))
        await #expect(throws: UpstreamError.closed) { try await Self.call(trusting, upstream.port, "/order", method: .POST, body: "x") }
        try await trusting.shutdown()
        try await upstream.channel.close()
    }

    @Test func anIdleConnectionIsClosedAfterTheSettingEvenIfNoCallComes() async throws {
        let upstream = try await ScriptedUpstream.start { connection, _, _, _ in
            .init("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n\(connection)")
        }
        let clients = UpstreamClients(settings: .init(idleTimeout: .milliseconds(200)))
        #expect(try await Self.call(clients, upstream.port, "/a").2 == "1")
        for _ in 0..<200 where upstream.closed.count.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.closed.count.load(ordering: .relaxed) == 1, "the idle connection was closed by the client")
        try await clients.shutdown()
        try await upstream.channel.close()
    }

    @Test func callsBeyondTheOriginsConnectionsWaitForOneToBeFree() async throws {
        // Answers each request 100 ms after it came.
        let upstream = try await ScriptedUpstream.start(delay: .milliseconds(100)) { connection, request, _, _ in
            .init("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n\(connection)-\(request)")
        }
        // One per origin in all: each loop's share is one.
        let clients = UpstreamClients(settings: .init(maxConnectionsPerOrigin: 1))
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<4 { group.addTask { try await Self.call(clients, upstream.port, "/q").2 } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.sorted() == ["1-1", "1-2", "1-3", "1-4"], "one connection carried the four calls in turn: \(answers)")
        #expect(upstream.connections.count.load(ordering: .relaxed) == 1)
        // A call that cannot get a connection within its timeout fails as not sent.
        let silent = try await ScriptedUpstream.start { _, _, _, _ in .init("", close: false) }
        let held = Task { try await Self.call(clients, silent.port, "/held", timeout: .seconds(2)) }
        try await Task.sleep(for: .milliseconds(100))
        let started = ContinuousClock.now
        await #expect(throws: UpstreamError.unreachable) { try await Self.call(clients, silent.port, "/next", timeout: .milliseconds(300)) }
        #expect(ContinuousClock.now - started < .seconds(2))
        await #expect(throws: UpstreamError.timedOut) { try await held.value }
        #expect(silent.requests.count.load(ordering: .relaxed) == 1, "the call that waited was never sent")
        try await clients.shutdown()
        try await upstream.channel.close()
        try await silent.channel.close()
    }

    @Test func onlyAReadSentOnAKeptConnectionGoesAgainAfterAMalformedOrClosedAnswer() async throws {
        let upstream = try await ScriptedUpstream.start { connection, request, _, head in
            if head.contains(" /garbage ") { return .init("NOT HTTP AT ALL\r\n\r\n", close: true) }
            if head.contains(" /half ") { return .init("HTTP/1.1 200 OK\r\ncontent-le", close: true) }
            if head.hasPrefix("GET /mute ") || (head.hasPrefix("GET /mute-then-ok ") && request > 1) { return nil }
            return .init("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n\(connection)")
        }
        let clients = UpstreamClients()
        // On kept connections (each call is the second on its connection): garbage and a head cut short
        // are the upstream's answer. A POST is never sent again. A GET goes again once, on a new
        // connection (on a kept one the bytes may be what the last answer should not have had), where
        // the same answer is final.
        for path in ["/garbage", "/half"] {
            _ = try await Self.call(clients, upstream.port, "/warm")
            var before = upstream.requests.count.load(ordering: .relaxed)
            await #expect(throws: UpstreamError.malformed) { try await Self.call(clients, upstream.port, path, method: .POST, body: "x") }
            #expect(upstream.requests.count.load(ordering: .relaxed) == before + 1, "POST \(path) was sent once")
            _ = try await Self.call(clients, upstream.port, "/warm")
            before = upstream.requests.count.load(ordering: .relaxed)
            await #expect(throws: UpstreamError.malformed) { try await Self.call(clients, upstream.port, path) }
            #expect(upstream.requests.count.load(ordering: .relaxed) == before + 2, "GET \(path) was sent twice")
        }
        // On a new connection, closed before any byte: not sent again either (only a kept one may have
        // been closed as idle before it saw the request).
        try await clients.shutdown()
        let before = upstream.requests.count.load(ordering: .relaxed)
        await #expect(throws: UpstreamError.closed) { try await Self.call(clients, upstream.port, "/mute") }
        #expect(upstream.requests.count.load(ordering: .relaxed) == before + 1)
        // On a kept one: a GET goes again, on a new connection, and is answered there.
        _ = try await Self.call(clients, upstream.port, "/warm")
        let connections = upstream.connections.count.load(ordering: .relaxed)
        let retried = try await Self.call(clients, upstream.port, "/mute-then-ok")
        #expect(retried.0 == .ok && upstream.connections.count.load(ordering: .relaxed) == connections + 1)
        try await clients.shutdown()
        try await upstream.channel.close()
    }

    /// A port that was just free: bound, then released.
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }
}

/// A raw upstream that answers each request as `script` says, given the connection's number (from
/// 1), the request's number on it (from 1), how long the connection had been idle and the request's
/// head. An answer of nil closes the connection without a byte; `close` closes it after the answer.
enum ScriptedUpstream {
    struct Reply: Sendable {
        let bytes: String
        let close: Bool
        init(_ bytes: String, close: Bool = false) {
            self.bytes = bytes
            self.close = close
        }
    }
    typealias Script = @Sendable (_ connection: Int, _ request: Int, _ idle: Duration, _ head: String) -> Reply?

    static func start(delay: Duration = .zero, _ script: @escaping Script) async throws
        -> (
            channel: any Channel, port: Int, connections: UpstreamClientTests.Counter, requests: UpstreamClientTests.Counter,
            closed: UpstreamClientTests.Counter
        )
    {
        let connections = UpstreamClientTests.Counter(), requests = UpstreamClientTests.Counter(), closed = UpstreamClientTests.Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                let number = connections.count.add(1, ordering: .relaxed).newValue
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        Answerer(number: number, delay: delay, script: script, requests: requests, closed: closed))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, connections, requests, closed)
    }

    final class Answerer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let number: Int
        let delay: Duration
        let script: Script
        let requests: UpstreamClientTests.Counter
        let closed: UpstreamClientTests.Counter
        var received = ""
        var answered = 0
        var lastActive = ContinuousClock.now

        init(
            number: Int, delay: Duration, script: @escaping Script, requests: UpstreamClientTests.Counter,
            closed: UpstreamClientTests.Counter
        ) {
            self.number = number
            self.delay = delay
            self.script = script
            self.requests = requests
            self.closed = closed
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            // Requests here have at most a one-byte body ("x"), sent with their head.
            while let end = received.range(of: "\r\n\r\n") {
                var head = String(received[..<end.upperBound])
                received = String(received[end.upperBound...])
                if head.lowercased().contains("content-length: 1\r\n"), received.hasPrefix("x") { received.removeFirst(); head += "x" }
                requests.count.add(1, ordering: .relaxed)
                answered += 1
                let idle = ContinuousClock.now - lastActive
                let reply = script(number, answered, idle, head)
                let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let send = {
                    let (handler, context) = loop.value
                    handler.lastActive = .now
                    guard let reply else { return context.close(promise: nil) }
                    if reply.bytes.isEmpty && !reply.close { return }  // silent
                    context.writeAndFlush(handler.wrapOutboundOut(ByteBuffer(string: reply.bytes))).whenComplete { _ in
                        if reply.close { context.close(promise: nil) }
                    }
                }
                if delay == .zero {
                    send()
                } else {
                    context.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay.components.attoseconds / 1_000_000_000))) { send() }
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            closed.count.add(1, ordering: .relaxed)
            context.fireChannelInactive()
        }
    }
}

/// An upstream that answers every request on a connection with 40 one-byte chunks written at once, so a
/// whole chunked answer arrives in a single socket read.
enum BurstUpstream {
    static let text = String(repeating: "x", count: 40)
    static let answer =
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        + String(repeating: "1\r\nx\r\n", count: 40) + "0\r\n\r\n"

    static func start() async throws -> (channel: any Channel, port: Int, connections: UpstreamClientTests.Counter) {
        let connections = UpstreamClientTests.Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                connections.count.add(1, ordering: .relaxed)
                return child.pipeline.addHandler(Answerer())
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, connections)
    }

    /// Writes the answer once per request head (requests here have no body).
    final class Answerer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            for _ in 0..<text.components(separatedBy: "\r\n\r\n").count - 1 {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: BurstUpstream.answer)), promise: nil)
            }
        }
    }
}

/// An upstream that answers with a head, part of a body (none of it for `/chunked`, one chunk for
/// `/late`), then closes the connection.
enum CutUpstream {
    static func start() async throws -> (channel: any Channel, port: Int, requests: UpstreamClientTests.Counter) {
        let requests = UpstreamClientTests.Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in child.pipeline.addHandler(Answerer(requests: requests)) }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, requests)
    }

    final class Answerer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let requests: UpstreamClientTests.Counter
        init(requests: UpstreamClientTests.Counter) { self.requests = requests }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            guard text.contains("\r\n\r\n") else { return }
            requests.count.add(1, ordering: .relaxed)
            let answer =
                text.hasPrefix("GET /chunked ")
                ? "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                : text.hasPrefix("GET /late ")
                    ? "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n"
                    : "HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789"
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}

/// An upstream that answers the first request of each connection, keeping it alive, and closes the
/// connection without an answer when a second request comes on it, as an upstream closing an idle
/// connection just as a call arrives.
enum IdleCloserUpstream {
    static func start() async throws -> (
        channel: any Channel, port: Int, connections: UpstreamClientTests.Counter,
        requests: UpstreamClientTests.Counter
    ) {
        let connections = UpstreamClientTests.Counter(), requests = UpstreamClientTests.Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in
                let number = connections.count.add(1, ordering: .relaxed).newValue
                return child.pipeline.addHandler(Answerer(number: number, requests: requests))
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, connections, requests)
    }

    final class Answerer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let number: Int
        let requests: UpstreamClientTests.Counter
        var answered = false

        init(number: Int, requests: UpstreamClientTests.Counter) {
            self.number = number
            self.requests = requests
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard String(buffer: unwrapInboundIn(data)).contains("\r\n\r\n") else { return }
            requests.count.add(1, ordering: .relaxed)
            guard !answered else { return context.close(promise: nil) }
            answered = true
            let body = "connection \(number)"
            context.writeAndFlush(
                wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)")),
                promise: nil)
        }
    }
}

/// Answers any request with a 256 MiB chunked body, written only while the socket takes it; `written`
/// counts the bytes handed to the kernel.
enum FloodUpstream {
    static let chunk = ByteBuffer(string: "10000\r\n" + String(repeating: "a", count: 0x10000) + "\r\n")
    static let total = 4096

    static func start() async throws -> (channel: any Channel, port: Int, written: UpstreamClientTests.Counter) {
        let written = UpstreamClientTests.Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { child in child.pipeline.addHandler(Writer(written: written)) }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress!.port!, written)
    }

    final class Writer: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let written: UpstreamClientTests.Counter
        var sent = -1  // chunks sent; -1 until a request came

        init(written: UpstreamClientTests.Counter) { self.written = written }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard sent < 0, String(buffer: unwrapInboundIn(data)).contains("\r\n\r\n") else { return }
            sent = 0
            context.write(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")), promise: nil)
            pump(context)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }

        private func pump(_ context: ChannelHandlerContext) {
            guard sent >= 0 else { return }
            while context.channel.isWritable, sent < FloodUpstream.total {
                sent += 1
                let promise = context.eventLoop.makePromise(of: Void.self)
                promise.futureResult.whenSuccess { [written] in written.count.add(FloodUpstream.chunk.readableBytes, ordering: .relaxed) }
                context.writeAndFlush(wrapOutboundOut(FloodUpstream.chunk), promise: promise)
            }
        }
    }
}

/// A throwaway self-signed certificate for `localhost` and its key, made for these tests only.
enum TestTLS {
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBlTCCATugAwIBAgIUASnppe3gSEFWPGQYJ3Fjq/dtO7swCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzE3MTEwMVoYDzIxMjYxMDMw
        MTcxMTAxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAAS9E0zUaifmebkw2FVoMpSoqrwn8XYFkQzWr4MVkNeLoluqan+mjX0L
        ym/qU0rnc4blKWGKVAbv4B/onJ+CC8U7o2kwZzAdBgNVHQ4EFgQU2Vp2Xed+4umS
        V7tsMn4IKKrETDEwHwYDVR0jBBgwFoAU2Vp2Xed+4umSV7tsMn4IKKrETDEwDwYD
        VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
        SAAwRQIhAJHNA4erXOt5BY2g/8wzKT7hYHaw0rWQigYm1QcpUWPmAiBTBjZjlTcT
        w0FH/LdDkAoJXxRbd+K5t4fVlTu6e1Wd4A==
        -----END CERTIFICATE-----
        """
    static let key = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRWzcuCVQm7SM/U1K
        J1yyFw59NhY0DC04xqiICwo9xsOhRANCAAS9E0zUaifmebkw2FVoMpSoqrwn8XYF
        kQzWr4MVkNeLoluqan+mjX0Lym/qU0rnc4blKWGKVAbv4B/onJ+CC8U7
        -----END PRIVATE KEY-----
        """
}
