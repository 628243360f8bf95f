import Foundation

/// A request path in the one form every policy decision is made on. Percent-escapes of unreserved
/// characters are decoded, `//` runs collapse and a trailing slash is dropped; anything that could mean
/// different things to Warden and to the upstream (dot segments, encoded `/`, `\` or `.`, control
/// characters, malformed escapes, `;` path parameters, segments with blanks at either end) is refused
/// rather than guessed at.
public struct CanonicalPath: Sendable, Equatable, CustomStringConvertible {
    public let segments: [String]

    public var description: String { "/" + segments.joined(separator: "/") }

    /// Lowercased, for case-insensitive matching.
    public var matchingSegments: [String] { segments.map { $0.lowercased() } }

    public enum Refusal: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        public var description: String {
            switch self {
            case .malformed(let reason): "malformed path: \(reason)"
            }
        }
    }

    public init(raw: String) throws(Refusal) {
        guard raw.hasPrefix("/") || raw.isEmpty else { throw .malformed("it must start with /") }
        var segments: [String] = []
        for rawSegment in raw.split(separator: "/", omittingEmptySubsequences: true) {
            let segment = try Self.decode(rawSegment)
            guard segment != ".", segment != ".." else { throw .malformed("dot segments are not allowed") }
            segments.append(segment)
        }
        self.segments = segments
    }

    /// The path to send upstream: canonical segments, re-encoded where needed.
    public var encoded: String {
        var out: [UInt8] = []
        out.reserveCapacity(segments.reduce(1) { $0 + $1.utf8.count + 1 })
        for segment in segments {
            out.append(UInt8(ascii: "/"))
            Self.percentEncode(segment, into: &out)
        }
        return out.isEmpty ? "/" : String(decoding: out, as: UTF8.self)
    }

    /// What a segment may hold unescaped (RFC 3986 `pchar`); every other UTF-8 byte is escaped.
    private static let segmentBytes: [Bool] = {
        var table = [Bool](repeating: false, count: 128)
        for byte in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@".utf8 { table[Int(byte)] = true }
        return table
    }()

    private static func percentEncode(_ segment: String, into out: inout [UInt8]) {
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in segment.utf8 {
            if byte < 128, segmentBytes[Int(byte)] {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
    }

    private static func decode(_ segment: Substring) throws(Refusal) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(segment.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard iterator.count >= 2, let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) else {
                    throw .malformed("invalid percent-escape")
                }
                iterator = iterator.dropFirst(2)
                guard value >= 0x20, value != 0x7f, value != UInt8(ascii: "/"), value != UInt8(ascii: "\\"),
                    value != UInt8(ascii: "."), value != UInt8(ascii: "%")
                else { throw .malformed("encoded '/', '\\\\', '.', '%' or control characters are not allowed") }
                bytes.append(value)
            } else {
                guard byte >= 0x20, byte != 0x7f, byte != UInt8(ascii: "\\") else {
                    throw .malformed("control characters and '\\\\' are not allowed")
                }
                bytes.append(byte)
            }
        }
        // Many servers cut `;params` off a segment (`/admin;x` is `/admin` to them) and trim blanks around
        // it (`/admin%20`): either would let a call past a rule written for the plain path.
        guard !bytes.contains(UInt8(ascii: ";")) else { throw .malformed("';' (path parameters, literal or %3B) is not allowed") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .malformed("not UTF-8") }
        guard !(text.first?.isWhitespace ?? false), !(text.last?.isWhitespace ?? false) else {
            throw .malformed("a path segment may not begin or end with whitespace")
        }
        return text
    }
}

/// A `blocked_endpoints` entry: `METHOD /path` where `*` is one segment and `**` any number (even none).
/// Matched case-insensitively against the canonical path.
public struct EndpointPattern: Sendable, Equatable, CustomStringConvertible {
    public let method: String
    public let segments: [String]
    public let description: String

    public init(_ text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        method = parts.first.map { $0.uppercased() } ?? "*"
        segments = (parts.count > 1 ? parts[1] : "/").split(separator: "/").map { $0.lowercased() }
        description = text
    }

    /// `formatSuffixes`: a literal segment also matches itself followed by `.` and anything (`settings.json`),
    /// as frameworks that route a format suffix to the same action read it. For rules that refuse (a
    /// block list), where matching more is the safe side; never for rules that allow.
    public func matches(method requestMethod: String, path: CanonicalPath, formatSuffixes: Bool = false) -> Bool {
        let method = requestMethod.uppercased()
        guard self.method == "*" || self.method == method || (self.method == "GET" && method == "HEAD") else { return false }
        return Self.match(segments[...], path.matchingSegments[...], formatSuffixes: formatSuffixes)
    }

    private static func match(_ pattern: ArraySlice<String>, _ path: ArraySlice<String>, formatSuffixes: Bool) -> Bool {
        guard let head = pattern.first else { return path.isEmpty }
        if head == "**" {
            let rest = pattern.dropFirst()
            for start in path.indices + [path.endIndex] where match(rest, path[start...], formatSuffixes: formatSuffixes) { return true }
            return false
        }
        guard let segment = path.first,
            head == "*" || head == segment || (formatSuffixes && segment.hasPrefix(head + "."))
        else { return false }
        return match(pattern.dropFirst(), path.dropFirst(), formatSuffixes: formatSuffixes)
    }
}
