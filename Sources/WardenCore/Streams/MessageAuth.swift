import Foundation
import Synchronization
import WardenVenues

/// A stream whose messages carry the credential (Polymarket's user channel). A message naming an agent key
/// is admitted on it (as a call would be) and forwarded with the real credential in its place; the stream
/// keeps that key. Until a message has named one, nothing else is forwarded. The venue's messages are
/// relayed unread.
final class MessageAuth: StreamPolicy {
    let gateway: Gateway
    let venue: any StreamAuthVenue
    private let secret = Mutex<[String: String]?>(nil)

    var readsAgent: Bool { true }
    var readsVenue: Bool { false }

    init(gateway: Gateway, venue: any StreamAuthVenue) {
        self.gateway = gateway
        self.venue = venue
    }

    func fromAgent(_ message: Data, _ session: StreamSession) async -> StreamStep {
        switch venue.streamKey(in: message) {
        case .failure(let error):
            return refuse(error.description, message, session)
        case .success(nil):
            guard secret.withLock({ $0 != nil }) else {
                return refuse("the stream's first message subscribes with auth.apiKey, the Warden agent key", message, session)
            }
            return .forward(message)
        case .success(let key?):
            do throws(GatewayRefusal) {
                let admission = try await gateway.admit(
                    venue: venue, method: "GET", rawPath: session.subject.path.description, query: nil,
                    headers: [Gateway.wardenKeyHeader: key], requestID: session.subject.requestID)
                try session.adopt(admission)
                secret.withLock { $0 = admission.secret }
                session.record(.forward, outcome: .allowed, ["class": CallKind.privateRead.rawValue, "event": "subscribe"], admission)
                return .forward(venue.streamAuthorized(message, secret: admission.secret))
            } catch {
                session.record(.refuse, outcome: .refused, ["reason": error.reason, "status": String(error.status.code)], key: error.key)
                return .answer(VenueJSON.encode(["type": "error", "error": "refused by Warden: " + error.reason]))
            }
        }
    }

    func refuse(_ reason: String, _ message: Data, _ session: StreamSession) -> StreamStep {
        session.record(.refuse, outcome: .refused, ["reason": reason, "status": "400"])
        return .answer(VenueJSON.encode(["type": "error", "error": "refused by Warden: " + reason]))
    }
}
