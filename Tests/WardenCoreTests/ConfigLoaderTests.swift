import Testing
@testable import WardenCore

@Suite struct ConfigLoaderTests {
    @Test func readsTheDocumentedFile() throws {
        let config = try ConfigLoader.parse(
            """
            [server]
            listen = "127.0.0.1:9000"
            max_body_bytes = 65536
            client_timeout_seconds = 15

            [venues.binance]
            base_url = "https://testnet.binance.vision/"

            [venues.alpaca]
            base_url = "https://paper-api.alpaca.markets"
            market_data_url = "https://data.alpaca.markets/"

            [services.github]
            base_url = "https://api.github.com"
            auth_header = "Authorization"
            auth_value_prefix = "Bearer "
            blocked_endpoints = ["DELETE /repos/*", "PUT /repos/*/admin/*", "DELETE /orgs/**"]
            rate_limit = 100
            rate_limit_window_seconds = 3600
            """)
        #expect(config.server.listen == ListenAddress(host: "127.0.0.1", port: 9000))
        #expect(config.server.maxBodyBytes == 65536)
        #expect(config.server.clientTimeoutSeconds == 15)
        #expect(config.server.publicHosts.isEmpty && config.server.trustedProxies.isEmpty && config.server.tlsCert == nil)
        #expect(config.venues["binance"]?.baseURL == "https://testnet.binance.vision")
        #expect(config.marketDataURL(venue: "alpaca", default: "") == "https://data.alpaca.markets")
        let github = try #require(config.services["github"])
        #expect(github.blockedEndpoints.count == 3)
        #expect(github.rateLimit == 100)
        #expect(github.rateLimitWindowSeconds == 3600)
    }

    @Test func readsTheServingAcrossHostsSettings() throws {
        let config = try ConfigLoader.parse(
            """
            [server]
            tls_cert = "/etc/warden/cert.pem"
            tls_key = "/etc/warden/key.pem"
            tls_client_ca = "/etc/warden/agents-ca.pem"
            public_hosts = ["Warden.Example", "10.0.0.5:8472", "[fd00::5]:443"]
            trusted_proxies = ["10.0.0.0/8", "::1"]
            """)
        #expect(config.server.tlsCert == "/etc/warden/cert.pem")
        #expect(config.server.tlsKey == "/etc/warden/key.pem")
        #expect(config.server.tlsClientCA == "/etc/warden/agents-ca.pem")
        #expect(config.server.publicHosts == ["warden.example", "10.0.0.5:8472", "[fd00::5]:443"])
        #expect(config.server.trustedProxies == ["10.0.0.0/8", "::1"])
    }

    @Test func readsSingleSignOn() throws {
        let config = try ConfigLoader.parse(
            "[oidc]\nissuer = \"https://id.example.com/realms/desk\"\nclient_id = \"warden\"\nname = \"Desk ID\"\n"
                + "algorithm = \"ES256\"\nauto_create = true\nredirect_url = \"https://warden.example.com/oidc/callback\"")
        let oidc = try #require(config.oidc)
        #expect(oidc.issuer == "https://id.example.com/realms/desk" && oidc.clientID == "warden" && oidc.name == "Desk ID")
        #expect(oidc.algorithm == "ES256" && oidc.autoCreate && oidc.redirectURL == "https://warden.example.com/oidc/callback")
        #expect(try ConfigLoader.parse("[oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"c\"").oidc?.algorithm == "RS256")
    }

