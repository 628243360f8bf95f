import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import WSClient
import WSCore

/// A WebSocket to a venue, opened before the agent's handshake is answered, so that a venue that
/// refuses it is the agent's refusal too. It stays open until `finish` (or the venue closes it).
public struct UpstreamSocket: Sendable {
    public let inbound: WebSocketInboundStream
    public let outbound: WebSocketOutboundWriter
    private let done: AsyncStream<Void>.Continuation

    /// Lets the connection close (the relay is over).
    public func finish() { done.finish() }

    public enum OpenError: Error, Sendable {
        /// The venue answered the handshake with something other than 101.
        case refused
        /// No connection could be made, or TLS failed.
        case unreachable
        /// The venue did not answer the handshake within the time allowed.
        case timedOut
    }

    /// Connects to `url` (`ws://` or `wss://`) sending `headers` with the handshake, waiting at most
    /// `within` for the venue's answer. A socket that opens only after that is closed at once.
    public static func open(
        url: String, headers: HTTPFields, limits: WebSocketLimits, within: Duration, logger: Logger
    ) async throws(OpenError) -> UpstreamSocket {
        let (done, finished) = AsyncStream<Void>.makeStream()
        let opened = NIOLockedValueBox<CheckedContinuation<UpstreamSocket, any Error>?>(nil)
        let configuration = WebSocketClientConfiguration(
            maxFrameSize: limits.maxFrameBytes, additionalHeaders: headers, closeTimeout: .seconds(5),
            autoPing: .enabled(timePeriod: limits.pingInterval))
        do {
            return try await withCheckedThrowingContinuation { continuation in
                opened.withLockedValue { $0 = continuation }
                Task {
                    do {
                        try await WebSocketClient.connect(
                            url: url, configuration: configuration,
                            tlsConfiguration: url.hasPrefix("wss:") ? .makeClientConfiguration() : nil, logger: logger
                        ) { inbound, outbound, _ in
                            // Too late (the wait ran out): the socket closes as the handler returns.
                            guard let waiting = opened.withLockedValue({ $0.take() }) else { return }
                            waiting.resume(returning: UpstreamSocket(inbound: inbound, outbound: outbound, done: finished))
                            for await _ in done {}
                        }
                        opened.withLockedValue { $0.take() }?.resume(throwing: OpenError.refused)
                    } catch {
                        let failure: OpenError = (error as? WebSocketClientError) == .webSocketUpgradeFailed ? .refused : .unreachable
                        opened.withLockedValue { $0.take() }?.resume(throwing: failure)
                    }
                }
                Task {
                    try? await Task.sleep(for: within)
                    opened.withLockedValue { $0.take() }?.resume(throwing: OpenError.timedOut)
                }
            }
        } catch let error as OpenError {
            throw error
        } catch {
            throw .unreachable
        }
    }
}
