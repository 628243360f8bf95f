import HTTPTypes
import WardenVenues

/// Which headers cross the gateway: hop-by-hop ones never, nor Warden's own key, cookies, a browser's
/// origin or any method override (in either spelling, `-` or `_`), nor any field the request's `Connection` names; the SDK's own
/// authentication is replaced by the venue's real one.
public enum ForwardedHeaders {
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]
    static let neverForwarded = routing.union(["x-warden-key", "cookie", "origin", "referer"])
    /// What a proxy in front of Warden may write about the request's host and path (so they are not refused),
    /// and what a server behind the venue's edge might route on instead of the path Warden signed.
    static let routing: Set<String> = [
        "forwarded", "x-forwarded-host", "x-forwarded-server", "x-forwarded-path", "x-forwarded-uri", "x-forwarded-prefix",
        "x-original-host", "x-original-uri", "x-envoy-original-path", "x-override-url",
    ]

    static let alwaysStripped = hopByHop.union(neverForwarded).union(MethodOverride.headers)

    /// Whether two lower-case names are the same with `_` and `-` read alike, as servers that read headers
    /// CGI-style read them (`X_MBX_APIKEY` would stand in for the `X-MBX-APIKEY` Warden sets).
    static func sameName(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8) { x, y in x == y || ((x == 0x5F || x == 0x2D) && (y == 0x5F || y == 0x2D)) }
    }

    /// The request's headers as they may go upstream (the body's length is set again by the client).
    public static func forwardable(_ incoming: HTTPFields, venue: any VenueAdapter) -> HTTPFields {
        let auth = venue.inboundAuthHeaders
        var out = HTTPFields()
        for field in incoming {
            let name = field.name.canonicalName
            if alwaysStripped.contains(name) || auth.contains(where: { sameName($0.canonicalName, name) }) { continue }
            // The stripped names have no `_`: only a name with one can be another spelling of them.
            if name.utf8.contains(0x5F), alwaysStripped.contains(name.replacingOccurrences(of: "_", with: "-")) { continue }
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
