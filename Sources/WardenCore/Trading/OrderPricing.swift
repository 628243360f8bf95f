import Foundation
import WardenStore
import WardenVenues

/// What an order is worth in USD: at least what it can trade for, from the venue's own market data.
extension TradingPolicy {
    struct Priced: Sendable {
        let usd: Decimal
        let usdPerQuote: Decimal
        /// The instrument's price, when it had to be fetched to value the order.
        let market: Decimal?
        /// The underlying per unit of the order's quantity (a contract's size; 1 for the underlying itself).
        var contractSize: Decimal = 1
    }

    func price(_ order: OrderIntent, _ venue: any ExchangeVenue, _ source: MarketSource, key: AgentKeyRecord) async throws(GatewayRefusal)
        -> Priced
    {
        var priced = try await priceInUnderlying(order, venue, source, key: key)
        guard let query = venue.contractQuery(for: order) else { return priced }
        do {
            let body = try await prices.body(of: query, venue: venue.name, source: source)
            guard let size = venue.parseContractSize(body, for: order), size > 0 else { throw VenueError("no contract size") }
            priced = Priced(usd: priced.usd * size, usdPerQuote: priced.usdPerQuote, market: priced.market, contractSize: size)
            return priced
        } catch {
            throw GatewayRefusal(
                .badGateway, .upstream, "the size of a \(order.instrument) contract could not be read from \(venue.name): \(error)",
                key: key)
        }
    }

    /// The order's value with its quantity read as the underlying's.
    func priceInUnderlying(_ order: OrderIntent, _ venue: any ExchangeVenue, _ source: MarketSource, key: AgentKeyRecord)
        async throws(GatewayRefusal) -> Priced
    {
        do {
            switch order.value {
            case .usd(let usd):
                return Priced(usd: usd, usdPerQuote: 1, market: nil)
            case .quote(let amount, let asset):
                let rate = try await usdRate(asset, order, venue, source)
                return Priced(usd: amount * rate, usdPerQuote: rate, market: nil)
            case .atMarket(let quantity, let asset):
                let rate = try await usdRate(asset, order, venue, source)
                let market = try await marketPrice(order, venue, source, key: key)
                return Priced(usd: quantity * market * rate, usdPerQuote: rate, market: market)
            case .atLeastMarket(let amount, let quantity, let asset, let maxPayoff):
                let rate = try await usdRate(asset, order, venue, source)
                let market: Decimal?
                do { market = try await marketPrice(order, venue, source, key: key) } catch {
                    guard maxPayoff != nil else { throw error }
                    market = nil  // a contract's maximum payoff bounds it instead
                }
                let value = market.map { max(amount, quantity * $0) } ?? quantity * (maxPayoff ?? 0)
                return Priced(usd: value * rate, usdPerQuote: rate, market: market)
            case .undetermined(let reason):
                throw GatewayRefusal(.forbidden, .permission, "the order's notional cannot be determined: \(reason)", key: key)
            }
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            throw GatewayRefusal(
                .badGateway, .upstream, "the order could not be priced from \(venue.name)'s market data: \(error)", key: key)
        }
    }

    /// USD per unit of a quote asset: 1 for USD stablecoins, otherwise the asset's USDT price.
    func usdRate(_ asset: String, _ order: OrderIntent, _ venue: any ExchangeVenue, _ source: MarketSource) async throws -> Decimal {
        if ExchangeRules.usdStablecoins.contains(asset) { return 1 }
        let body = try await prices.body(of: venue.priceQuery(for: order, instrument: asset + "USDT"), venue: venue.name, source: source)
        guard let rate = venue.parsePrice(body, for: order), rate > 0 else { throw VenueError("no USDT price for \(asset)") }
        return rate
    }

    func marketPrice(_ order: OrderIntent, _ venue: any ExchangeVenue, _ source: MarketSource, key: AgentKeyRecord) async throws -> Decimal
    {
        let body = try await prices.body(of: venue.priceQuery(for: order, instrument: nil), venue: venue.name, source: source)
        guard let price = venue.parsePrice(body, for: order), price > 0 else { throw VenueError("no price for \(order.instrument)") }
        return price
    }
}
