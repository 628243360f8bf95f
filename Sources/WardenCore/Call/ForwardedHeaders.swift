import HTTPTypes
import WardenVenues

/// Which headers cross the gateway: hop-by-hop ones never, nor Warden's own key, cookies, a browser's
/// origin, any method override or any name with `_`, nor any field the request's `Connection` names; the SDK's own
/// authentication is replaced by the venue's real one.
public enum ForwardedHeaders {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]
    static let neverForwarded: Set<String> = ["x-warden-key", "cookie", "origin", "referer"]

    static let alwaysStripped = hopByHop.union(neverForwarded).union(MethodOverride.headers)

    /// The request's headers as they may go upstream (the body's length is set again by the client).
    public static func forwardable(_ incoming: HTTPFields, venue: any VenueAdapter) -> HTTPFields {
        let auth = venue.inboundAuthHeaders
        var out = HTTPFields()
        // A name with `_` is dropped too: servers that read headers CGI-style take `_` for `-`, so it could stand
        // in for a header Warden sets or strips.
        for field in incoming
        where !alwaysStripped.contains(field.name.canonicalName) && !auth.contains(field.name) && !field.name.canonicalName.contains("_") {
            out.append(field)
        }
        if let content = incoming[.contentLength] { out[.contentLength] = content }
        return HopByHop.removingConnectionOptions(from: out, namedIn: incoming)
    }

    /// An upstream answer's headers as the agent may see them: no hop-by-hop header but the length, no
    /// cookie and no CORS grant (the gateway is never a browser's).
    public static func returnable(_ upstream: some Sequence<(name: String, value: String)>, count: Int) -> HTTPFields {
        var out = HTTPFields()
        out.reserveCapacity(count)
        for (name, value) in upstream {
            guard let fieldName = HTTPField.Name(name) else { continue }
            let lower = fieldName.canonicalName
            guard !hopByHop.contains(lower) || lower == "content-length", !lower.hasPrefix("access-control-"), lower != "set-cookie"
            else { continue }
            out.append(HTTPField(name: fieldName, value: value))
        }
        return out
    }
}
