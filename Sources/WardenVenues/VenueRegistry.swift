/// The venues the gateway serves: the built-in ones and the REST services of the config.
public struct VenueRegistry: Sendable {
    private let venues: [String: any VenueAdapter]

    /// The built-in venues, in the order the dashboard offers them, then the config's services.
    public let names: [String]

    public init(services: [RESTServiceVenue], polymarket: PolymarketSigning = PolymarketSigning()) {
        let builtIn = Self.builtIn(polymarket: polymarket)
        var all: [String: any VenueAdapter] = [:]
        for venue in builtIn { all[venue.name] = venue }
        for service in services where all[service.name] == nil { all[service.name] = service }
        venues = all
        names = builtIn.map(\.name) + services.map(\.name).filter { name in !builtIn.contains { $0.name == name } }.sorted()
    }

    /// One line per venue Warden knows by itself.
    static func builtIn(polymarket: PolymarketSigning = PolymarketSigning()) -> [any VenueAdapter] {
        [
            OpenAIVenue(), AnthropicVenue(), AlpacaVenue(), BinanceVenue(), BinanceFuturesVenue(), BybitVenue(), CoinbaseVenue(),
            KrakenVenue(),
            OKXVenue(), HyperliquidVenue(), KalshiVenue(),
            PolymarketVenue(signing: polymarket),
        ]
    }

    public func venue(named name: String) -> (any VenueAdapter)? { venues[name] }

    /// The built-in venues served at the gateway's root too, by their path prefix.
    public static let rootMounts: [(prefix: String, venue: String)] = builtIn().compactMap { venue in
        venue.rootPrefix.map { ($0, venue.name) }
    }

    /// The variables `warden run` sets for a venue the server named: its SDK's own for a built-in venue,
    /// `WARDEN_<NAME>_…` for any other.
    public static func runEnvironment(venue name: String, gatewayURL: String, key: String) -> [String: String] {
        let venue = builtIn().first { $0.name == name } ?? RESTServiceVenue(name: name, baseURL: "", authHeader: "", authValuePrefix: "")
        return venue.runEnvironment(gatewayURL: gatewayURL, key: key)
    }
}
