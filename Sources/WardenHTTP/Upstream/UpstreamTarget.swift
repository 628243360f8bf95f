/// Where a gateway call goes: the origin its connection is pooled by, the Host header, and the
/// request target (path and query) written on the request line.
struct UpstreamTarget: Sendable, Equatable {
    struct Origin: Hashable, Sendable {
        let tls: Bool
        let host: String
        let port: Int
    }

    let origin: Origin
    let hostHeader: String
    let requestTarget: String

    /// Parses `http(s)://host[:port][/path][?query]`. User info, fragments and bytes that could break the
    /// request line (controls, spaces, non-ASCII) are refused rather than sent.
    init(url: String) throws(UpstreamError) {
        let tls: Bool
        let rest: Substring
        if url.hasPrefix("https://") {
            (tls, rest) = (true, url.dropFirst(8))
        } else if url.hasPrefix("http://") {
            (tls, rest) = (false, url.dropFirst(7))
        } else {
            throw .invalidURL
        }
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }) else { throw .invalidURL }
        // Only ASCII is left, so byte positions are character positions.
        let end = rest.utf8.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
        let authority = rest[..<end]
        let target = rest[end...]
        guard !authority.isEmpty, !authority.utf8.contains(UInt8(ascii: "@")) else { throw .invalidURL }

        var host = authority
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.utf8.firstIndex(of: UInt8(ascii: "]")) else { throw .invalidURL }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw .invalidURL }
                portText = after.dropFirst()
            }
        } else if let colon = authority.utf8.lastIndex(of: UInt8(ascii: ":")) {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        var port = tls ? 443 : 80
        if let portText {
            guard let number = Int(portText), (1...65_535).contains(number) else { throw .invalidURL }
            port = number
        }
        guard !host.isEmpty else { throw .invalidURL }
        origin = Origin(tls: tls, host: String(host), port: port)
        hostHeader = String(authority)
        requestTarget = target.isEmpty ? "/" : target.first == "?" ? "/" + target : String(target)
    }
}

/// Why an upstream call failed; the gateway answers 504 for `timedOut` and 502 otherwise.
public enum UpstreamError: Error, Equatable {
    /// The URL is not an absolute http(s) URL that can be written on a request line.
    case invalidURL
    /// No connection could be made (refused, unreachable, TLS handshake failed, connect timeout), or
    /// none was free: the origin had all the connections it may for as long as the call could wait.
    /// Nothing was sent.
    case unreachable
    /// The upstream stayed silent past the timeout.
    case timedOut
    /// The connection closed before any byte of the answer came (only this may be retried, by a call
    /// that changes nothing), or, in `UpstreamCutShort` and a body's stream, before the answer was complete.
    case closed
    /// The answer is not HTTP/1 the parser accepts, or broke off within its head: the upstream did
    /// answer, so the call is never sent again.
    case malformed
    /// The answer is larger than the caller accepts.
    case tooLarge
    /// The call waited for a connection (the origin's were busy, or one was being made) until its caller
    /// no longer wanted it sent (`UpstreamHTTPRequest.stillWanted`). Nothing was sent.
    case withdrawn
}
