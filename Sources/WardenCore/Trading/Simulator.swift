import Foundation
import HTTPTypes
import WardenStore
import WardenVenues

/// The simulator: while a venue is not live for its owner, orders fill on paper at the venue's price.
extension TradingPolicy {
    /// A fill at the venue's current price moved against the order by the slippage, with the fee, booked on paper.
    func simulate(
        _ held: Held, profile: ProfileRecord, _ venue: any ExchangeVenue, _ source: MarketSource,
        key: AgentKeyRecord
    ) async throws(GatewayRefusal) -> (status: HTTPResponse.Status, body: Data) {
        let (order, priced, clientOrderID, ticket) = (held.order, held.priced, held.clientOrderID, held.reservation)
        let trades = TradeRepository(database)
        do {
            let market: Decimal
            if let known = priced.market { market = known } else { market = try await marketPrice(order, venue, source, key: key) }
            let slip = Decimal(profile.slippageBps) / 10_000
            let price = market * (order.side == .buy ? 1 + slip : 1 - slip)
            var quantity = (order.quantity ?? 0) * priced.contractSize
            if order.quantity == nil, case .quote(let amount, _) = order.value, price > 0 { quantity = (amount / price).rounded(places: 8) }
            let fill = SimulatedFill(
                orderID: UUID().uuidString.lowercased(), number: Int64.random(in: 1_000_000...9_000_000_000_000),
                clientOrderID: clientOrderID, price: price, quantity: quantity, usdPerQuote: priced.usdPerQuote,
                feeBps: Decimal(profile.feeBps), time: Date())
            let booked = try await PaperRepository(database).book(
                PaperOrder(
                    id: fill.orderID, ownerID: key.ownerID, venue: venue.name, clientOrderID: clientOrderID, instrument: order.instrument,
                    side: order.side.rawValue, quantity: "\(fill.quantity)", price: "\(fill.price)",
                    notionalUSD: Self.double(fill.notionalUSD),
                    feeUSD: Self.double(fill.feeUSD), createdAt: Clock.nowMillis()), startingBalanceUSD: profile.startingBalanceUSD)
            guard booked else {
                if let ticket { try? await trades.release(id: ticket) }
                throw GatewayRefusal(
                    .badRequest, .invalidRequest,
                    "insufficient paper balance for this order (simulator cash starts at starting_balance_usd)", key: key)
            }
            return venue.simulatedOrder(order, fill: fill)
        } catch let refusal as GatewayRefusal {
            throw refusal
        } catch {
            if let ticket { try? await trades.release(id: ticket) }
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the simulator could not fill the order: \(error)", key: key)
        }
    }

    /// Through the decimal's text, which converts exactly where `doubleValue` leaves float noise.
    static func double(_ value: Decimal) -> Double { Double("\(value)") ?? NSDecimalNumber(decimal: value).doubleValue }
}

extension Decimal {
    func rounded(places: Int) -> Decimal {
        var result = Decimal()
        var value = self
        NSDecimalRound(&result, &value, places, .down)
        return result
    }
}
