import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing
@testable import WardenHTTP

/// Bytes the `/flood` route has handed to the front so far.
private let flooded = Atomic<Int>(0)
/// Calls to `/in-flight` that have started.
private let inFlightCalls = Atomic<Int>(0)
/// Calls to `/held` that have started (apart from `/in-flight`: the two graceful-stop tests run side by side).
private let heldCalls = Atomic<Int>(0)
/// `/held` answers once this is set (or after 10 s).
private let heldReleased = Atomic<Bool>(false)
/// Calls to `/big` that have started.
private let bigCalls = Atomic<Int>(0)
private let bigAnswer = ByteBuffer(repeating: 0x62, count: 16 * 1024)

/// Warden's own HTTP/1.1 connection handling, driven over raw sockets so that what goes over the wire
/// (order, framing, closing) is what is checked.
@Suite struct HTTP1FrontTests {
    struct Failure: Error {}

    /// The front's cap on a streamed body; `/echo` itself takes at most 4096 bytes.
    static let cap = 16 * 1024 * 1024

    static func app(
        clientTimeout: TimeAmount = .seconds(60),
        onServerRunning: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let router = Router(context: TestContext.self, options: .autoGenerateHeadEndpoints)
        router.get("/hello") { _, _ -> String in "hello" }
        router.post("/echo") { request, _ -> Response in
            do {
                let body = try await request.body.collect(upTo: 4096)
                return Response(status: .ok, body: .init(byteBuffer: body))
            } catch {
                return Response(status: .contentTooLarge, body: .init(byteBuffer: ByteBuffer(string: "too large")))
            }
        }
        router.post("/count") { request, _ -> String in
            "\(try await request.body.collect(upTo: 8 * 1024 * 1024).readableBytes)"
        }
        router.post("/ignore") { _, _ -> String in "ignored" }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(150))
            return "slow"
        }
        router.get("/slower") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(1000))
            return "slower"
        }
        router.get("/in-flight") { _, _ -> String in
            inFlightCalls.add(1, ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(150))
            return "slow"
        }
        router.get("/held") { _, _ -> String in
            heldCalls.add(1, ordering: .relaxed)
            for _ in 0..<2000 where !heldReleased.load(ordering: .relaxed) {
                try await Task.sleep(for: .milliseconds(5))
            }
            return "slow"
        }
        router.get("/stream") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "first-part"))
                    try await Task.sleep(for: .milliseconds(300))
                    try await writer.write(ByteBuffer(string: "second-part"))
                    try await writer.finish(nil)
                })
        }
        router.get("/broken-stream") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "first-part"))
                    throw Failure()
                })
        }
        router.get("/fails") { _, _ -> String in throw Failure() }
        router.get("/big") { _, _ -> Response in
            bigCalls.add(1, ordering: .relaxed)
            return Response(status: .ok, body: .init(byteBuffer: bigAnswer))
        }
        router.get("/flood") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    let chunk = ByteBuffer(repeating: 0x61, count: 64 * 1024)
                    for _ in 0..<(256 * 16) {  // 256 MiB
                        try await writer.write(chunk)
                        _ = flooded.add(chunk.readableBytes, ordering: .relaxed)
                    }
                    try await writer.finish(nil)
                })
        }
        let responder = router.buildResponder()
        let front = FrontResponder(responder, serverName: "warden", requestIDHeader: TestContext.header, logger: Logger(label: "test"))
        return Application(
            responder: responder, server: .front(front, bodyCap: cap, clientTimeout: clientTimeout),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { onServerRunning($0.localAddress?.port ?? 0) })
    }

    static func withFront(clientTimeout: TimeAmount = .seconds(60), _ body: @escaping @Sendable (Int) async throws -> Void) async throws {
        try await app(clientTimeout: clientTimeout).test(.live) { client in try await body(try #require(client.port)) }
    }

    /// The client timeout of the tests that check it: 400 ms, so silence is checked every 100 ms.
    static let shortTimeout = TimeAmount.milliseconds(400)

    @Test func anIdleConnectionIsClosedOnceTheClientHasBeenSilentTooLong() async throws {
        try await Self.withFront(clientTimeout: Self.shortTimeout) { port in
            // The server counts silence from the request's last byte, which it reads after this instant; the
            // generous timeouts are for a machine loaded by the suites running beside this one.
            var connection = try await RawConnection.open(port: port)
            var started = ContinuousClock.now
            for _ in 0..<3 {
                connection = try await RawConnection.open(port: port)
                started = ContinuousClock.now
                try await connection.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                let first = try await connection.read(timeout: .seconds(10)) { $0.hasSuffix("hello") || connection.closed }
                // Nothing at all: a loaded machine sent the request after the silence had already closed the
                // connection as idle. Only then is it tried again.
                if !first.isEmpty { break }
            }
            let text = try await connection.read(timeout: .seconds(10)) { _ in connection.closed }
            #expect(ContinuousClock.now - started >= .milliseconds(390), "not closed before its time")
            #expect(text.components(separatedBy: "HTTP/1.1").count == 2, "nothing more is sent: \(text)")
            let silent = try await RawConnection.open(port: port)
            _ = try await silent.read(timeout: .seconds(10)) { _ in silent.closed }
        }
    }

    @Test func aHalfSentRequestIsCutOff() async throws {
        try await Self.withFront(clientTimeout: Self.shortTimeout) { port in
            var answered = ""
            for _ in 0..<3 {
                let body = try await RawConnection.open(port: port)
                try await body.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
                answered = try await body.read(timeout: .seconds(10)) { _ in body.closed }
                // Nothing at all: a loaded machine sent the bytes after the silence had already closed the
                // connection as idle. Only then is it tried again.
                if !answered.isEmpty { break }
            }
            #expect(answered.hasPrefix("HTTP/1.1 408") && answered.lowercased().contains("connection: close"), "\(answered)")
            let head = try await RawConnection.open(port: port)
            try await head.send("GET /hello HTTP/1.1\r\nHost: x\r\n")
            let text = try await head.read(timeout: .seconds(10)) { _ in head.closed }
            #expect(text.isEmpty, "a head never finished gets no answer: \(text)")
        }
    }

    @Test func aClientIsNotCutOffWhileItsAnswerIsAwaited() async throws {
        try await Self.withFront(clientTimeout: Self.shortTimeout) { port in
            for attempt in 1...3 {
                let connection = try await RawConnection.open(port: port)
                do {
                    try await connection.send("GET /slower HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                } catch  where attempt < 3 {
                    // A loaded machine sent the requests after the silence had already closed the connection
                    // as idle (nothing was awaited yet): only then is it tried again.
                    continue
                }
                let text = try await connection.read { $0.hasSuffix("hello") }
                #expect(text.contains("slower") && !connection.closed, "\(text)")
                return
            }
        }
    }

    @Test func aClientThatKeepsSendingSlowlyIsNotCutOff() async throws {
        // A wider timeout than the other tests': a loaded machine may oversleep the pauses between chunks.
        try await Self.withFront(clientTimeout: .milliseconds(1500)) { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in 0..<10 {  // 2.5 s in all, never 1.5 s silent
                try await Task.sleep(for: .milliseconds(250))
                try await connection.send("3\r\nabc\r\n")
            }
            try await connection.send("0\r\n\r\n")
            let text = try await connection.read { $0.hasSuffix("\r\n\r\n30") }
            #expect(text.hasPrefix("HTTP/1.1 200") && !connection.closed, "\(text)")
        }
    }

    @Test func answersPipelinedRequestsInTheirOrder() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            let text = try await connection.read { $0.components(separatedBy: "HTTP/1.1 200").count == 3 && $0.hasSuffix("abc") }
            // The echoed body ends the text; an earlier "abc" may be part of a hex request id.
            let slow = try #require(text.range(of: "slow")), echoed = try #require(text.range(of: "abc", options: .backwards))
            #expect(slow.lowerBound < echoed.lowerBound, "the slow first call is answered first")
        }
    }

    @Test func aBodyOverTheRoutesLimitIsRefusedAndTheConnectionStaysUsable() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            let big = String(repeating: "x", count: 5000)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n\(big)")
            _ = try await connection.read { $0.contains("too large") }
            // Chunked (streamed to the route), over the limit across two chunks: the rest is dropped.
            let chunk = String(repeating: "y", count: 3000)
            try await connection.send(
                "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "bb8\r\n\(chunk)\r\nbb8\r\n\(chunk)\r\n0\r\n\r\n")
            _ = try await connection.read { $0.components(separatedBy: "too large").count == 3 }
            // Exactly the limit is read whole, on the same connection.
            let fits = String(repeating: "w", count: 4096)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n\(fits)")
            let text = try await connection.read { $0.hasSuffix(fits) }
            #expect(text.components(separatedBy: "HTTP/1.1 413").count == 3 && text.contains("HTTP/1.1 200"))
            #expect(!connection.closed)
        }
    }

    @Test func aLongBodyStreamsToTheRouteWhole() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            let length = 3 * 1024 * 1024
            try await connection.send("POST /count HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n")
            for _ in 0..<(length / 65536) { try await connection.send(String(repeating: "z", count: 65536)) }
            _ = try await connection.read { $0.hasSuffix("\r\n\r\n\(length)") }
            let part = String(repeating: "q", count: 200_000)
            try await connection.send(
                "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "30d40\r\n\(part)\r\n30d40\r\n\(part)\r\n0\r\n\r\n")
            _ = try await connection.read { $0.hasSuffix("\r\n\r\n400000") }
        }
    }

    @Test func aRouteThatAnswersFirstIsNotKeptWaitingForALongBody() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            let length = 12 * 1024 * 1024
            try await connection.send("POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: \(length)\r\n\r\n")
            try await connection.send(String(repeating: "a", count: 131_072))
            // Answered before the client sent the rest: the body was not gathered first.
            _ = try await connection.read { $0.hasSuffix("ignored") }
            let block = String(repeating: "b", count: 1 << 20)
            var sent = 131_072
            while sent + block.utf8.count <= length {
                try await connection.send(block)
                sent += block.utf8.count
            }
            try await connection.send(String(repeating: "c", count: length - sent))
            // The rest was read and dropped: the connection carries the next call.
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext")
            let text = try await connection.read(timeout: .seconds(20)) { $0.hasSuffix("next") }
            #expect(text.hasPrefix("HTTP/1.1 200") && !connection.closed)
        }
    }

    /// A route that lets go of its streamed body signals it late, after the next pipelined request may have
    /// begun streaming its own: that signal must not cut the next body off.
    @Test func aPipelinedStreamedBodyIsNotCutOffByThePreviousRouteLettingGo() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            let part = String(repeating: "p", count: 150_000)
            let chunked = "Transfer-Encoding: chunked\r\n\r\n249f0\r\n\(part)\r\n249f0\r\n\(part)\r\n0\r\n\r\n"
            let rounds = 20
            for _ in 0..<rounds {
                try await connection.send("POST /ignore HTTP/1.1\r\nHost: x\r\n\(chunked)POST /count HTTP/1.1\r\nHost: x\r\n\(chunked)")
            }
            let text = try await connection.read(timeout: .seconds(20)) { $0.components(separatedBy: "\r\n\r\n300000").count == rounds + 1 }
            #expect(text.components(separatedBy: "ignored").count == rounds + 1 && !connection.closed)
        }
    }

    /// All of a chunked request's parts can arrive while the call before it is still being answered: once
    /// that answer ends, its head starts its route, and the parts queued behind the head must follow it.
    @Test func aChunkedBodyPipelinedBehindASlowCallReachesItsRouteWhole() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send(
                "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "POST /count HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            let text = try await connection.read { $0.components(separatedBy: "HTTP/1.1 200").count == 3 && $0.hasSuffix("\r\n\r\n11") }
            #expect(text.contains("slow") && !connection.closed, "\(text)")
        }
    }

    @Test func tellsAClientThatWaitsToSendItsBody() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let interim = try await connection.read { $0.hasSuffix("\r\n\r\n") }
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n"))
            try await connection.send("body")
            let text = try await connection.read { $0.hasSuffix("body") }
            #expect(text.contains("HTTP/1.1 200 OK"))
            // Declared over the front's cap: no go-ahead; refused at once, and the connection closes.
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(Self.cap + 1)\r\n\r\n")
            let refused = try await connection.read { _ in connection.closed }
            #expect(refused.dropFirst(text.count).hasPrefix("HTTP/1.1 413"))
            #expect(!refused.dropFirst(text.count).contains("100 Continue"))
        }
    }

    @Test func closesAfterTheAnswerWhenAskedTo() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
            let text = try await connection.read { _ in connection.closed }
            #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("hi"))
        }
    }

    @Test func closesAfterAnHTTP10AnswerUnlessAskedToKeepTheConnection() async throws {
        try await Self.withFront { port in
            let plain = try await RawConnection.open(port: port)
            try await plain.send("GET /hello HTTP/1.0\r\n\r\n")
            let answer = try await plain.read { _ in plain.closed }
            #expect(answer.hasPrefix("HTTP/1.0 200") && answer.hasSuffix("hello"))
            #expect(answer.lowercased().contains("connection: close\r\n"))

            let kept = try await RawConnection.open(port: port)
            try await kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let first = try await kept.read { $0.hasSuffix("hello") }
            #expect(first.lowercased().contains("connection: keep-alive\r\n"))
            try await kept.send("GET /hello HTTP/1.0\r\n\r\n")
            let both = try await kept.read { _ in kept.closed }
            #expect(both.components(separatedBy: "HTTP/1.0 200").count == 3)
        }
    }

    @Test func anHTTP10ClientGetsAStreamedBodyFramedByTheClose() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /stream HTTP/1.0\r\n\r\n")
            let text = try await connection.read { _ in connection.closed }
            let parts = text.components(separatedBy: "\r\n\r\n")
            #expect(parts.count == 2 && parts[1] == "first-partsecond-part", "no chunk framing: \(text)")
            #expect(!text.lowercased().contains("transfer-encoding"))
        }
    }

    @Test func aRequestPipelinedAfterAClosingOneIsNotAnswered() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send(
                "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nlater")
            let text = try await connection.read { _ in connection.closed }
            // SwiftNIO's parser calls bytes after a closing request an error (a 400 may follow); the
            // route never runs.
            #expect(text.hasPrefix("HTTP/1.1 200") && text.contains("\r\n\r\nhello"), "\(text)")
            #expect(text.components(separatedBy: "HTTP/1.1 200").count == 2 && !text.contains("later"), "\(text)")
        }
    }

    @Test func answersHeadWithoutABodyAndTheConnectionCarriesOn() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            // Pipelined: a body sent after the HEAD answer would be read as the start of the next one.
            try await connection.send(
                "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nHEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                    + "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = try await connection.read { $0.hasSuffix("hello") }
            let answers = text.components(separatedBy: "HTTP/1.1 200 OK\r\n")
            #expect(answers.count == 4, "three answers: \(text)")
            #expect(answers[1].lowercased().contains("content-length: 5\r\n") && answers[1].hasSuffix("\r\n\r\n"))
            #expect(answers[2].hasSuffix("\r\n\r\n"), "no chunk of the streamed body: \(answers[2])")
            #expect(answers[3].hasSuffix("\r\n\r\nhello"))
        }
    }

    @Test func requestHeadsAreTranslatedForTheRoutes() throws {
        var headers = HTTPHeaders([("Host", "127.0.0.1:8472"), ("X-Custom", "1"), ("Host", "second")])
        let origin = try #require(CallHandler.request(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/a/b?c=d", headers: headers)))
        #expect(origin.method == .post && origin.path == "/a/b?c=d" && origin.authority == "127.0.0.1:8472")
        // A second Host stays in the fields, which is how the front tells it (and refuses the request).
        #expect(origin.headerFields[HTTPField.Name("x-custom")!] == "1" && origin.headerFields[values: CallHandler.hostField] == ["second"])
        headers = ["Host": "x"]
        let absolute = try #require(
            CallHandler.request(HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://x/p?q=1", headers: headers)))
        #expect(absolute.path == "/p?q=1")
        #expect(
            CallHandler.request(HTTPRequestHead(version: .http1_1, method: .RAW(value: "NOT A TOKEN"), uri: "/", headers: headers)) == nil)
    }

    @Test func answersAMalformedRequestWith400AndCloses() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("NOT HTTP AT ALL\r\n\r\n")
            let text = try await connection.read { _ in connection.closed }
            #expect(text.hasPrefix("HTTP/1.1 400"))
        }
    }

    @Test func malformedBytesBehindACallInFlightCloseOnlyAfterItsAnswer() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
            let text = try await connection.read { _ in connection.closed }
            #expect(text.hasPrefix("HTTP/1.1 200") && text.hasSuffix("slow"), "the call in flight is answered whole: \(text)")
            #expect(text.lowercased().contains("connection: close"), "its answer says the connection ends: \(text)")
        }
    }

    @Test func manyPipelinedRequestsAreAnsweredInOrderAcrossReads() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            // Slow calls between quick ones, sent in three writes: later heads arrive while answers are awaited.
            for round in 0..<3 {
                try await connection.send(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na\(round)a"
                        + "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nb\(round)b")
            }
            let text = try await connection.read { $0.components(separatedBy: "HTTP/1.1 200").count == 10 && $0.hasSuffix("b2b") }
            let bodies = text.components(separatedBy: "HTTP/1.1 200").dropFirst().map { $0.components(separatedBy: "\r\n\r\n").last ?? "" }
            #expect(bodies == ["a0a", "slow", "b0b", "a1a", "slow", "b1b", "a2a", "slow", "b2b"], "\(text)")
        }
    }

    @Test func anErrorThatEscapesTheRouterIsABare500() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /fails HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = try await connection.read { $0.contains("\r\n\r\n") }
            #expect(text.hasPrefix("HTTP/1.1 500"))
            #expect(!text.contains("Failure"), "the error's description is not sent")
        }
    }

    @Test func sendsDateAndServerHeaders() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n!")
            let text = try await connection.read { $0.hasSuffix("!") }
            #expect(text.lowercased().contains("server: warden\r\n"))
            try await connection.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n?")
            let both = try await connection.read { $0.hasSuffix("?") }
            let ids = both.split(separator: "\r\n").filter { $0.lowercased().hasPrefix("x-warden-request-id: ") }.map { $0.dropFirst(21) }
            #expect(ids.count == 2 && ids[0] != ids[1], "each answer has its own request id: \(ids)")
            let date = try #require(text.split(separator: "\r\n").first { $0.lowercased().hasPrefix("date: ") })
            #expect(date.dropFirst(6).wholeMatch(of: /[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT/) != nil)
        }
        #expect(HTTPDateCache.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDateCache.format(Date(timeIntervalSince1970: 1_709_164_800)) == "Thu, 29 Feb 2024 00:00:00 GMT")
    }

    @Test func aStreamedBodyGoesOutPartByPart() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
            let early = try await connection.read { $0.contains("first-part") }
            #expect(!early.contains("second-part"), "the first part arrived before the second was written")
            let whole = try await connection.read { $0.hasSuffix("0\r\n\r\n") }
            #expect(whole.contains("second-part") && whole.lowercased().contains("transfer-encoding: chunked"))
        }
    }

    @Test func aReaderThatDoesNotReadHoldsTheStreamBack() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port, reads: false)
            try await connection.send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
            try await Task.sleep(for: .seconds(1))
            let produced = flooded.load(ordering: .relaxed)
            #expect(produced > 0, "the stream started")
            #expect(produced < 32 * 1024 * 1024, "\(produced) bytes produced for a reader that took none")
            try await connection.channel.close()
        }
    }

    @Test func aClientThatPipelinesAndDoesNotReadHoldsBackItsRequests() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port, reads: false)
            let count = 1000
            try await connection.send(String(repeating: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", count: count))
            try await Task.sleep(for: .seconds(1))
            // Answered: what the sockets' buffers hold (a few MiB of 16 KiB answers), not all of them.
            let answered = bigCalls.load(ordering: .relaxed)
            #expect(answered > 0 && answered < count * 2 / 3, "\(answered) answers written for a client that read none")
            // Once it reads, every request is answered, in order.
            connection.channel.setOption(.autoRead, value: true).whenSuccess { connection.channel.read() }
            // Every answer's head and body: the bodies alone add up before the last heads have come.
            let text = try await connection.read(timeout: .seconds(20)) {
                $0.utf8.count >= count * bigAnswer.readableBytes && $0.components(separatedBy: "HTTP/1.1 200 OK").count == count + 1
            }
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count == count + 1)
            #expect(bigCalls.load(ordering: .relaxed) == count)
        }
    }

    @Test func aStreamThatFailsClosesTheConnectionWithoutAnEnd() async throws {
        try await Self.withFront { port in
            let connection = try await RawConnection.open(port: port)
            try await connection.send("GET /broken-stream HTTP/1.1\r\nHost: x\r\n\r\n")
            let text = try await connection.read { _ in connection.closed }
            #expect(text.contains("first-part"))
            #expect(!text.hasSuffix("0\r\n\r\n"), "a cut stream must not look complete")
        }
    }

    @Test func aGracefulStopFinishesTheCallInFlightAndClosesIdleConnections() async throws {
        let port = NIOLockedValueBox(0)
        let group = ServiceGroup(
            configuration: .init(
                services: [Self.app { bound in port.withLockedValue { $0 = bound } }],
                logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var bound = 0
            for _ in 0..<500 where bound == 0 {
                try await Task.sleep(for: .milliseconds(10))
                bound = port.withLockedValue { $0 }
            }
            let busy = try await RawConnection.open(port: bound)
            let idle = try await RawConnection.open(port: bound)
            try await busy.send("GET /in-flight HTTP/1.1\r\nHost: x\r\n\r\n")
            for _ in 0..<500 where inFlightCalls.load(ordering: .relaxed) == 0 {
                try await Task.sleep(for: .milliseconds(2))
            }
            // The call is now in flight for 150 ms.
            await group.triggerGracefulShutdown()
            let answered = try await busy.read { _ in busy.closed }
            #expect(
                answered.hasPrefix("HTTP/1.1 200") && answered.hasSuffix("slow"),
                "the call in flight is answered, then the connection closes")
            let nothing = try await idle.read { _ in idle.closed }
            #expect(nothing.isEmpty)
            try await tasks.next()
        }
    }

    @Test func aGracefulStopAnswersTheCallInFlightButNotOnePipelinedBehindIt() async throws {
        let port = NIOLockedValueBox(0)
        let group = ServiceGroup(
            configuration: .init(
                services: [Self.app { bound in port.withLockedValue { $0 = bound } }],
                logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var bound = 0
            for _ in 0..<500 where bound == 0 {
                try await Task.sleep(for: .milliseconds(10))
                bound = port.withLockedValue { $0 }
            }
            let busy = try await RawConnection.open(port: bound)
            let idle = try await RawConnection.open(port: bound)
            try await busy.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nlater")
            for _ in 0..<500 where heldCalls.load(ordering: .relaxed) == 0 {
                try await Task.sleep(for: .milliseconds(2))
            }
            await group.triggerGracefulShutdown()
            // The idle connection closing shows the stop has reached the connections; only then does the call end.
            _ = try await idle.read { _ in idle.closed }
            try await Task.sleep(for: .milliseconds(100))
            heldReleased.store(true, ordering: .relaxed)
            let answered = try await busy.read { _ in busy.closed }
            #expect(answered.hasPrefix("HTTP/1.1 200") && answered.hasSuffix("slow"), "the call in flight is answered: \(answered)")
            #expect(answered.lowercased().contains("connection: close") && !answered.contains("later"), "\(answered)")
            try await tasks.next()
        }
    }
}

