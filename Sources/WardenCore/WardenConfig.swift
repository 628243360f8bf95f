/// The optional TOML configuration file (`--config` / `WARDEN_CONFIG`).
public struct WardenConfig: Sendable, Equatable {
    public var server = ServerSection()
    /// Upstream overrides for built-in venues, by venue name.
    public var venues: [String: VenueSection] = [:]
    /// Generic REST services, by name.
    public var services: [String: ServiceSection] = [:]
    public var gateway = GatewaySection()
    /// USD per million tokens, by venue then model.
    public var prices: [String: [String: ModelPrice]] = [:]

    public init() {}

    public struct ServerSection: Sendable, Equatable {
        public var listen: ListenAddress?
        public var dataDir: String?
        public var database: String?
        /// Largest request body the management API accepts, in bytes.
        public var maxBodyBytes: Int?
        /// How long a client connection may stay silent while the server waits on it (between requests,
        /// or part-way through sending one) before it is closed.
        public var clientTimeoutSeconds = 60
        public init() {}
    }

    public struct VenueSection: Sendable, Equatable {
        public var baseURL: String?
        /// Exchange endpoints off Warden's allowlist that the operator opens (`"DELETE /api/v3/openOrders"`).
        /// Fund movement stays refused whatever is listed here.
        public var allowEndpoints: [String] = []
        /// Polymarket order signing: the chain and the exchange contracts orders are signed for.
        public var chainID: UInt64?
        public var exchangeAddress: String?
        public var negRiskExchangeAddress: String?
        public init() {}
    }

    public struct ServiceSection: Sendable, Equatable {
        public var baseURL: String
        public var authHeader: String = "Authorization"
        public var authValuePrefix: String = "Bearer "
        public var blockedEndpoints: [String] = []
        public var rateLimit: Int?
        public var rateLimitWindowSeconds: Int = 60
    }

    public struct GatewaySection: Sendable, Equatable {
        /// Largest request body the gateway accepts (LLM requests are read whole to price them).
        public var maxRequestBytes = 32 * 1024 * 1024
        /// How long an upstream may take to send its response head, and then to send each next chunk.
        public var upstreamTimeoutSeconds = 300
        /// Output ceiling reserved against a budget when a request names no `max_tokens`.
        public var defaultMaxOutputTokens = 4096
        public init() {}
    }

    public struct ModelPrice: Sendable, Equatable {
        public var inputPerMillion: Double
        public var outputPerMillion: Double

        public init(inputPerMillion: Double, outputPerMillion: Double) {
            self.inputPerMillion = inputPerMillion
            self.outputPerMillion = outputPerMillion
        }

        public func cost(input: Int, output: Int) -> Double {
            (Double(input) * inputPerMillion + Double(output) * outputPerMillion) / 1_000_000
        }
    }

    /// The upstream base URL of a venue: the config's override or the venue's default.
    public func baseURL(venue: String, default defaultURL: String) -> String {
        venues[venue]?.baseURL ?? services[venue]?.baseURL ?? defaultURL
    }

    /// Venues with built-in adapters; only their upstream can be changed.
    public static let builtInVenues: Set<String> = ["openai", "anthropic", "binance", "kalshi", "polymarket"]
    public static let exchanges: Set<String> = ["binance", "kalshi", "polymarket"]
}
