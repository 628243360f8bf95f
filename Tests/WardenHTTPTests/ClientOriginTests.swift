import HTTPTypes
import NIOCore
import Testing
@testable import WardenHTTP

/// Who the client is behind a proxy: only a trusted peer's forwarded fields are believed, and the walk
/// through them stops at the first hop that is not itself a trusted proxy.
@Suite struct ClientOriginTests {
    static func peer(_ ip: String) -> SocketAddress { try! SocketAddress(ipAddress: ip, port: 40_000) }

    static func fields(_ pairs: [(String, String)]) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in pairs { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false), ("192.168.1.7", "192.168.1.7", true),
        ("192.168.1.7", "192.168.1.8", false), ("172.16.0.0/12", "172.31.255.255", true), ("172.16.0.0/12", "172.32.0.0", false),
        ("::1/128", "::1", true), ("fd00::/8", "fd12:3456::1", true), ("fd00::/8", "fe80::1", false),
        ("127.0.0.0/8", "::ffff:127.0.0.9", true), ("0.0.0.0/0", "203.0.113.9", true), ("10.0.0.0/8", "::a00:1", false),
    ])
    func networksContainTheirAddresses(network: String, address: String, inside: Bool) throws {
        let net = try #require(IPNetwork(network))
        let ip = try #require(IPAddress(address[...]))
        #expect(net.contains(ip) == inside)
    }

    @Test(arguments: ["", "10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/", "10.0.0.0/+8", "host.example", "10.0.0.0/8/1", " 10.0.0.1"])
    func malformedNetworksAreRefused(text: String) {
        #expect(IPNetwork(text) == nil)
        #expect(throws: TrustedProxies.InvalidNetwork.self) { try TrustedProxies(parsing: ["10.0.0.0/8", text]) }
    }

    @Test func anUntrustedPeersForwardedFieldsAreIgnored() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8"])
        let forged = Self.fields([("X-Forwarded-For", "198.51.100.4"), ("X-Forwarded-Proto", "https"), ("Forwarded", "for=1.2.3.4")])
        #expect(proxies.forwarded(peer: Self.peer("203.0.113.5"), headers: forged) == nil)
        #expect(TrustedProxies([]).forwarded(peer: Self.peer("10.0.0.1"), headers: forged) == nil)
    }

    @Test func theClientIsTheNearestHopNotATrustedProxy() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8", "fd00::/8"])
        // The client wrote a forged first hop; the edge proxy (10.0.0.2) appended the real one.
        let chain = Self.fields([("X-Forwarded-For", "6.6.6.6, 198.51.100.4"), ("X-Forwarded-For", "10.0.0.2")])
        let forwarded = try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: chain))
        #expect(forwarded.client == "198.51.100.4")
        #expect(forwarded.https == nil)
        // Every hop trusted: the farthest is the client.
        let inside = try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: Self.fields([("X-Forwarded-For", "10.1.1.1")])))
        #expect(inside.client == "10.1.1.1")
        // Nothing named: the peer itself is the client.
        let bare = try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: [:]))
        #expect(bare.client == nil)
    }

    @Test func aHopThatIsNoAddressEndsTheWalk() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8"])
        let junk = Self.fields([("X-Forwarded-For", "198.51.100.4, <script>, 10.0.0.2")])
        #expect(try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: junk)).client == "10.0.0.2")
        let allJunk = Self.fields([("X-Forwarded-For", "unknown")])
        #expect(try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: allJunk)).client == nil)
    }

    /// A proxy that writes one field passes the other on as the client wrote it: only the chosen one is read.
    @Test func onlyTheChosenFieldIsRead() throws {
        let forged = Self.fields([("Forwarded", "for=6.6.6.6;proto=https"), ("X-Forwarded-For", "198.51.100.4")])
        let xff = try #require(try TrustedProxies(parsing: ["10.0.0.0/8"]).forwarded(peer: Self.peer("10.0.0.3"), headers: forged))
        #expect(xff.client == "198.51.100.4" && xff.https == nil)
        let onlyForwarded = Self.fields([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https")])
        let rfc = try TrustedProxies(parsing: ["10.0.0.0/8"], header: .forwarded)
        let named = try #require(rfc.forwarded(peer: Self.peer("10.0.0.3"), headers: onlyForwarded))
        #expect(named.client == nil && named.https == nil)
    }

    @Test func forwardedIsParsedAsRFC7239() throws {
        let proxies = try TrustedProxies(parsing: ["10.0.0.0/8"], header: .forwarded)
        let headers = Self.fields([
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", "for=192.0.2.60;proto=http, For=\"[2001:DB8:cafe::17]:4711\";Proto=HTTPS;by=10.0.0.2"),
        ])
        let forwarded = try #require(proxies.forwarded(peer: Self.peer("10.0.0.3"), headers: headers))
        #expect(forwarded.client == "2001:db8:cafe::17")
        #expect(forwarded.https == true)
        let v4Port = Self.fields([("X-Forwarded-For", "198.51.100.4:5123"), ("X-Forwarded-Proto", "http, https")])
        let second = try #require(try TrustedProxies(parsing: ["10.0.0.0/8"]).forwarded(peer: Self.peer("10.0.0.3"), headers: v4Port))
        #expect(second.client == "198.51.100.4")
        #expect(second.https == true)
        let plain = Self.fields([("X-Forwarded-Proto", "http")])
        #expect(
            try #require(try TrustedProxies(parsing: ["10.0.0.0/8"]).forwarded(peer: Self.peer("10.0.0.3"), headers: plain)).https == false)
    }

    /// Whatever a client writes in the forwarded fields, the address taken is a canonical IP address or
    /// none, and from an untrusted peer nothing is taken at all.
    @Test func generatedHeadersNeverYieldAnythingButAnAddress() throws {
        var rng = SystemRandomNumberGenerator()
        let pieces = [
            "1.2.3.4", "10.0.0.9", "::1", "[::1]:80", "unknown", "_hidden", "\"", ";", "=", "for=", ",", " ", "999.1.1.1", "1.2.3.4:x", "a",
        ]
        for _ in 0..<2000 {
            let value = (0..<Int.random(in: 1...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            for (name, header) in [("X-Forwarded-For", TrustedProxies.Header.xForwardedFor), ("Forwarded", .forwarded)] {
                let proxies = try TrustedProxies(parsing: ["10.0.0.0/8"], header: header)
                let headers = Self.fields([(name, value)])
                #expect(proxies.forwarded(peer: Self.peer("198.51.100.1"), headers: headers) == nil)
                if let client = proxies.forwarded(peer: Self.peer("10.0.0.1"), headers: headers)?.client {
                    let parsed = try #require(IPAddress(client[...]), "\(client) from \(value)")
                    #expect(parsed.description == client)
                }
            }
        }
    }

    @Test func theOriginsAddressPrefersTheForwardedClient() {
        #expect(ClientOrigin(peer: Self.peer("10.0.0.3"), forwardedFor: "198.51.100.4").address == "198.51.100.4")
        #expect(ClientOrigin(peer: Self.peer("10.0.0.3")).address == "10.0.0.3")
        #expect(ClientOrigin(peer: nil).address == "unknown")
    }

    @Test func tlsFilesThatCannotBeUsedNameTheirSetting() throws {
        #expect {
            try FrontTLS(files: .init(certificate: "/nonexistent/cert.pem", key: "/nonexistent/key.pem"))
        } throws: { ($0 as? TLSSetupError)?.setting == "tls_cert" }
    }
}
