import Foundation
import WardenStore
import WardenVenues

/// The optional TOML configuration file (`--config` / `WARDEN_CONFIG`).
public struct WardenConfig: Sendable, Equatable {
    public var server = ServerSection()
    /// Upstream overrides for built-in venues, by venue name.
    public var venues: [String: VenueSection] = [:]
    /// Generic REST services, by name.
    public var services: [String: ServiceSection] = [:]
    public var gateway = GatewaySection()
    public var audit = AuditSection()
    /// Alarm channels, by name (`[notify.NAME]`).
    public var notify: [String: NotifyChannel] = [:]
    /// Single sign-on with an OpenID Connect provider (`[oidc]`); nil when not configured.
    public var oidc: OIDCSection?
    /// USD per million tokens, by venue then model.
    public var prices: [String: [String: ModelPrice]] = [:]
    /// USD per call for LLM endpoints not billed by tokens (`[call_prices.openai] "POST /v1/images/generations" = 0.25`),
    /// by venue then `METHOD /path` pattern: the operator's bound on such a call, reserved and charged whole.
    public var callPrices: [String: [(pattern: EndpointPattern, price: Decimal)]] = [:]

    public init() {}

    public static func == (a: WardenConfig, b: WardenConfig) -> Bool {
        a.server == b.server && a.venues == b.venues && a.services == b.services && a.gateway == b.gateway && a.audit == b.audit
            && a.notify == b.notify && a.oidc == b.oidc
            && a.prices == b.prices
            && a.callPrices.mapValues { $0.map { "\($0.pattern.description)=\($0.price)" } }
                == b.callPrices.mapValues { $0.map { "\($0.pattern.description)=\($0.price)" } }
    }

    public struct ServerSection: Sendable, Equatable {
        public var listen: ListenAddress?
        public var dataDir: String?
        public var database: String?
        /// Largest request body the management API accepts, in bytes.
        public var maxBodyBytes: Int?
        /// How long a client connection may stay silent while the server waits on it (between requests,
        /// or part-way through sending one) before it is closed.
        public var clientTimeoutSeconds = 60
        /// How long a stop waits for answers in progress (a stream that does not end) before it ends them.
        public var shutdownGraceSeconds = 10
        /// TLS on the listen address: the certificate chain and key (PEM files, read again on SIGHUP).
        public var tlsCert: String?
        public var tlsKey: String?
        /// CAs whose client certificates the gateway requires (PEM); the dashboard and API ask for none.
        public var tlsClientCA: String?
        /// Names the gateway answers to besides its listen address, lowercase: `name` (that name with or
        /// without the listen port) or `name:port` (exactly that `Host`).
        public var publicHosts: [String] = []
        /// Peers (CIDRs or addresses) whose `forwardedHeader` names the client.
        public var trustedProxies: [String] = []
        /// The field those proxies write: `x-forwarded-for` (with `X-Forwarded-Proto`) or `forwarded` (RFC 7239).
        public var forwardedHeader = "x-forwarded-for"
        /// A login ends after this many hours unused (each use extends it), and at the latest
        /// `sessionMaxDays` after it began.
        public var sessionHours = 12
        public var sessionMaxDays = 30
        public init() {}
    }

    public struct VenueSection: Sendable, Equatable {
        public var baseURL: String?
        /// Where the venue serves market data, for a venue that serves it from a host of its own (Alpaca).
        public var marketDataURL: String?
        /// Where the venue serves its WebSocket streams, for a venue that serves them from a host of its own (Binance).
        public var streamURL: String?
        /// Where Binance serves its WebSocket API (`/ws-api/v3`), a host of its own too.
        public var webSocketAPIURL: String?
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
        /// WebSockets to the service are relayed, its auth header on the handshake.
        public var websocket = false
    }

