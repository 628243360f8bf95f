import HTTPTypes
import NIOCore

/// How a gateway call leaves Warden: the server's upstream client. Core sends through nothing else.
public protocol CallTransport: Sendable {
    func send(_ request: CallRequest) async throws(TransportFailure) -> TransportAnswer
}

/// A request as it goes upstream, whole, with the real credential in it.
public struct CallRequest: Sendable {
    public var url: String
    public var method: String
    public var headers: HTTPFields
    public var body: ByteBuffer?
    /// How long connecting, and every silence of the upstream after it, may last.
    public var timeout: Duration
    /// Where the call came from: a call that has to wait for a connection is sent only if its origin
    /// still has no reason not to (its client is there, its deadline has not passed).
    public let origin: any CallOrigin
}

/// An upstream's answer. Its headers are already those an agent may see (`ForwardedHeaders.returnable`).
public struct TransportAnswer: Sendable {
    public enum Body: Sendable {
        case whole(ByteBuffer)
        /// Read as it arrives; reading it slowly slows reading from the upstream.
        case stream(any AsyncSequence<ByteBuffer, any Error> & Sendable)
    }

    public let status: HTTPResponse.Status
    public let headers: HTTPFields
    public let body: Body

    public init(status: HTTPResponse.Status, headers: HTTPFields, body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Why a call got no usable answer, told apart by what the venue may have done with it.
public enum TransportFailure: Error, Sendable {
    /// No connection could be made: nothing left Warden.
    case unreachable
    /// The call waited for a connection until its client had gone or its deadline had passed: nothing
    /// left Warden.
    case withdrawn
    /// Sent, and the upstream stayed silent past the timeout: it may have acted on the call.
    case timedOut
    /// Sent, and the connection failed before a whole answer head came back: it may have acted on the call.
    case failed
    /// The upstream answered `status`, then its answer broke off (`silent`: fell silent) before any of it
    /// reached the agent.
    case cutShort(status: HTTPResponse.Status, silent: Bool)
}
