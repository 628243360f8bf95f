/// The venues the gateway serves: the built-in ones and the REST services of the config.
public struct VenueRegistry: Sendable {
    private let venues: [String: any VenueAdapter]

    public static let builtIn: [any VenueAdapter] = [OpenAIVenue(), AnthropicVenue(), BinanceVenue(), KalshiVenue(), PolymarketVenue()]

    public init(services: [RESTServiceVenue]) {
        var all: [String: any VenueAdapter] = [:]
        for venue in Self.builtIn { all[venue.name] = venue }
        for service in services { all[service.name] = service }
        venues = all
    }

    public func venue(named name: String) -> (any VenueAdapter)? { venues[name] }

    public var names: [String] { venues.keys.sorted() }
}
