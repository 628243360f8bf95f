/// The optional TOML configuration file (`--config` / `WARDEN_CONFIG`).
public struct WardenConfig: Sendable, Equatable {
    public var server = ServerSection()
    /// Upstream overrides for built-in venues, by venue name.
    public var venues: [String: VenueSection] = [:]
    /// Generic REST services, by name.
    public var services: [String: ServiceSection] = [:]

    public init() {}

    public struct ServerSection: Sendable, Equatable {
        public var listen: ListenAddress?
        public var dataDir: String?
        public var database: String?
        /// Largest request body the management API accepts, in bytes.
        public var maxBodyBytes: Int?
        public init() {}
    }

    public struct VenueSection: Sendable, Equatable {
        public var baseURL: String
    }

    public struct ServiceSection: Sendable, Equatable {
        public var baseURL: String
        public var authHeader: String = "Authorization"
        public var authValuePrefix: String = "Bearer "
        public var blockedEndpoints: [String] = []
        public var rateLimit: Int?
        public var rateLimitWindowSeconds: Int = 60
    }

    /// Venues with built-in adapters; only their upstream can be changed.
    public static let builtInVenues: Set<String> = ["openai", "anthropic", "binance", "kalshi", "polymarket"]
}
