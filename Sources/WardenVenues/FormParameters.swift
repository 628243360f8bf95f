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

    /// Parses `text`; names must be plain ASCII letters (an encoded name could be read two ways).
    init(_ text: String) throws(VenueError) {
        var pairs: [Pair] = []
        for raw in text.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = raw.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && $0.isLetter }) else {
                throw VenueError("parameter names must be plain letters, got \"\(name.prefix(40))\"")
            }
            guard let value = Self.decode(parts.count > 1 ? parts[1] : "") else {
                throw VenueError("parameter \(name) has a malformed percent-escape")
            }
            pairs.append(Pair(raw: raw, name: name, value: value))
        }
        self.pairs = pairs
    }

    /// The value of `name`, if present.
    subscript(name: String) -> String? { pairs.first { $0.name == name }?.value }

    var names: [String] { pairs.map(\.name) }

    /// The first name that appears twice, here or in `other`.
    func duplicate(with other: FormParameters) -> String? {
        var seen = Set<String>()
        for name in names + other.names where !seen.insert(name).inserted { return name }
        return nil
    }

    /// The raw text without the parameters named in `removed`, otherwise unchanged.
    func raw(removing removed: Set<String>) -> String {
        pairs.filter { !removed.contains($0.name) }.map { String($0.raw) }.joined(separator: "&")
    }

    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var rest = Array(text.utf8)[...]
        while let byte = rest.popFirst() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard rest.count >= 2, let value = UInt8(String(decoding: rest.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                rest = rest.dropFirst(2)
                bytes.append(value)
            default: bytes.append(byte)
            }
        }
        return String(bytes: bytes, encoding: .utf8)
    }
}
