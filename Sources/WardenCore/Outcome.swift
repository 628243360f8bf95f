/// How a recorded event ended, as its audit row stores it.
public enum Outcome: String, Sendable, CaseIterable {
    /// A management action done, or a record of the log itself.
    case ok, recorded
    /// A management action refused (a wrong password, a failed go-live check).
    case failed
    /// A gateway call recorded before it is sent, and its answer relayed.
    case allowed, forwarded
    /// Sent, but its answer broke off.
    case interrupted
    /// Answered by the simulator: nothing reached the venue.
    case dryRun = "dry_run"
    /// Held for a person's approval, not sent (yet).
    case held
    /// Refused by the policy before anything was sent.
    case refused, rateLimited = "rate_limited", budgetExceeded = "budget_exceeded"
    /// The venue could not be reached, did not answer in time, or cut its answer short.
    case upstreamError = "upstream_error"

    /// The activity page's filters; each outcome is in exactly one.
    public enum Verdict: String, Sendable, CaseIterable {
        case allowed, refused, venueError = "venue_error", dryRun = "dry_run"

        public var label: String {
            switch self {
            case .allowed: "Allowed"
            case .refused: "Refused"
            case .venueError: "Venue error"
            case .dryRun: "Dry run"
            }
        }
    }

    public var verdict: Verdict {
        switch self {
        case .ok, .recorded, .allowed, .forwarded: .allowed
        case .failed, .held, .refused, .rateLimited, .budgetExceeded: .refused
        case .interrupted, .upstreamError: .venueError
        case .dryRun: .dryRun
        }
    }
}

/// The steps of a gateway call that leave an audit row.
public enum GatewayStep: String, Sendable {
    /// About to be sent (durable before the call leaves when it can change something at the venue).
    case forward = "gateway.forward"
    /// How the venue answered.
    case result = "gateway.result"
    /// Refused before anything was sent.
    case refuse = "gateway.refuse"
    /// Answered by the simulator.
    case simulate = "gateway.simulate"
    /// Held for a person's approval: reserved, not sent.
    case hold = "gateway.hold"
    /// A stream (WebSocket) opened to the venue.
    case streamOpen = "gateway.stream_open"
    /// A stream closed, with what it carried.
    case streamClose = "gateway.stream_close"
}
