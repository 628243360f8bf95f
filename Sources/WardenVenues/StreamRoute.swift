import Foundation

/// What Warden does with a WebSocket an agent opens at a venue's path.
public enum StreamRoute: Sendable, Equatable {
    /// Messages pass as they are; the handshake carries the credential as `authorize` writes it (a REST
    /// service's auth header). Nothing sent on it can move money or trade.
    case relay
    /// A public stream (market data): nothing of the credential goes up, and a key is not needed.
    case marketData
    /// The handshake is signed as a GET of its path would be (`ExchangeVenue.sign`), and each command the
    /// agent sends is checked against the venue's list of stream commands (`streamCommand`).
    case signedHandshake
    /// A stream of requests that act on the account (Binance's WebSocket API, `StreamRequestVenue`): each
    /// is taken as its REST twin, priced, reserved, signed and audited as that call is.
    case requests
    /// The credential travels in the stream's messages (Polymarket's user channel: `auth` in the subscription):
    /// each message that names a key is admitted on it and has the real credential written in its place
    /// (`StreamAuthVenue`); nothing else passes before one has.
    case authInMessages
    /// An LLM's realtime session: the credential on the handshake, and each response reserved against the
    /// key's budget before it may start, and charged from the usage the venue reports when it is done.
    case realtime
}

/// A command an agent sends on a signed stream, as the venue's stream protocol names it.
public enum StreamCommand: Sendable, Equatable {
    /// Subscribing, unsubscribing, listing: reading what the account already may read.
    case read
    /// Anything else: refused, the stream stays open.
    case refused(reason: String)
}

extension VenueAdapter {
    public func stream(at path: String) -> StreamRoute? { nil }
    public func defaultStreamURL(for path: String) -> String? { nil }
    public func streamCommand(_ message: Data) -> StreamCommand { .refused(reason: "\(name) streams take no commands") }
    public func streamError(_ message: String, to command: Data) -> Data {
        VenueJSON.encoded(["type": "error", "error": message])
    }
}
