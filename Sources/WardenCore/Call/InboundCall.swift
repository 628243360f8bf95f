import HTTPTypes
import NIOCore

/// A call as it arrives at `/proxy/{venue}/…`, with what the server knows of where it came from and the
/// transport it would leave through. The server builds one per request and hands it to `GatewayCalls`.
public struct InboundCall: Sendable {
    /// The `{venue}` of the path, as the caller wrote it.
    public let venueName: String
    public let method: HTTPRequest.Method
    /// The path after `/proxy/{venue}`, still percent-encoded.
    public let rawPath: String
    public let query: String?
    /// The request's `Host` (its authority), lowercased by the caller or not.
    public let authority: String?
    public let headers: HTTPFields
    /// The id the server gave this request (its `X-Warden-Request-Id`), written into the call's audit rows.
    public let requestID: String
    public let origin: any CallOrigin
    public let body: any CallBody
    public let transport: any CallTransport

    public init(
        venueName: String, method: HTTPRequest.Method, rawPath: String, query: String?, authority: String?,
        headers: HTTPFields, requestID: String, origin: any CallOrigin, body: any CallBody, transport: any CallTransport
    ) {
        self.venueName = venueName
        self.method = method
        self.rawPath = rawPath
        self.query = query
        self.authority = authority
        self.headers = headers
        self.requestID = requestID
        self.origin = origin
        self.body = body
        self.transport = transport
    }
}

/// Where a call came from: whether it may still be sent.
public protocol CallOrigin: Sendable {
    /// The request's body has been read: the send deadline counts from now (a slow upload is not a slow store).
    func bodyRead()
    /// Why the call must not be sent now, if it must not: its client has gone, or it waited too long.
    func reasonNotToSend() -> String?
    /// The caller's IP address (as a trusted proxy forwarded it), or "unknown".
    var clientAddress: String { get }
    /// The verified client certificate the caller's connection presented, if any.
    var certificate: (subject: String, fingerprint: String)? { get }
}

/// The request's body, read whole when the gateway needs it.
public protocol CallBody: Sendable {
    /// The body, or `.tooLarge` past `limit` bytes, or `.malformed` when it broke off or could not be parsed.
    func collect(upTo limit: Int) async throws(CallBodyError) -> ByteBuffer
}

public enum CallBodyError: Error, Sendable {
    case tooLarge, malformed
}
