import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import WardenCore
import WardenCrypto
import WardenStore
@testable import WardenServer

@Suite struct HealthTests {
    static func environment(
        maxBodyBytes: Int = 1024, config: WardenConfig = WardenConfig(), environment: [String: String] = [:]
    ) async throws -> ServerEnvironment {
        let logger = Logger(label: "test")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("warden-srv-\(UUID()).db").path
        let db = try Database.open(.sqlite(path: path), logger: logger)
        try await Migrator.migrate(db, logger: logger)
        let vault = try await Vault.unseal(database: db, source: .masterKey(.generate()), logger: logger)
        let settings = ServeSettings(
            listen: .default, dataDir: "/tmp", database: db.location,
            maxBodyBytes: maxBodyBytes, config: config)
        let services = try await WardenServices.make(
            database: db, vault: vault, config: config, environment: environment,
            passwordParameters: Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1))
        return try ServerEnvironment(settings: settings, services: services, logger: logger)
    }

    struct Health: Decodable { let status: String; let vault: String; let store: String }

    @Test func healthyWhenUnsealedAndStoreAnswers() async throws {
        let env = try await Self.environment()
        let app = Application(router: buildRouter(env))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                let health = try JSONDecoder().decode(Health.self, from: Data(buffer: response.body))
                #expect(health.status == "ok" && health.vault == "unsealed" && health.store == "ok")
            }
        }
        try await env.upstreams.shutdown()
        try await env.database.close()
    }

    @Test func headIsAnsweredAsTheGetWouldBeWithoutItsBody() async throws {
        let env = try await Self.environment()
        let app = Application(router: buildRouter(env))
        try await app.test(.router) { client in
            let length = try await client.execute(uri: "/healthz", method: .get) { $0.body.readableBytes }
            try await client.execute(uri: "/healthz", method: .head) { response in
                #expect(response.status == .ok)
                #expect(response.body.readableBytes == 0)
                #expect(response.headers[.contentLength] == "\(length)")
            }
        }
        try await env.upstreams.shutdown()
        try await env.database.close()
    }

    @Test func unavailableWhenTheStoreIsGone() async throws {
        let env = try await Self.environment()
        try await env.upstreams.shutdown()
        try await env.database.close()
        let app = Application(router: buildRouter(env))
        try await app.test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let health = try JSONDecoder().decode(Health.self, from: Data(buffer: response.body))
                #expect(health.store == "not_writable")
            }
        }
    }

    @Test func oversizedBodiesGetAProblem() async throws {
        let env = try await Self.environment(maxBodyBytes: 1024)
        let app = Application(router: buildRouter(env))
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v1/auth/login", method: .post, body: ByteBuffer(repeating: 0x41, count: 4096)) { response in
                #expect(response.status == .contentTooLarge)
                #expect(response.headers[.contentType] == "application/problem+json")
                let body = String(buffer: response.body)
                #expect(body.contains("\"code\":\"payload_too_large\""))
                #expect(body.contains("1024 bytes"))
            }
        }
        try await env.upstreams.shutdown()
        try await env.database.close()
    }
}
