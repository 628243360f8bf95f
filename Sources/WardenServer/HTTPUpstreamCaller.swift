import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WardenCore
import WardenVenues

/// Warden's own calls to a venue (prices, balances) over the gateway's HTTP client: small answers,
/// read whole, with a short deadline.
struct HTTPUpstreamCaller: UpstreamCaller {
    let client: HTTPClient
    static let maxAnswerBytes = 4 * 1024 * 1024

    func send(_ request: UpstreamRequest, origin: String) async throws -> (status: Int, body: Data) {
        var outgoing = HTTPClientRequest(url: origin + request.path + (request.query.isEmpty ? "" : "?" + request.query))
        outgoing.method = HTTPMethod(rawValue: request.method)
        outgoing.headers = HTTPHeaders(request.headers.map { ($0.name.rawName, $0.value) })
        if !request.body.isEmpty { outgoing.body = .bytes(ByteBuffer(data: request.body)) }
        let response = try await client.execute(outgoing, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: Self.maxAnswerBytes)
        return (Int(response.status.code), Data(buffer: body))
    }
}
