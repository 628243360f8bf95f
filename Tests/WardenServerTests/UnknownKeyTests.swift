import Foundation
import HTTPTypes
import SQLKit
import Testing
import WardenCore
import WardenStore
@testable import WardenServer

/// An agent retrying with a wrong key costs one store query, not one per call; what was learnt is
/// forgotten as soon as the store changes.
@Suite struct UnknownKeyTests {
    @Test func aWrongKeyIsRefusedFromMemoryOnceTheStoreHasSaidSo() async throws {
        let env = try await HealthTests.environment()
        let gateway = env.gateway
        await gateway.keys.sync()
        let openai = try #require(gateway.registry.venue(named: "openai"))
        func refusal(_ key: String) async -> GatewayRefusal? {
            do {
                _ = try await gateway.admit(
                    venue: openai, method: "POST", rawPath: "/v1/chat/completions", query: nil,
                    headers: [.authorization: "Bearer \(key)"], requestID: "test")
                return nil
            } catch {
                return error
            }
        }
        #expect(await refusal("wdn_wrong")?.status == .unauthorized)
        #expect(gateway.keys.unknownCount == 1)

        try await env.database.withConnection { db in try await db.raw("UPDATE store_revision SET value = value + 1 WHERE id = 1").run() }
        await gateway.keys.sync()
        #expect(gateway.keys.unknownCount == 0)
        #expect(await refusal("wdn_wrong")?.status == .unauthorized)
        #expect(gateway.keys.unknownCount == 1)

        // With the store gone, the remembered key is still refused as unknown; a key never seen needs the store.
        try await env.upstreams.shutdown()
        try await env.database.close()
        let remembered = await refusal("wdn_wrong")
        #expect(remembered?.status == .unauthorized && remembered?.reason == "unknown, revoked or expired Warden agent key")
        #expect(await refusal("wdn_never_seen")?.status == .serviceUnavailable)
    }
}
