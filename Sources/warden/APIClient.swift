import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The CLI's client of a running Warden's management API.
struct APIClient {
    let baseURL: String

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Sends a JSON request; returns the decoded JSON object (empty for 204) or throws the server's problem detail.
    func call(
        _ method: HTTPMethod, _ path: String, bearer: String? = nil, agentKey: String? = nil,
        json: [String: Any]? = nil
    ) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let agentKey { request.headers.add(name: "X-Warden-Key", value: agentKey) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw Failure(description: "cannot reach Warden at \(baseURL) (\(error)); is `warden serve` running? (set --url or WARDEN_URL)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:]
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Failure(description: (object["detail"] as? String) ?? "Warden answered \(response.status.code)")
        }
        return object
    }
}