/// A TCP connection that sends raw bytes and keeps everything it receives.
final class RawConnection: Sendable {
    let channel: any Channel
    let received: NIOLockedValueBox<(text: String, closed: Bool)>

    private init(channel: any Channel, received: NIOLockedValueBox<(text: String, closed: Bool)>) {
        self.channel = channel
        self.received = received
    }

    static func open(port: Int, reads: Bool = true) async throws -> RawConnection {
        let received = NIOLockedValueBox((text: "", closed: false))
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: reads)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Collector(received: received)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawConnection(channel: channel, received: received)
    }

    var closed: Bool { received.withLockedValue { $0.closed } }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    /// Everything received so far, once `done` holds for it; fails after `timeout`, closing the connection
    /// so that a route stuck waiting on it ends and the server's graceful stop does not wait forever.
    func read(timeout: Duration = .seconds(5), until done: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = received.withLockedValue { $0.text }
            if done(text) { return text }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("timed out; received: \(received.withLockedValue { $0.text })")
        try? await channel.close()
        throw HTTP1FrontTests.Failure()
    }

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<(text: String, closed: Bool)>
        init(received: NIOLockedValueBox<(text: String, closed: Bool)>) { self.received = received }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            received.withLockedValue { $0.text += text }
        }

        func channelInactive(context: ChannelHandlerContext) {
            received.withLockedValue { $0.closed = true }
        }
    }
}

