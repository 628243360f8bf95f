import NIOCore
import Synchronization
import Testing
import WardenVenues
@testable import WardenCore

/// A streamed answer reaches the agent whole only once its call is settled and recorded: with a length,
/// the last byte waits for the conclusion; without one, the server's terminator comes after it anyway.
@Suite struct AnswerStreamTests {
    struct Broke: Error {}

    /// What happened, in order: chunks written to the agent, and the conclusion.
    final class Log: Sendable {
        let events = Mutex<[String]>([])
        func add(_ event: String) { events.withLock { $0.append(event) } }
        var all: [String] { events.withLock { $0 } }
    }

    static func upstream(_ chunks: [String], failingAfter: Bool = false) -> AsyncThrowingStream<ByteBuffer, any Error> {
        AsyncThrowingStream { continuation in
            for chunk in chunks { continuation.yield(ByteBuffer(string: chunk)) }
            continuation.finish(throwing: failingAfter ? Broke() : nil)
        }
    }

    static func stream(_ upstream: AsyncThrowingStream<ByteBuffer, any Error>, holdLast: Bool, log: Log) -> AnswerStream {
        AnswerStream(upstream: upstream, meter: nil, holdLast: holdLast) { failed, _ in log.add(failed ? "concluded: failed" : "concluded")
        }
    }

    @Test func withALengthTheLastByteWaitsForTheConclusion() async throws {
        let log = Log()
        try await Self.stream(Self.upstream(["a", "b", "c"]), holdLast: true, log: log).write { log.add(String(buffer: $0)) }
        #expect(log.all == ["a", "b", "concluded", "c"])
    }

    @Test func withoutALengthTheChunksFlowAndTheConclusionComesBeforeTheEnd() async throws {
        let log = Log()
        try await Self.stream(Self.upstream(["a", "b", "c"]), holdLast: false, log: log).write { log.add(String(buffer: $0)) }
        #expect(log.all == ["a", "b", "c", "concluded"])
    }

    @Test func aBrokenUpstreamConcludesAsFailedAndNeverHandsOverTheHeldByte() async throws {
        let log = Log()
        await #expect(throws: Broke.self) {
            try await Self.stream(Self.upstream(["a", "b"], failingAfter: true), holdLast: true, log: log).write {
                log.add(String(buffer: $0))
            }
        }
        #expect(log.all == ["a", "concluded: failed"])
    }

    @Test func anAgentThatLeftConcludesAsFailed() async throws {
        let log = Log()
        await #expect(throws: Broke.self) {
            try await Self.stream(Self.upstream(["a", "b", "c"]), holdLast: false, log: log).write { chunk in
                if String(buffer: chunk) == "b" { throw Broke() }
                log.add(String(buffer: chunk))
            }
        }
        #expect(log.all == ["a", "concluded: failed"])
    }
}