    @Test func readsTheStreamSettings() throws {
        let config = try ConfigLoader.parse(
            """
            [venues.binance]
            stream_url = "https://stream.binance.com:9443/"
            ws_api_url = "https://ws-api.binance.com"

            [services.chat]
            base_url = "https://chat.example"
            websocket = true

            [gateway]
            stream_idle_seconds = 30
            stream_max_message_bytes = 2048
            stream_ping_seconds = 5
            """)
        #expect(config.venues["binance"]?.streamURL == "https://stream.binance.com:9443")
        #expect(config.venues["binance"]?.webSocketAPIURL == "https://ws-api.binance.com")
        #expect(config.services["chat"]?.websocket == true)
        #expect(config.gateway.streamIdleSeconds == 30 && config.gateway.streamMaxMessageBytes == 2048)
        #expect(config.gateway.streamPingSeconds == 5)
        let defaults = WardenConfig().gateway
        #expect(defaults.streamIdleSeconds == 300 && defaults.streamMaxMessageBytes == 4 * 1024 * 1024 && defaults.streamPingSeconds == 20)
    }

    @Test func emptyFileGivesDefaults() throws {
        #expect(try ConfigLoader.parse("") == WardenConfig())
    }

    @Test(arguments: [
        ("lisen = 1", ConfigError.unknownKey("lisen")),
        ("[server]\nlisten = \"127.0.0.1:1\"\nport = 5", .unknownKey("server.port")),
        ("[venues.binance]\nbase_url = \"https://x.test\"\napi_key = \"k\"", .unknownKey("venues.binance.api_key")),
        ("[venues.binance]\nmarket_data_url = \"https://x.test\"", .unknownKey("venues.binance.market_data_url")),
        ("[venues.openai]\nstream_url = \"https://x.test\"", .unknownKey("venues.openai.stream_url")),
        ("[services.gh]\nbase_url = \"https://x.test\"\nrate_limt = 5", .unknownKey("services.gh.rate_limt")),
    ])
    func unknownKeysAreNamed(text: String, expected: ConfigError) {
        #expect(throws: expected) { try ConfigLoader.parse(text) }
    }

