import Foundation
import WardenVenues

/// Public market data the policy and the simulator price orders with, cached for a moment so a burst of
/// orders costs the venue one call.
public actor PriceFeed {
    let caller: any UpstreamCaller
    let ttl: Duration
    private var cache: [String: (body: Data, at: ContinuousClock.Instant)] = [:]

    public init(caller: any UpstreamCaller, ttl: Duration = .seconds(2)) {
        self.caller = caller
        self.ttl = ttl
    }

    /// The answer to a market data GET at `source`, from the cache when it is fresh. The cache is the venue's,
    /// whoever's credential read it: market data is the same for every customer.
    func body(of query: PublicQuery, venue: String, source: MarketSource) async throws -> Data {
        let key = "\(venue) \(query.method) \(query.path)?\(query.query) \(String(decoding: query.body, as: UTF8.self))"
        if let hit = cache[key], ContinuousClock.now - hit.at < ttl { return hit.body }
        let base = source.base
        var request = UpstreamRequest(
            method: query.method, path: base.prefix + query.path, query: query.query, headers: source.headers, body: query.body)
        if !query.body.isEmpty { request.headers[.contentType] = "application/json" }
        let answer = try await caller.send(request, origin: base.origin)
        guard (200..<300).contains(answer.status) else { throw VenueError("\(venue) answered \(answer.status) to \(query.path)") }
        if cache.count > 10_000 { cache.removeAll() }
        cache[key] = (answer.body, ContinuousClock.now)
        return answer.body
    }
}
