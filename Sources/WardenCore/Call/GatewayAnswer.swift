import Foundation
import HTTPTypes
import NIOCore
import WardenVenues

/// What the gateway answers an agent: the venue's answer relayed, the simulator's, or a refusal in the
/// venue's shape.
public struct GatewayAnswer: Sendable {
    public enum Body: Sendable {
        case whole(ByteBuffer)
        case stream(AnswerStream)
    }

    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let body: Body

    init(status: HTTPResponse.Status, headers: HTTPFields, body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(status: HTTPResponse.Status, contentType: String, body: some DataProtocol) {
        self.init(status: status, headers: [.contentType: contentType], body: .whole(ByteBuffer(bytes: body)))
    }
}

/// An answer's body as it streams from the venue: metered, and ended only once the call is settled and
/// recorded. With a Content-Length the agent is done at the last byte, so that byte waits; a chunked
/// answer ends with its terminator, which the server writes after `write` returns.
public struct AnswerStream: Sendable {
    let upstream: any AsyncSequence<ByteBuffer, any Error> & Sendable
    let meter: UsageMeter?
    let holdLast: Bool
    /// Settles and records how the call ended: `failed` when the venue's body broke off or the agent left.
    let conclude: @Sendable (_ failed: Bool, _ usage: TokenUsage?) async -> Void

    /// Hands the body to `write` as it comes; the call is concluded before the last byte, whatever happens.
    /// A body that broke off (at the venue or at the agent) rethrows once concluded.
    public func write(_ write: (ByteBuffer) async throws -> Void) async throws {
        var meter = meter
        var failure: (any Error)?
        var last: ByteBuffer?
        do {
            for try await chunk in upstream {
                let out = meter == nil ? chunk : ByteBuffer(bytes: meter!.consume(Array(buffer: chunk)))
                guard out.readableBytes > 0 else { continue }
                if holdLast {
                    if let previous = last { try await write(previous) }
                    last = out
                } else {
                    try await write(out)
                }
            }
            if meter != nil {
                let rest = meter!.finish()
                if !rest.isEmpty { try await write(ByteBuffer(bytes: rest)) }
            }
        } catch {
            failure = error
        }
        await conclude(failure != nil, meter?.usage)
        if let failure { throw failure }
        if let last { try await write(last) }
    }
}
