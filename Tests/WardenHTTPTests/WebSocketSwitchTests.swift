import HTTPTypes
import Testing
import WardenHTTP

@Suite struct WebSocketSwitchTests {
    func request(_ fields: HTTPFields, method: HTTPRequest.Method = .get) -> HTTPRequest {
        HTTPRequest(method: method, scheme: "http", authority: "127.0.0.1", path: "/proxy/x/socket", headerFields: fields)
    }

    @Test func aHandshakeIsAGetNamingWebSocketInUpgradeAndUpgradeInConnection() {
        #expect(WebSocketSwitch.isUpgrade(request([.upgrade: "websocket", .connection: "Upgrade"])))
        #expect(WebSocketSwitch.isUpgrade(request([.upgrade: "WebSocket", .connection: "keep-alive, upgrade"])))
        #expect(!WebSocketSwitch.isUpgrade(request([.upgrade: "websocket", .connection: "Upgrade"], method: .post)))
        #expect(!WebSocketSwitch.isUpgrade(request([.upgrade: "websocket"])))
        #expect(!WebSocketSwitch.isUpgrade(request([.upgrade: "h2c", .connection: "upgrade"])))
    }

    /// RFC 6455 §1.3's example: this key gives this accept value.
    @Test func theAcceptValueIsRFC6455s() throws {
        let fields = try WebSocketSwitch.answer(
            to: request([.secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==", .secWebSocketVersion: "13"])
        ).get()
        #expect(fields[.secWebSocketAccept] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(fields[.upgrade] == "websocket")
    }

    @Test(arguments: [
        ([HTTPField.Name.secWebSocketVersion: "13"], "Sec-WebSocket-Key"),
        ([.secWebSocketKey: "c2hvcnQ=", .secWebSocketVersion: "13"], "Sec-WebSocket-Key"),
        ([.secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ==", .secWebSocketVersion: "8"], "Sec-WebSocket-Version"),
        ([.secWebSocketKey: "dGhlIHNhbXBsZSBub25jZQ=="], "Sec-WebSocket-Version"),
    ])
    func aMalformedHandshakeIsRefusedByName(fields: [HTTPField.Name: String], named: String) {
        var headers = HTTPFields()
        for (name, value) in fields { headers[name] = value }
        guard case .failure(let error) = WebSocketSwitch.answer(to: request(headers)) else {
            Issue.record("a malformed handshake was taken")
            return
        }
        #expect(error.reason.contains(named))
    }
}