// MARK: - the wire, byte for byte

/// The front's handlers (`HTTP1Front.addHandlers`, as a live connection has them) on NIOEmbedded's
/// testing channel: raw request bytes in, raw answer bytes out, compared exactly. `Date` values and
/// request ids, which change with every answer, are replaced by `*` first. The thread-safe
/// `NIOAsyncTestingChannel` rather than `EmbeddedChannel`: routes answer from a task, off the loop.
final class FrontWire: Sendable {
    let channel: NIOAsyncTestingChannel

    private init(channel: NIOAsyncTestingChannel) { self.channel = channel }

    static let bodyCap = 64 * 1024

    static func open() async throws -> FrontWire {
        let router = Router(context: TestContext.self)
        router.get("/hello") { _, _ -> String in "hello" }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(100))
            return "slow"
        }
        router.post("/echo") { request, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: try await request.body.collect(upTo: 4096)))
        }
        router.post("/sink") { request, _ -> Response in
            do {
                return Response(status: .ok, body: .init(byteBuffer: try await request.body.collect(upTo: 1 << 20)))
            } catch {
                return Response(status: .badRequest, body: .init(byteBuffer: ByteBuffer(string: "cut")))
            }
        }
        // As the gateway answers a HEAD whose upstream answered chunked: a streamed body, no length.
        router.head("/chunked") { _, _ -> Response in
            Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "abc"))
                    try await writer.write(ByteBuffer(string: "def"))
                    try await writer.finish(nil)
                })
        }
        // As the gateway answers a HEAD whose upstream gave a length: kept, and a body written anyway.
        router.head("/sized") { _, _ -> Response in
            Response(status: .ok, headers: [.contentLength: "1234"], body: .init(byteBuffer: ByteBuffer(string: "hello")))
        }
        router.on("/tunnel", method: .connect) { _, _ -> String in "no tunnel" }
        let responder = FrontResponder(
            router.buildResponder(), serverName: "warden", requestIDHeader: TestContext.header, logger: Logger(label: "test"))
        let channel = NIOAsyncTestingChannel()
        try await channel.eventLoop.submit {
            try HTTP1Front.addHandlers(
                to: channel.pipeline.syncOperations, responder: responder, bodyCap: bodyCap,
                clientTimeout: .seconds(60), shutdownGrace: .seconds(1))
        }.get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8472)).get()
        return FrontWire(channel: channel)
    }

    /// Sends `text` and returns what the front wrote once `done` holds for it (normalized) or the
    /// connection has closed and nothing more comes.
    func exchange(_ text: String, until done: @escaping (String) -> Bool = { _ in false }) async throws -> (text: String, closed: Bool) {
        if channel.isActive { try await channel.writeInbound(ByteBuffer(string: text)) }
        var out = ""
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            while let data = try await channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = data { out += String(buffer: buffer) }
            }
            let text = Self.normalized(out)
            if done(text) { return (text, !channel.isActive) }
            if !channel.isActive {
                // Anything written before the close is in already: one more look, then done.
                while let data = try await channel.readOutbound(as: IOData.self) {
                    if case .byteBuffer(let buffer) = data { out += String(buffer: buffer) }
                }
                return (Self.normalized(out), true)
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        Issue.record("timed out; written: \(out)")
        return (Self.normalized(out), !channel.isActive)
    }

    func close() async { try? await channel.close() }

    static func normalized(_ text: String) -> String {
        text.replacing(/(?i)(date|x-warden-request-id): [^\r]*\r\n/) { "\($0.1): *\r\n" }
    }

    /// An answer of the test routes, as it goes over the wire.
    static func ok(_ body: String, extra: String = "") -> String {
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n\(extra)"
            + "Date: *\r\nServer: warden\r\nX-Warden-Request-Id: *\r\n\r\n\(body)"
    }

    static func refusal(_ status: String) -> String {
        "HTTP/1.1 \(status)\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
    }
}

