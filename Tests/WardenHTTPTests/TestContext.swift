import HTTPTypes
import Hummingbird
import Synchronization
import WardenHTTP

/// The request context of the front's tests: each request numbered, as a server names its requests.
struct TestContext: FrontRequestContext {
    var coreContext: CoreRequestContextStorage
    let requestID: String
    var origin: ClientOrigin
    var webSocket = WebSocketSwitch()
    static let header = HTTPField.Name("X-Warden-Request-Id")!
    private static let counter = Atomic<Int>(0)

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        origin = ClientOrigin(peer: source.channel.remoteAddress)
        requestID = "test-\(Self.counter.add(1, ordering: .relaxed).newValue)"
    }
}
