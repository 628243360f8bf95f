import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import WardenCore
import WardenHTTP
import WardenVenues

/// Warden's own calls to a venue (prices, balances) over the gateway's client: small answers, read whole.
struct HTTPUpstreamCaller: UpstreamCaller {
    let clients: UpstreamClients
    static let maxAnswerBytes = 4 * 1024 * 1024

    func send(_ request: UpstreamRequest, origin: String) async throws -> (status: Int, body: Data) {
        let outgoing = UpstreamHTTPRequest(
            url: origin + request.path + (request.query.isEmpty ? "" : "?" + request.query),
            method: HTTPMethod(rawValue: request.method),
            headers: HTTPHeaders(request.headers.map { ($0.name.rawName, $0.value) }),
            body: request.body.isEmpty ? nil : ByteBuffer(data: request.body),
            timeout: .seconds(10), retryable: HTTPRequest.Method.isRead(request.method))
        let response = try await clients.execute(outgoing)
        let body: ByteBuffer
        switch response.body {
        case .whole(let whole):
            body = whole
        case .stream(let stream):
            do { body = try await stream.collect(upTo: Self.maxAnswerBytes) } catch is NIOTooManyBytesError { throw UpstreamError.tooLarge }
        }
        return (Int(response.status.code), Data(buffer: body))
    }
}
