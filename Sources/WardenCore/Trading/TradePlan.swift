import Foundation
import HTTPTypes
import WardenVenues

/// What the gateway does with an exchange call the policy let through.
public struct TradePlan: Sendable {
    public enum Route: Sendable {
        /// Sign and send: `request` is signed, `url` is where it goes.
        case forward(request: UpstreamRequest, url: String)
        /// Answer for the venue (the simulator), without calling it.
        case answer(status: HTTPResponse.Status, body: Data)
        /// Held for a person's approval (its row is already on disk): the agent is told so, nothing is sent.
        case held(status: HTTPResponse.Status, body: Data)
        /// Sign and send, then read the whole answer and hand it to `TradingPolicy.completeWalletAuth`,
        /// which keeps the minted credentials and says what the agent may see.
        case walletAuth(request: UpstreamRequest, url: String)
        /// Sign and send a read whose answer repeats the credential: read it whole and hide the credential's
        /// values before the agent sees it.
        case redacted(request: UpstreamRequest, url: String)
    }

    public let route: Route
    public let kind: CallKind
    /// Recorded in the audit row: the kind of call (`class`), and for orders instrument, side, notional, client
    /// order id, mode.
    public let audit: [String: String]
    /// The live orders' reservations, released when the venue refuses the call.
    public let reservations: [String]
    /// Whether the call's `gateway.forward` row is already durable (a live order's commits with its reservation).
    public let recorded: Bool

    init(route: Route, kind: CallKind, audit: [String: String] = [:], reservations: [String] = [], recorded: Bool = false) {
        self.route = route
        self.kind = kind
        self.audit = audit.merging(["class": kind.rawValue]) { $1 }
        self.reservations = reservations
        self.recorded = recorded
    }
}