    public struct GatewaySection: Sendable, Equatable {
        /// Largest request body the gateway accepts (LLM requests are read whole to price them).
        public var maxRequestBytes = 32 * 1024 * 1024
        /// How long an upstream may take to send its response head, and then to send each next chunk.
        public var upstreamTimeoutSeconds = 300
        /// Output ceiling reserved against a budget when a request names no `max_tokens`.
        public var defaultMaxOutputTokens = 4096
        /// No call leaves later than this after it arrived (it waited on a slow store): it is refused instead.
        public var sendDeadlineSeconds = 5
        /// A pooled upstream connection idle longer than this is closed rather than reused (below common
        /// upstreams' keep-alive, so a call does not race the upstream's own idle close).
        public var upstreamIdleSeconds = 4
        /// Connections to one upstream origin at most; calls beyond wait for one to be free.
        public var upstreamMaxConnectionsPerOrigin = 64
        /// A decrypted credential the gateway has not used for this long is dropped from memory.
        public var credentialIdleSeconds = 60
        /// How long an order held for approval waits for a person before it expires.
        public var approvalSeconds = 60
        /// A stream whose agent sends nothing for this long is closed (pongs to Warden's pings do not count).
        public var streamIdleSeconds = 300
        /// The longest WebSocket message relayed, either way; a longer one closes the stream (1009).
        public var streamMaxMessageBytes = 4 * 1024 * 1024
        /// How often Warden pings each side of a stream; a side that has not answered the last ping is closed.
        public var streamPingSeconds = 20
        /// Streams one key family (or one client, for keyless market streams) may hold open on a server at once.
        public var streamMaxPerKey = 32
        public init() {}
    }

    /// `[oidc]`: the provider people sign in with. Its client secret is sealed in the vault
    /// (`warden oidc set-secret`), never written here.
    public struct OIDCSection: Sendable, Equatable {
        /// Exactly as the provider's discovery document spells it (`iss` of its tokens).
        public var issuer: String
        public var clientID: String
        /// Shown on the login page: "Sign in with NAME".
        public var name = "single sign-on"
        /// The one signature algorithm accepted for ID tokens.
        public var algorithm = "RS256"
        /// Whether a person the provider vouches for, with no Warden account, gets one (never an administrator).
        public var autoCreate = false
        /// Where the provider sends the browser back; by default the server's own URL + `/oidc/callback`.
        public var redirectURL: String?
        public var scopes = "openid email"
        public init(issuer: String, clientID: String) {
            self.issuer = issuer
            self.clientID = clientID
        }
        public static let algorithms: Set<String> = ["RS256", "ES256"]
    }

    public struct AuditSection: Sendable, Equatable {
        /// Rows older than this many days are pruned behind a signed checkpoint (hourly by the server); nil keeps all.
        public var retainDays: Int?
        public init() {}
    }

    /// USD per million tokens, exact.
    public struct ModelPrice: Sendable, Equatable {
        public var inputPerMillion: Decimal
        public var outputPerMillion: Decimal

        public init(inputPerMillion: Decimal, outputPerMillion: Decimal) {
            self.inputPerMillion = inputPerMillion
            self.outputPerMillion = outputPerMillion
        }

        /// What the tokens cost, rounded up to the micro-dollar; nil for negative counts or past `USD.limit`.
        public func cost(input: Int, output: Int) -> USD? {
            guard input >= 0, output >= 0 else { return nil }
            return USD(roundingUp: (Decimal(input) * inputPerMillion + Decimal(output) * outputPerMillion) / 1_000_000)
        }
    }

    /// The upstream base URL of a venue: the config's override or the venue's default.
    public func baseURL(venue: String, default defaultURL: String) -> String {
        venues[venue]?.baseURL ?? services[venue]?.baseURL ?? defaultURL
    }

    /// The market data base URL of a venue that has one apart: the config's override or the venue's default.
    public func marketDataURL(venue: String, default defaultURL: String) -> String {
        venues[venue]?.marketDataURL ?? defaultURL
    }

    /// Where a venue's stream at `path` is served: the config's `stream_url` (`ws_api_url` for requests), else
    /// the venue's own stream host, else its base URL.
    public func streamBase(venue: any VenueAdapter, path: String, route: StreamRoute) -> String {
        let configured = route == .requests ? venues[venue.name]?.webSocketAPIURL : venues[venue.name]?.streamURL
        return configured ?? venue.defaultStreamURL(for: path) ?? baseURL(venue: venue.name, default: venue.defaultBaseURL)
    }

    /// Venues with built-in adapters; only their upstream can be changed.
    public static let builtInVenues: Set<String> = exchanges.union(["openai", "anthropic"])
    public static let exchanges: Set<String> = [
        "alpaca", "binance", "binance-futures", "bybit", "coinbase", "hyperliquid", "kalshi", "kraken", "okx", "polymarket",
    ]
}
