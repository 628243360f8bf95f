import AsyncHTTPClient
import NIOCore
import NIOPosix

/// One upstream client per event loop: a gateway call goes out on a connection owned by the event loop
/// that serves the agent's connection, so neither side of a call waits for another thread to pick it up.
/// `shared` makes Warden's own calls (prices, balances, go-live).
public final class UpstreamClients: Sendable {
    public let shared: HTTPClient
    private let byLoop: [ObjectIdentifier: HTTPClient]

    init(configuration: HTTPClient.Configuration) {
        shared = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        var clients: [ObjectIdentifier: HTTPClient] = [:]
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            clients[ObjectIdentifier(loop)] = HTTPClient(eventLoopGroup: loop, configuration: configuration)
        }
        byLoop = clients
    }

    func client(for loop: any EventLoop) -> HTTPClient { byLoop[ObjectIdentifier(loop)] ?? shared }

    public func shutdown() async throws {
        for client in [shared] + byLoop.values { try await client.shutdown() }
    }
}
