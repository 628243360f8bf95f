import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes

/// A request context the front can make for each request, naming the request in the answer's headers.
public protocol FrontRequestContext: RequestContext where Source == ApplicationRequestContextSource {
    /// This request's name, sent back in the front's request-id header.
    var requestID: String { get }
    /// Where the request came from; the front sets it before the router runs.
    var origin: ClientOrigin { get set }
    /// Where a route that answers 101 leaves the WebSocket session to run; the front sets it.
    var webSocket: WebSocketSwitch { get set }
}

/// Answers one request read by `HTTP1Front`: runs the router, then writes the response to the channel.
/// An error that escapes the router becomes a bare 500, as in Hummingbird's own server.
public struct FrontResponder: Sendable {
    let respond: @Sendable (Request, ClientOrigin, any Channel) async -> (Response, requestID: String, WebSocketSwitch)
    let logger: Logger
    let serverName: String
    let requestIDHeader: HTTPField.Name
    let dates = HTTPDateCache()

    public init<R: HTTPResponder>(
        _ responder: R, serverName: String, requestIDHeader: HTTPField.Name, logger: Logger
    ) where R.Context: FrontRequestContext {
        respond = { request, origin, channel in
            var context = R.Context(source: .init(channel: channel, logger: logger))
            context.origin = origin
            let webSocket = WebSocketSwitch()
            context.webSocket = webSocket
            do {
                return (try await responder.respond(to: request, context: context), context.requestID, webSocket)
            } catch {
                logger.debug("unhandled error", metadata: ["error.type": "\(String(reflecting: type(of: error)))"])
                return (Response(status: .internalServerError), context.requestID, webSocket)
            }
        }
        self.serverName = serverName
        self.requestIDHeader = requestIDHeader
        self.logger = logger
    }

    func answer(_ request: Request, from origin: ClientOrigin, on channel: any Channel) async {
        var (response, requestID, webSocket) = await respond(request, origin, channel)
        response.headers[.date] = dates.now()
        response.headers[.server] = serverName
        response.headers[requestIDHeader] = requestID
        if response.status == .switchingProtocols, let accepted = webSocket.take() {
            return await WebSocketSwitch.run(accepted, head: response.head, on: channel, logger: logger)
        }
        let writer = ChannelBodyWriter(channel: channel, head: response.head, streams: response.body.contentLength == nil)
        do {
            try await response.body.write(writer)
        } catch {
            // A body that fails part way (an upstream stream cut) cannot be finished: the client sees
            // the connection close before the end of the body, not a truncated answer that looks whole.
            channel.close(promise: nil)
        }
    }
}

/// Writes a response to the channel. A body of known length goes out with its head and end in one
/// flush, without waiting: it is one answer, and `CallHandler` starts no other on the connection until
/// the socket has room again, so a client that does not read holds back the requests it pipelines. A
/// streamed body is flushed part by part, and each write waits until the socket took the previous one,
/// so a slow reader holds the stream back instead of filling memory. Whether the connection closes
/// after the end is the connection handler's to decide.
struct ChannelBodyWriter: ResponseBodyWriter {
    let channel: any Channel
    var head: HTTPResponse?
    let streams: Bool

    init(channel: any Channel, head: HTTPResponse, streams: Bool) {
        self.channel = channel
        self.head = head
        self.streams = streams
    }

    private mutating func writeHead() {
        if let head {
            channel.write(HTTPResponsePart.head(head), promise: nil)
            self.head = nil
        }
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        writeHead()
        if streams {
            try await channel.writeAndFlush(HTTPResponsePart.body(buffer))
        } else {
            channel.write(HTTPResponsePart.body(buffer), promise: nil)
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        writeHead()
        channel.writeAndFlush(HTTPResponsePart.end(trailingHeaders), promise: nil)
    }
}

/// The `Date` header's value, formatted once per second.
final class HTTPDateCache: Sendable {
    private let cached = NIOLockedValueBox<(second: Int, text: String)>((-1, ""))

    func now() -> String {
        let now = Date()
        let second = Int(now.timeIntervalSince1970)
        return cached.withLockedValue { cached in
            if cached.second != second { cached = (second, Self.format(now)) }
            return cached.text
        }
    }

    /// RFC 9110's IMF-fixdate, in GMT: `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func format(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let two = { (n: Int32) in n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekdays[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(1900 + parts.tm_year) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }

    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
}
