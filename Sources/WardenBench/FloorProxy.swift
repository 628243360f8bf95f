import AsyncHTTPClient
import Hummingbird
import NIOCore
import NIOPosix

/// What the HTTP stack alone costs: Hummingbird and AsyncHTTPClient forwarding each request to the
/// upstream with nothing else (no key, policy, signing or audit). bench/run measures it beside nginx
/// and Warden, so the gap between them can be split into the stack's share and Warden's own.
/// `warden-bench floor-proxy PORT UPSTREAM_ORIGIN`
enum FloorProxy {
    static func run(port: Int, upstream: String) async throws {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let router = Router()
        router.post("/**") { request, _ -> Response in
            var outgoing = HTTPClientRequest(url: upstream + request.uri.path)
            outgoing.method = .POST
            outgoing.headers.add(name: "Content-Type", value: request.headers[.contentType] ?? "application/json")
            outgoing.body = .bytes(try await request.body.collect(upTo: 1 << 20))  // read whole, as Warden does
            let answer = try await client.execute(outgoing, timeout: .seconds(30))
            return Response(status: .init(code: Int(answer.status.code)), headers: [.contentType: "application/json"],
                            body: ResponseBody { writer in
                                for try await chunk in answer.body { try await writer.write(chunk) }
                                try await writer.finish(nil)
                            })
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
        try await app.runService()
        try await client.shutdown()
    }
}
