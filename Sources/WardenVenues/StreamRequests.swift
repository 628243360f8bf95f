import Foundation

/// A venue whose stream carries requests that act on the account (Binance's WebSocket API): each
/// request is read here and taken as its REST twin, so it is classified, priced, reserved, signed and
/// audited by the same code as the REST call, then written back in the stream's own form.
public protocol StreamRequestVenue: ExchangeVenue {
    /// One request as Warden takes it, or why it is refused (with its id, when it had one). A request
    /// forwarded as it is (public data) goes up under `wardenID`, Warden's own id for it.
    func streamRequest(_ message: Data, forwardAs wardenID: String) -> StreamRequest
    /// The stream request to send for a REST twin the trading policy signed (`signed`): its parameters,
    /// the real API key among them, signed as the stream signs requests.
    func streamMessage(id: StreamRequestID, method: String, from signed: UpstreamRequest, secret: [String: String])
        throws(VenueError) -> Data
    /// A request without a REST twin that Warden signs as it is (a user data subscription), at `now`.
    func streamSigned(id: StreamRequestID, method: String, secret: [String: String], now: Date) -> Data
    /// Warden's answer to a request in the stream's shape, from the REST answer it stands for (a simulated
    /// order, or a refusal as `errorBody` writes it).
    func streamAnswer(id: StreamRequestID, status: Int, body: Data) -> Data
    /// The request id a venue's answer names, and its status, when it is an answer to a request.
    func streamAnswerStatus(_ message: Data) -> (id: StreamRequestID, status: Int)?
}

/// A venue whose stream carries the credential in its messages (`StreamRoute.authInMessages`).
public protocol StreamAuthVenue: VenueAdapter {
    /// The agent key a message names in its credential's place: nil when it names none, or why it is refused.
    func streamKey(in message: Data) -> Result<String?, VenueError>
    /// The message with the real credential in place of the agent's.
    func streamAuthorized(_ message: Data, secret: [String: String]) -> Data
}

/// A request's id as its JSON names it (a string, a number, or null), written back exactly.
public struct StreamRequestID: Hashable, Sendable {
    /// The id's JSON text.
    public let json: String

    /// The longest string id taken: ids are kept while their requests wait, so their size is bounded.
    public static let maxLength = 64

    public init?(_ value: Any?) {
        switch value {
        case let text as String where text.utf8.count <= Self.maxLength:
            json = String(decoding: VenueJSON.encode(["id": text]).dropFirst(6).dropLast(), as: UTF8.self)
        case let number as NSNumber where String(cString: number.objCType) != "c":
            guard let whole = Int64(number.stringValue) else { return nil }
            json = String(whole)
        case nil, is NSNull: json = "null"
        default: return nil
        }
    }
}

/// How Warden takes one stream request.
public enum StreamRequest: Sendable {
    /// About the stream's session (logging on with a key): answered by Warden, which signs every request itself.
    case session(id: StreamRequestID, method: String, apiKey: String?)
    /// Public data: forwarded as `message` (under Warden's id), without the agent's key, signature or timestamp.
    case publicData(id: StreamRequestID, message: Data)
    /// A read with no REST twin that Warden signs as it is (a user data subscription).
    case signedRead(id: StreamRequestID, method: String, apiKey: String?)
    /// Taken as the REST call `method path` with `form` as its body.
    case rest(id: StreamRequestID, method: String, restMethod: String, path: String, form: String, apiKey: String?)
    /// Refused before anything: the reason, and the id to answer (nil when the request named none readable).
    case refused(id: StreamRequestID?, reason: String)
}