extension HTTP1FrontTests {
    /// Byte-exact checks of the front's HTTP/1.1 rules on an embedded channel (see docs/http.md).
    @Suite struct Wire {
        static let smuggled = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

        /// Each is a way to make two parsers disagree on where a request ends. SwiftNIO's parser
        /// (llhttp, strict) refuses them: the front answers 400, closes, and the request behind is never
        /// answered.
        @Test(arguments: [
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n\tb\r\n\r\n",
            "GET /hello HTTP/1.1\nHost: x\n\n",
            "GET /hello HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost : x\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            "GET /hello HTTP/1.1\r\nHost: x\r\n Leading: space\r\n\r\n",
        ])
        func aSmugglingVectorIsRefusedWith400AndTheConnectionCloses(_ request: String) async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(request + Self.smuggled)
            #expect(text == FrontWire.refusal("400 Bad Request"), "\(request.debugDescription)")
            #expect(closed)
            await wire.close()
        }

        /// A bad chunk size behind a body already streaming to its route: the route sees its body fail,
        /// its answer goes out saying the connection closes, and the request behind is never answered.
        @Test func anInvalidChunkSizeEndsTheConnectionAfterTheAnswer() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(
                "POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nxyz\r\n0\r\n\r\n" + Self.smuggled)
            #expect(
                text == "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\nDate: *\r\nServer: warden\r\nX-Warden-Request-Id: *\r\n"
                    + "connection: close\r\n\r\ncut")
            #expect(closed)
            await wire.close()
        }

        @Test func aHeadOverTheFieldLimitIsRefusedWith431() async throws {
            // Host and 99 more: exactly the limit, answered.
            let fields = (1..<HTTP1Front.maxHeaderFields).map { "X-F\($0): v\r\n" }.joined()
            let fits = try await FrontWire.open()
            let answered = try await fits.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\(fields)\r\n") { $0.hasSuffix("hello") }
            #expect(answered.text == FrontWire.ok("hello") && !answered.closed)
            await fits.close()
            // One more: refused before the head is whole.
            let over = try await FrontWire.open()
            let refused = try await over.exchange("GET /hello HTTP/1.1\r\nHost: x\r\n\(fields)X-One-More: v\r\n\r\n" + Self.smuggled)
            #expect(refused.text == FrontWire.refusal("431 Request Header Fields Too Large") && refused.closed)
            await over.close()
            // A head of few fields but over 80 KiB.
            let long = try await FrontWire.open()
            let tooLong = try await long.exchange(
                "GET /hello HTTP/1.1\r\nHost: x\r\nX-Long: \(String(repeating: "a", count: 90_000))\r\n\r\n")
            #expect(tooLong.text == FrontWire.refusal("431 Request Header Fields Too Large") && tooLong.closed)
            await long.close()
        }

        @Test(arguments: ["Host: a\r\nHost: b\r\n", "Host: a\r\nhost: a\r\n", "HOST: a\r\nX: 1\r\nHost: a\r\n"])
        func aSecondHostIsRefusedWith400(_ hosts: String) async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange("GET /hello HTTP/1.1\r\n\(hosts)\r\n" + Self.smuggled)
            #expect(text == FrontWire.refusal("400 Bad Request") && closed)
            await wire.close()
        }

        @Test func anOversizedBodyIsRefusedWith413BeforeItIsRead() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: \(FrontWire.bodyCap + 1)\r\n\r\nabc" + Self.smuggled)
            #expect(text == FrontWire.refusal("413 Payload Too Large") && closed)
            await wire.close()
        }

        @Test func continueGoesOnlyToAnHTTP11ClientThatAsks() async throws {
            let eleven = try await FrontWire.open()
            let interim = try await eleven.exchange("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 4\r\n\r\n") {
                $0.hasSuffix("\r\n\r\n")
            }
            #expect(interim.text == "HTTP/1.1 100 Continue\r\n\r\n")
            let answer = try await eleven.exchange("body") { $0.hasSuffix("body") }
            #expect(answer.text == FrontWire.ok("body").replacing("Content-Type: text/plain; charset=utf-8\r\n", with: ""))
            await eleven.close()

            let ten = try await FrontWire.open()
            let plain = try await ten.exchange("POST /echo HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody")
            #expect(
                plain.text == "HTTP/1.0 200 OK\r\nContent-Length: 4\r\nDate: *\r\nServer: warden\r\nX-Warden-Request-Id: *\r\n"
                    + "connection: close\r\n\r\nbody")
            #expect(plain.closed)
            await ten.close()

            let unknown = try await FrontWire.open()
            let refused = try await unknown.exchange(
                "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: the-unexpected\r\nContent-Length: 4\r\n\r\nbody")
            #expect(refused.text == FrontWire.refusal("417 Expectation Failed") && refused.closed)
            await unknown.close()
        }

        @Test func pipelinedRequestsAreAnsweredInTheirOrder() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(
                "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            ) { $0.hasSuffix("hello") }
            #expect(
                text == FrontWire.ok("slow")
                    + FrontWire.ok("abc").replacing("Content-Type: text/plain; charset=utf-8\r\n", with: "") + FrontWire.ok("hello"))
            #expect(!closed)
            await wire.close()
        }

        /// A HEAD answer ends at its head, whatever its route wrote after it: no chunk, no chunked
        /// terminator, no bytes of a sized body. Pipelined: any of them would be read as the next answer.
        @Test func aHeadAnswerCarriesNoBodyAlsoOverAChunkedUpstream() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(
                "HEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\nHEAD /sized HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
            ) { $0.hasSuffix("hello") }
            #expect(
                text == "HTTP/1.1 200 OK\r\nDate: *\r\nServer: warden\r\nX-Warden-Request-Id: *\r\ntransfer-encoding: chunked\r\n\r\n"
                    + "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDate: *\r\nServer: warden\r\nX-Warden-Request-Id: *\r\n\r\n"
                    + FrontWire.ok("hello"))
            #expect(!closed)
            await wire.close()
        }

        /// A CONNECT answer has no body nor framing (SwiftNIO's encoder), and SwiftNIO's parser reads
        /// nothing after a CONNECT: the answer says the connection closes, and it does.
        @Test func aConnectAnswerCarriesNoBodyAndTheConnectionCloses() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange("CONNECT /tunnel HTTP/1.1\r\nHost: x\r\n\r\n" + Self.smuggled)
            #expect(
                text == "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: *\r\nServer: warden\r\n"
                    + "X-Warden-Request-Id: *\r\nconnection: close\r\n\r\n")
            #expect(closed)
            await wire.close()
        }

        /// An upgrade (curl's `--http2` over plain HTTP asks for h2c) is ignored: the request is answered
        /// over HTTP/1.1, and since SwiftNIO's parser reads nothing after it, the connection closes.
        @Test func anUpgradeIsIgnoredAndTheConnectionClosesAfterTheAnswer() async throws {
            let wire = try await FrontWire.open()
            let (text, closed) = try await wire.exchange(
                "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
                    + Self.smuggled)
            #expect(text == FrontWire.ok("hello", extra: "").replacing("\r\n\r\nhello", with: "\r\nconnection: close\r\n\r\nhello"))
            #expect(closed)
            await wire.close()
        }
    }
}
