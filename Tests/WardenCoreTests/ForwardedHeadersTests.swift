import HTTPTypes
import Testing
import WardenVenues

@testable import WardenCore

/// What of an agent's headers goes upstream.
struct ForwardedHeadersTests {
    @Test func fieldsNamedInConnectionAreNotForwarded() {
        let incoming: HTTPFields = [
            .connection: "close, X-Secret-Hop", HTTPField.Name("X-Secret-Hop")!: "1", HTTPField.Name("X-Keep")!: "2",
            .contentLength: "3", .connection: "Keep-Alive ,\tcontent-length,x-other-hop", HTTPField.Name("X-Other-Hop")!: "4",
            .accept: "*/*",
        ]
        let forwarded = ForwardedHeaders.forwardable(incoming, venue: OpenAIVenue())
        #expect(forwarded.map(\.name.canonicalName) == ["x-keep", "accept", "content-length"], "\(forwarded)")
        // Nothing named: the very fields come back.
        let plain: HTTPFields = [.connection: "keep-alive", .accept: "*/*"]
        #expect(HopByHop.removingConnectionOptions(from: plain, namedIn: plain) == plain)
    }
}
