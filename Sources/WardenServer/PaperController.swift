import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `GET /paper/orders` and `GET /paper/balances`: the simulator's fills while live trading is off.
struct PaperController {
    let activity: Activity

    struct Order: Encodable {
        let id, venue, clientOrderID, instrument, side, quantity, price: String
        let notionalUSD, feeUSD: Double
        let createdAt: String?
        enum CodingKeys: String, CodingKey {
            case id, venue, clientOrderID = "client_order_id", instrument, side, quantity, price
            case notionalUSD = "notional_usd", feeUSD = "fee_usd", createdAt = "created_at"
        }
    }
    struct Position: Encodable { let venue, instrument, quantity: String }
    struct Balances: Encodable {
        let startingBalanceUSD, cashUSD, feesUSD: Double
        let positions: [Position]
        enum CodingKeys: String, CodingKey {
            case startingBalanceUSD = "starting_balance_usd", cashUSD = "cash_usd", feesUSD = "fees_usd", positions
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("paper/orders") { _, context in
            let orders = try await activity.paperOrders(try context.requirePrincipal())
            return try Response.json([
                "orders": orders.map {
                    Order(
                        id: $0.id, venue: $0.venue, clientOrderID: $0.clientOrderID, instrument: $0.instrument, side: $0.side,
                        quantity: $0.quantity, price: $0.price, notionalUSD: $0.notionalUSD, feeUSD: $0.feeUSD,
                        createdAt: Timestamp.iso($0.createdAt))
                }
            ])
        }
        api.get("paper/balances") { _, context in
            let (start, balances) = try await activity.paperBalances(try context.requirePrincipal())
            return try Response.json(
                Balances(
                    startingBalanceUSD: start, cashUSD: balances.cashUSD, feesUSD: balances.feesUSD,
                    positions: balances.positions.map { Position(venue: $0.venue, instrument: $0.instrument, quantity: "\($0.quantity)") }))
        }
    }
}
