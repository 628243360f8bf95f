/// The venues the gateway serves: the built-in ones and the REST services of the config.
public struct VenueRegistry: Sendable {
    private let venues: [String: any VenueAdapter]

    public init(services: [RESTServiceVenue], polymarket: PolymarketSigning = PolymarketSigning()) {
        var all: [String: any VenueAdapter] = [:]
        let builtIn: [any VenueAdapter] = [OpenAIVenue(), AnthropicVenue(), BinanceVenue(), KalshiVenue(), PolymarketVenue(signing: polymarket)]
        for venue in builtIn { all[venue.name] = venue }
        for service in services { all[service.name] = service }
        venues = all
    }

    public func venue(named name: String) -> (any VenueAdapter)? { venues[name] }

    public var names: [String] { venues.keys.sorted() }
}
