import NIOCore
import Testing
import WardenCore
import WardenHTTP

/// The `[gateway]` settings of the upstream client: parsed, bounded, and defaulting to the client's own.
struct UpstreamSettingsTests {
    @Test func theSettingsParseAndAreBounded() throws {
        let config = try ConfigLoader.parse("[gateway]\nupstream_idle_seconds = 2\nupstream_max_connections_per_origin = 8")
        #expect(config.gateway.upstreamIdleSeconds == 2 && config.gateway.upstreamMaxConnectionsPerOrigin == 8)
        let defaults = WardenConfig.GatewaySection(), client = UpstreamClientSettings()
        #expect(defaults.upstreamIdleSeconds == 4 && defaults.upstreamMaxConnectionsPerOrigin == 64)
        #expect(
            client.idleTimeout == .seconds(Int64(defaults.upstreamIdleSeconds))
                && client.maxConnectionsPerOrigin == defaults.upstreamMaxConnectionsPerOrigin)
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[gateway]\nupstream_idle_seconds = 0") }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[gateway]\nupstream_max_connections_per_origin = 0") }
    }
}
