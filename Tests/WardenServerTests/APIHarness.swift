import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import WardenCore
import WardenCrypto
import WardenStore
@testable import WardenServer

/// An in-process Warden with users created as the CLI would, and a client that records every response
/// body so tests can assert what was (not) revealed.
final class APIHarness: @unchecked Sendable {
    let env: ServerEnvironment
    var bodies: [String] = []
    /// Values a test carries out of its client closure.
    var stash: [String: String] = [:]

    static let jwtSecret = "test-jwt-secret-0123456789abcdef0123456789"

    init(config: String = "[services.github]\nbase_url = \"https://api.github.com\"") async throws {
        env = try await HealthTests.environment(
            maxBodyBytes: 64 * 1024, config: try ConfigLoader.parse(config),
            environment: ["WARDEN_JWT_SECRET": Self.jwtSecret])
    }

    var services: WardenServices { env.services }

    @discardableResult
    func createUser(_ email: String, password: String = "initial-password-1", mustReset: Bool = false, admin: Bool = false) async throws
        -> UserRecord
    {
        try await services.accounts.createUser(email: email, password: password, mustReset: mustReset, admin: admin).user
    }

    func run(_ body: @escaping @Sendable (APIClient) async throws -> Void) async throws {
        let app = Application(router: buildRouter(env))
        try await app.test(.router) { client in try await body(APIClient(client: client, harness: self)) }
    }

    func close() async throws {
        try await env.upstreams.shutdown()
        try await env.database.close()
    }
}

struct Reply {
    let status: HTTPResponse.Status
    let headers: HTTPFields
    let text: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    var code: String? { json["code"] as? String }
    var field: String? { json["field"] as? String }
}

struct APIClient: @unchecked Sendable {
    let client: any TestClientProtocol
    let harness: APIHarness

    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil, raw: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        if body != nil { headers[.contentType] = "application/json" }
        return try await client.execute(uri: path, method: method, headers: headers, body: body) { response in
            let reply = Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
            harness.bodies.append(reply.text)
            return reply
        }
    }

    func login(_ email: String, _ password: String = "initial-password-1") async throws -> String {
        let reply = try await call(.post, "/api/v1/auth/login", json: ["email": email, "password": password])
        #expect(reply.status == .ok, "login \(email): \(reply.text)")
        return try #require(reply.json["access_token"] as? String)
    }
}
