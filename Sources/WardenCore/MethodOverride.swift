import Foundation

/// Finds the ways a request can ask its upstream to act as another method or on another path than the
/// one Warden decided on. Frameworks behind a service (Rack, Laravel, Symfony, Express's
/// method-override, Spring's HiddenHttpMethodFilter) honour `_method` in the query or a form body and
/// several override headers; a `DELETE` dressed as a `POST` would pass a read key's or a
/// `blocked_endpoints` rule's check. Each is refused, never forwarded or stripped.
public enum MethodOverride {
    /// Headers that make some server or proxy act on another method or URL than the request line's.
    public static let headers: Set<String> = [
        "x-http-method", "x-http-method-override", "x-method-override", "x-original-method", "x-forwarded-method",
        "x-original-url", "x-rewrite-url",
    ]

    /// Whether a parameter name, as a form or query parser would read it, is `_method` or `_method[…]`.
    /// The name is percent-decoded with `+` as a space and compared case-insensitively; as PHP reads
    /// names, leading blanks are dropped and spaces and dots count as `_` (` _method`, `.method`), and
    /// anything from a NUL on is dropped, as C-string parsers do.
    public static func isOverride(name raw: Substring) -> Bool {
        var name = decode(raw)
        if let nul = name.firstIndex(of: 0) { name = Array(name[..<nul]) }
        while let first = name.first, first == 0x20 || (0x09...0x0d).contains(first) { name.removeFirst() }
        let normalised = name.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "."): UInt8(ascii: "_")
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte + 32
            default: byte
            }
        }
        let target = Array("_method".utf8)
        guard normalised.starts(with: target) else { return false }
        return normalised.count == target.count || normalised[target.count] == UInt8(ascii: "[")
    }

    /// Whether `pairs` (a query string or a form body: `name=value` joined by `&`, or by `;` as some
    /// parsers also split) names `_method` anywhere.
    public static func inPairs(_ pairs: Substring) -> Bool {
        pairs.split(whereSeparator: { $0 == "&" || $0 == ";" }).contains { pair in
            isOverride(name: pair.prefix(while: { $0 != "=" }))
        }
    }

    /// Whether a request body asks for another method: `_method` as a form field (any body that is not
    /// JSON by its `Content-Type`, since some frameworks parse a form from a body with no or another
    /// type), as a `multipart/form-data` part name, or as a top-level member of a JSON object.
    public static func inBody(_ body: Data, contentType: String?) -> Bool {
        guard !body.isEmpty else { return false }
        let type = contentType?.lowercased() ?? ""
        if type.hasPrefix("multipart/") { return inMultipart(body) }
        let json = type.contains("json") || body.first(where: { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }) == UInt8(ascii: "{")
        if json, inJSON(body) { return true }
        if type.contains("json") { return false }
        // As a form field the name needs the letters "method", or a percent-escape to spell them.
        guard mentionsMethod(body, orEscape: UInt8(ascii: "%")) else { return false }
        return inPairs(Substring(String(decoding: body, as: UTF8.self)))
    }

    /// Character sets in which `_method`, `&` and `=` are the bytes the checks look for.
    public static let asciiCharsets: Set<String> = ["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"]

    /// The `charset` parameter of a `Content-Type`, lower-cased and unquoted, if it names one.
    public static func charset(of contentType: String?) -> String? {
        guard let contentType else { return nil }
        for parameter in contentType.split(separator: ";").dropFirst() {
            let parts = parameter.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "charset" else { continue }
            return parts[1].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
        }
        return nil
    }

    /// A part named `_method` in a multipart body, the name read as a form name (PHP maps `.method` to
    /// `_method` there too). Every `name=` in the body is looked at, not only those of part headers: it
    /// may refuse a body that merely mentions such a name, never miss one.
    static func inMultipart(_ body: Data) -> Bool {
        let text = Substring(String(decoding: body, as: UTF8.self))
        // `name*=` is RFC 2231's encoded form of a name, which could spell `_method` in escapes.
        if text.range(of: "name*=", options: .caseInsensitive) != nil { return true }
        var rest = text[...]
        while let found = rest.range(of: "name=", options: .caseInsensitive) {
            rest = rest[found.upperBound...]
            let name =
                rest.first == "\""
                ? rest.dropFirst().prefix(while: { $0 != "\"" })
                : rest.prefix(while: { $0 != ";" && !$0.isNewline })
            if isOverride(name: name) { return true }
        }
        return false
    }

    /// A top-level member named `_method` (in any case, escaped or not) of a JSON object.
    static func inJSON(_ body: Data) -> Bool {
        guard mentionsMethod(body, orEscape: UInt8(ascii: "\\")) else { return false }
        // A body Foundation cannot read might still be read by a lenient parser upstream: refused then.
        guard let object = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else { return true }
        return (object as? [String: Any])?.keys.contains { isOverride(name: Substring($0)) } ?? false
    }

    /// A cheap first look, without copying the body: the name needs the letters "method" (any case) or an
    /// escape (`escape`: JSON's backslash, a form's percent sign) to hide them.
    static func mentionsMethod(_ body: Data, orEscape escape: UInt8) -> Bool {
        let needle = Array("method".utf8)
        var matched = 0
        for byte in body {
            if byte == escape { return true }
            let lower = (0x41...0x5a).contains(byte) ? byte + 32 : byte
            // "method" has one "m", at its start: a mismatch restarts there or at nothing.
            matched = lower == needle[matched] ? matched + 1 : (lower == needle[0] ? 1 : 0)
            if matched == needle.count { return true }
        }
        return false
    }

    /// Percent-decoding as lenient parsers do it: `+` is a space, a malformed escape stays as it is.
    static func decode(_ text: Substring) -> [UInt8] {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%"), index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
                index += 1
            }
        }
        return out
    }

    static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
