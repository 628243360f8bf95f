import Foundation
import WardenStore
import WardenVenues

/// Leverage changes on derivatives venues: held under `max_leverage` of every owner whose limits apply
/// (the key's owner, and the credential's owner when it is shared). The caps count an order's notional,
/// so leverage changes only the margin it takes; the limit bounds how far a position can move before
/// the venue liquidates it.
extension TradingPolicy {
    static func refusal(of change: LeverageChange, under owners: [(id: String, profile: ProfileRecord)]) -> String? {
        guard let strictest = owners.min(by: { $0.profile.maxLeverage < $1.profile.maxLeverage }),
            change.leverage > Decimal(strictest.profile.maxLeverage)
        else { return nil }
        let whose = strictest.id == owners.first?.id ? "" : " of the credential's owner"
        return "leverage \(change.leverage)x on \(change.instrument) is above max_leverage\(whose) (\(strictest.profile.maxLeverage)x)"
    }

    static func audit(of change: LeverageChange, _ mode: TradeMode) -> [String: String] {
        ["instrument": change.instrument, "leverage": "\(change.leverage)", "mode": mode.rawValue]
    }
}
