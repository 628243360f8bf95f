import Hummingbird
import NIOCore
import WardenCore
import WardenHTTP

/// The request context of every Warden route: who is calling and from where.
public struct WardenContext: FrontRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by `AuthMiddleware` on authenticated routes.
    public var principal: Principal?
    /// Where the request came from: its connection, the client a trusted proxy named, TLS.
    public var origin: ClientOrigin
    /// The client's IP address (for the login throttle, rate limits and the audit), or "unknown";
    /// written out only when asked for.
    public var clientAddress: String { origin.address }
    /// The event loop serving the connection (gateway calls go out on a client of the same loop).
    public let eventLoop: any EventLoop
    /// The client's connection: a gateway call whose client has gone is not sent.
    let channel: any Channel
    /// When the request was handed to the router: a call is not sent past a deadline from it.
    let arrived = ContinuousClock.now
    /// This request's name in the access log and in the answer's `X-Warden-Request-Id` header.
    public let requestID = RequestID.next()
    /// Where the gateway leaves an accepted stream's session (see `StreamController`).
    public var webSocket = WebSocketSwitch()

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        origin = ClientOrigin(peer: source.channel.remoteAddress)
        eventLoop = source.channel.eventLoop
        channel = source.channel
    }

    /// The authenticated caller; routes behind `AuthMiddleware` always have one.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw Problem.from(WardenError.unauthenticated) }
        return principal
    }
}