    @Test(arguments: [
        ("[server]\nlisten = 8472", "server.listen"),
        ("[oidc]\nclient_id = \"c\"", "oidc.issuer"),
        ("[oidc]\nissuer = \"https://id.test\"", "oidc.client_id"),
        ("[oidc]\nissuer = \"http://id.test\"\nclient_id = \"c\"", "oidc.issuer"),
        ("[oidc]\nissuer = \"https://u:p@id.test\"\nclient_id = \"c\"", "oidc.issuer"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nalgorithm = \"HS256\"", "oidc.algorithm"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nalgorithm = \"none\"", "oidc.algorithm"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nauto_create = \"yes\"", "oidc.auto_create"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nscopes = \"email\"", "oidc.scopes"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nredirect_url = \"https://w.test/elsewhere\"", "oidc.redirect_url"),
        ("[oidc]\nissuer = \"https://id.test\"\nclient_id = \"c\"\nclient_secret = \"s\"", "oidc.client_secret"),
        ("[server]\nlisten = \"localhost\"", "listen"),
        ("[server]\nlisten = \"127.0.0.1:99999\"", "listen"),
        ("[server]\nmax_body_bytes = -1", "server.max_body_bytes"),
        ("[server]\nmax_body_bytes = \"big\"", "server.max_body_bytes"),
        ("[server]\nclient_timeout_seconds = 0", "server.client_timeout_seconds"),
        ("[server]\nclient_timeout_seconds = 1.5", "server.client_timeout_seconds"),
        ("[venues.bitmex]\nbase_url = \"https://x.test\"", "venues.bitmex"),
        ("[venues.binance]\nbase_url = \"ftp://x.test\"", "venues.binance.base_url"),
        ("[venues.alpaca]\nmarket_data_url = \"data.alpaca.markets\"", "venues.alpaca.market_data_url"),
        ("[venues.binance]\nstream_url = \"stream.binance.com\"", "venues.binance.stream_url"),
        ("[services.gh]\nbase_url = \"https://x.test\"\nwebsocket = \"yes\"", "services.gh.websocket"),
        ("[gateway]\nstream_idle_seconds = 0", "gateway.stream_idle_seconds"),
        ("[gateway]\nstream_max_message_bytes = 10", "gateway.stream_max_message_bytes"),
        ("[gateway]\nstream_ping_seconds = -1", "gateway.stream_ping_seconds"),
        ("[venues.binance]\nbase_url = \"https://x.test/?a=1\"", "venues.binance.base_url"),
        ("[venues.openai]\nallow_endpoints = [\"GET /x\"]", "venues.openai.allow_endpoints"),
        ("[venues.binance]\nallow_endpoints = [\"withdraw everything\"]", "venues.binance.allow_endpoints[0]"),
        ("[services.openai]\nbase_url = \"https://x.test\"", "services.openai"),
        ("[services.\"Bad Name\"]\nbase_url = \"https://x.test\"", "services.Bad Name"),
        ("[services.gh]\nauth_header = \"X\"", "services.gh.base_url"),
        ("[services.gh]\nbase_url = \"https://x.test\"\nauth_header = \"Bad Header\"", "services.gh.auth_header"),
        ("[services.gh]\nbase_url = \"https://x.test\"\nrate_limit = 0", "services.gh.rate_limit"),
        ("[services.gh]\nbase_url = \"https://x.test\"\nblocked_endpoints = \"DELETE /x\"", "services.gh.blocked_endpoints"),
        ("[services.gh]\nbase_url = \"https://x.test\"\nblocked_endpoints = [\"/repos\"]", "services.gh.blocked_endpoints[0]"),
        (
            "[services.gh]\nbase_url = \"https://x.test\"\nblocked_endpoints = [\"DELETE /x\", \"FETCH /y\"]",
            "services.gh.blocked_endpoints[1]"
        ),
        ("[services.gh]\nbase_url = \"https://x.test\"\nblocked_endpoints = [\"DELETE /re*\"]", "services.gh.blocked_endpoints[0]"),
        ("server = 3", "server"),
        ("[server]\ntls_cert = \"/c.pem\"", "server.tls_cert"),
        ("[server]\ntls_key = \"/k.pem\"", "server.tls_cert"),
        ("[server]\ntls_client_ca = \"/ca.pem\"", "server.tls_client_ca"),
        ("[server]\ntls_cert = \"\"\ntls_key = \"/k.pem\"", "server.tls_cert"),
        ("[server]\npublic_hosts = \"warden.example\"", "server.public_hosts"),
        ("[server]\npublic_hosts = [\"ok.example\", \"http://warden.example\"]", "server.public_hosts[1]"),
        ("[server]\npublic_hosts = [\"warden.example/x\"]", "server.public_hosts[0]"),
        ("[server]\npublic_hosts = [\"\"]", "server.public_hosts[0]"),
        ("[server]\ntrusted_proxies = [1]", "server.trusted_proxies[0]"),
        ("[server]\nsession_hours = 0", "server.session_hours"),
        ("[server]\nsession_max_days = 400", "server.session_max_days"),
    ])
    func badValuesNameTheirKey(text: String, key: String) {
        do {
            _ = try ConfigLoader.parse(text)
            Issue.record("accepted: \(text)")
        } catch {
            guard case .invalidValue(let named, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(named == key)
            #expect(error.description.contains(key))
        }
    }

    @Test func syntaxErrorsSayWhere() {
        do {
            _ = try ConfigLoader.parse("[server]\nlisten = \n")
            Issue.record("accepted broken TOML")
        } catch {
            guard case .syntax(let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(message.contains("line 2"))
        }
    }

    @Test func listenAddressForms() throws {
        #expect(try ListenAddress(parsing: "0.0.0.0:80") == ListenAddress(host: "0.0.0.0", port: 80))
        #expect(try ListenAddress(parsing: "[::1]:8472") == ListenAddress(host: "::1", port: 8472))
        #expect(try ListenAddress(parsing: ":8080") == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(ListenAddress(host: "::1", port: 1).description == "[::1]:1")
        for bad in ["", "host", "1.2.3.4:", "::1:80", "[::1]", "h:-1", "h:port"] {
            #expect(throws: ConfigError.self) { try ListenAddress(parsing: bad) }
        }
    }
}
