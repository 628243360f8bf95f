import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import WardenHTTP
import WardenServer

/// What the HTTP stack alone costs: Warden's HTTP front (with Hummingbird's router and server) and its
/// upstream client forwarding each request with nothing else (no key, policy, signing or audit).
/// bench/run measures it beside nginx and Warden, so the gap between them can be split into the
/// stack's share and Warden's own.
/// `warden-bench floor-proxy PORT UPSTREAM_ORIGIN`
enum FloorProxy {
    static func run(port: Int, upstream: String) async throws {
        let clients = UpstreamClients()
        let router = Router(context: WardenContext.self)
        router.post("/**") { request, context -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)  // read whole, as Warden does
            let outgoing = UpstreamHTTPRequest(
                url: upstream + request.uri.path, method: .POST,
                headers: ["content-type": request.headers[.contentType] ?? "application/json"],
                body: body, timeout: .seconds(30))
            let answer = try await clients.execute(outgoing, on: context.eventLoop)
            let status = HTTPResponse.Status(code: Int(answer.status.code))
            switch answer.body {
            case .whole(let body):
                return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
            case .stream(let stream):
                return Response(
                    status: status, headers: [.contentType: "application/json"],
                    body: ResponseBody { writer in
                        for try await chunk in stream { try await writer.write(chunk) }
                        try await writer.finish(nil)
                    })
            }
        }
        let responder = router.buildResponder()
        let app = Application(
            responder: responder,
            server: .front(
                FrontResponder(
                    responder, serverName: "floor", requestIDHeader: HTTPField.Name("X-Warden-Request-Id")!, logger: Logger(label: "floor")),
                bodyCap: 1 << 20),
            configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
        try await clients.shutdown()
    }
}
