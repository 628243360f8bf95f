import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The CLI's client of a running Warden's management API.
struct APIClient {
    let baseURL: String

    /// The system's trust roots, or only the CAs in `WARDEN_CA_FILE` (a Warden served with a private CA). A
    /// connection that cannot be made (refused, a certificate not trusted) fails the command at once.
    static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        if let file = ProcessInfo.processInfo.environment["WARDEN_CA_FILE"], !file.isEmpty {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(file)
            configuration.tlsConfiguration = tls
        }
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A device login's poll: its 400 answers (`authorization_pending`, …) are answers, not failures.
    func poll(_ path: String, json: [String: Any]) async throws -> [String: Any] {
        let (status, object) = try await send(.POST, path, bearer: nil, agentKey: nil, json: json)
        guard (200..<300).contains(status) || object["error"] is String else {
            throw Failure(description: (object["detail"] as? String) ?? "Warden answered \(status)")
        }
        return object
    }

    /// Sends a JSON request; returns the decoded JSON object (empty for 204) or throws the server's problem detail.
    func call(
        _ method: HTTPMethod, _ path: String, bearer: String? = nil, agentKey: String? = nil,
        json: [String: Any]? = nil
    ) async throws -> [String: Any] {
        let (status, object) = try await send(method, path, bearer: bearer, agentKey: agentKey, json: json)
        guard (200..<300).contains(status) else {
            throw Failure(description: (object["detail"] as? String) ?? "Warden answered \(status)")
        }
        return object
    }

    private func send(
        _ method: HTTPMethod, _ path: String, bearer: String?, agentKey: String?, json: [String: Any]?
    ) async throws -> (Int, [String: Any]) {
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
            response = try await Self.http.execute(request, timeout: .seconds(30))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw Failure(description: "cannot reach Warden at \(baseURL) (\(error)); is `warden serve` running? (set --url or WARDEN_URL)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:]
        return (Int(response.status.code), object)
    }
}
