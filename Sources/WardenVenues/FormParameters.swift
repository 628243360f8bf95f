import Foundation

/// `a=1&b=2` as a venue reads it (percent-escapes and `+` decoded), keeping the raw pairs so that what is
/// forwarded and signed is byte for byte what was checked.
struct FormParameters: Sendable {
    struct Pair: Sendable {
        let raw: Substring
        let name: String
        let value: String
    }

    let pairs: [Pair]

    /// Parses `text`; names must be plain ASCII letters (an encoded name could be read two ways), and `_`
    /// where the venue's own names have one.
    init(_ text: String, underscores: Bool = false) throws(VenueError) {
        var pairs: [Pair] = []
        // Split on bytes, not characters: `&` and `=` are ASCII, and grapheme breaking costs more than the rest.
        for bytes in text.utf8.split(separator: UInt8(ascii: "&")) {
            let equals = bytes.firstIndex(of: UInt8(ascii: "="))
            let name = String(Substring(bytes[..<(equals ?? bytes.endIndex)]))
            guard !name.isEmpty, name.utf8.count <= 64,
                name.utf8.allSatisfy({ ASCII.isLetter($0) || (underscores && $0 == UInt8(ascii: "_")) })
            else {
                throw VenueError("parameter names must be plain letters\(underscores ? " and _" : ""), got \"\(name.prefix(40))\"")
            }
            let encoded = equals.map { Substring(bytes[bytes.index(after: $0)...]) } ?? ""
            guard let value = Self.decode(encoded) else {
                throw VenueError("parameter \(name) has a malformed percent-escape")
            }
            pairs.append(Pair(raw: Substring(bytes), name: name, value: value))
        }
        self.pairs = pairs
    }

    /// The value of `name`, if present.
    subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    var names: [String] { pairs.map(\.name) }

    /// The first name that appears twice, here or in `other`.
    func duplicate(with other: FormParameters? = nil) -> String? {
        var seen = Set<String>()
        for name in names + (other?.names ?? []) where !seen.insert(name).inserted { return name }
        return nil
    }

    /// The raw text without the parameters named `name` in any case, otherwise unchanged.
    func raw(removingFolded name: String) -> String {
        pairs.filter { $0.name.lowercased() != name }.map { String($0.raw) }.joined(separator: "&")
    }

    /// The raw text without the parameters named in `removed`, otherwise unchanged.
    func raw(removing removed: Set<String>) -> String {
        pairs.filter { !removed.contains($0.name) }.map { String($0.raw) }.joined(separator: "&")
    }

    static func decode(_ text: Substring) -> String? {
        let utf8 = text.utf8
        guard utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            index = utf8.index(after: index)
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard index != utf8.endIndex, let high = ASCII.hexValue(utf8[index]) else { return nil }
                index = utf8.index(after: index)
                guard index != utf8.endIndex, let low = ASCII.hexValue(utf8[index]) else { return nil }
                index = utf8.index(after: index)
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// Byte tests for the plain-ASCII forms venues read, without Unicode's character machinery.
enum ASCII {
    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    static func isUpperOrDigit(_ byte: UInt8) -> Bool { isDigit(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Digits, then optionally a dot and more digits: `12`, `0.5`.
    static func isPlainDecimal(_ text: String) -> Bool {
        var digits = 0, fraction = -1
        for byte in text.utf8 {
            if isDigit(byte) {
                if fraction >= 0 { fraction += 1 } else { digits += 1 }
            } else if byte == UInt8(ascii: "."), fraction < 0, digits > 0 {
                fraction = 0
            } else {
                return false
            }
        }
        return digits > 0 && fraction != 0
    }
}
