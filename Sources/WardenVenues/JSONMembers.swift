import Foundation

/// A member of a JSON object as `JSONMembers` hands it over: scalars read, objects as the byte range
/// to read further, arrays only noted.
public enum JSONMember: Equatable, Sendable {
    case string(String)
    /// The value, and the same as an integer when it is one exactly (`12`, `12.0`, `1.2e1`).
    case number(Double, integer: Int?)
    case bool(Bool)
    case null
    case object(Range<Int>)
    case array

    public var integer: Int? { if case .number(_, let integer) = self { integer } else { nil } }
    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var objectRange: Range<Int>? { if case .object(let range) = self { range } else { nil } }
}

/// Reads the named members of a JSON object without building the document. The whole text is still
/// held to the JSON grammar (RFC 8259) and to well-formed UTF-8, with escaped surrogates in pairs: a
/// document Warden might read differently from the venue is refused rather than guessed at. A member named twice counts as its last occurrence, as the
/// venues' own parsers take it. Written for the gateway's hot path, where Foundation's decoders cost
/// more than the rest of pricing a call.
public enum JSONMembers {
    public struct Malformed: Error, Equatable {
        public let offset: Int
    }

    /// Nesting deeper than this is refused (Foundation's decoders stop at the same depth).
    static let maxDepth = 512

    /// The members of the object spanning `range` of `bytes` (the whole text when nil) whose names are in `names`.
    public static func read(_ bytes: UnsafeRawBufferPointer, range: Range<Int>? = nil, names: Set<String>) throws(Malformed) -> [String:
        JSONMember]
    {
        var scanner = Scanner(bytes: bytes, position: range?.lowerBound ?? 0, end: range?.upperBound ?? bytes.count)
        let found = try scanner.topObject(names: names)
        scanner.skipBlanks()
        guard scanner.position == scanner.end else { throw Malformed(offset: scanner.position) }
        return found
    }

    public static func read(_ data: Data, names: Set<String>) throws(Malformed) -> [String: JSONMember] {
        let result = data.withUnsafeBytes { bytes in Result { () throws(Malformed) in try read(bytes, names: names) } }
        return try result.get()
    }

    /// Whether `data` is one JSON value by the grammar in which no object names a member twice: what an
    /// exchange order must be, since venues' parsers differ on which of two twins they keep.
    public static func isStrict(_ data: Data) -> Bool {
        data.withUnsafeBytes { bytes in
            var scanner = Scanner(bytes: bytes, position: 0, end: bytes.count, uniqueNames: true)
            scanner.skipBlanks()
            guard (try? scanner.value(depth: 1, decodingStrings: false)) != nil else { return false }
            scanner.skipBlanks()
            return scanner.position == scanner.end
        }
    }

    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var position: Int
        let end: Int
        /// Refuse an object that names a member twice.
        var uniqueNames = false

        func fail() -> Malformed { Malformed(offset: position) }

        var current: UInt8? { position < end ? bytes[position] : nil }

        mutating func skipBlanks() {
            while position < end {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func expect(_ byte: UInt8) throws(Malformed) {
            skipBlanks()
            guard current == byte else { throw fail() }
            position += 1
        }

        mutating func topObject(names: Set<String>) throws(Malformed) -> [String: JSONMember] {
            try expect(UInt8(ascii: "{"))
            var found: [String: JSONMember] = [:]
            skipBlanks()
            if current == UInt8(ascii: "}") { position += 1; return found }
            while true {
                skipBlanks()
                let name = try string(decoding: true)!
                try expect(UInt8(ascii: ":"))
                skipBlanks()
                let start = position
                let wanted = names.contains(name)
                let kind = try value(depth: 1, decodingStrings: wanted)
                if wanted { found[name] = member(kind, start: start) }
                skipBlanks()
                guard let next = current else { throw fail() }
                position += 1
                if next == UInt8(ascii: "}") { return found }
                guard next == UInt8(ascii: ",") else { position -= 1; throw fail() }
            }
        }

        enum Kind { case string(String?), number(Double, Int?), bool(Bool), null, object, array }

        func member(_ kind: Kind, start: Int) -> JSONMember {
            switch kind {
            case .string(let s): .string(s ?? "")
            case .number(let d, let i): .number(d, integer: i)
            case .bool(let b): .bool(b)
            case .null: .null
            case .object: .object(start..<position)
            case .array: .array
            }
        }

        /// One value at `position` (blanks already skipped); strings are decoded only when asked.
        mutating func value(depth: Int, decodingStrings: Bool) throws(Malformed) -> Kind {
            guard depth <= JSONMembers.maxDepth, let byte = current else { throw fail() }
            switch byte {
            case UInt8(ascii: "\""): return .string(try string(decoding: decodingStrings))
            case UInt8(ascii: "{"): try container(close: UInt8(ascii: "}"), keyed: true, depth: depth); return .object
            case UInt8(ascii: "["): try container(close: UInt8(ascii: "]"), keyed: false, depth: depth); return .array
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default:
                let (double, integer) = try number()
                return .number(double, integer)
            }
        }

        mutating func container(close: UInt8, keyed: Bool, depth: Int) throws(Malformed) {
            position += 1
            skipBlanks()
            if current == close { position += 1; return }
            var seen: Set<String> = []
            while true {
                skipBlanks()
                if keyed {
                    let name = try string(decoding: uniqueNames)
                    if uniqueNames, let name, !seen.insert(name).inserted { throw fail() }
                    try expect(UInt8(ascii: ":"))
                    skipBlanks()
                }
                _ = try value(depth: depth + 1, decodingStrings: false)
                skipBlanks()
                guard let next = current else { throw fail() }
                position += 1
                if next == close { return }
                guard next == UInt8(ascii: ",") else { position -= 1; throw fail() }
            }
        }

        mutating func literal(_ word: StaticString) throws(Malformed) {
            let count = word.utf8CodeUnitCount
            guard end - position >= count,
                memcmp(bytes.baseAddress! + position, word.utf8Start, count) == 0
            else { throw fail() }
            position += count
        }

        /// A string at `position`; its text when `decoding`, else nil (checked all the same).
        mutating func string(decoding: Bool) throws(Malformed) -> String? {
            guard current == UInt8(ascii: "\"") else { throw fail() }
            position += 1
            let start = position
            var escaped = false
            while true {
                guard let byte = current else { throw fail() }
                if byte == UInt8(ascii: "\"") { break }
                if byte < 0x20 { throw fail() }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    position += 1
                    guard let kind = current else { throw fail() }
                    switch kind {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        position += 1
                    case UInt8(ascii: "u"):
                        position += 1
                        try surrogates(first: try hex4())
                    default: throw fail()
                    }
                } else if byte >= 0x80 {
                    try utf8Sequence()
                } else {
                    position += 1
                }
            }
            let text = start..<position
            position += 1
            guard decoding else { return nil }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[text])
            guard escaped else { return String(decoding: raw, as: UTF8.self) }
            return try unescape(text)
        }

        /// One multi-byte UTF-8 sequence, well formed: no overlong forms, no surrogates, nothing past U+10FFFF.
        mutating func utf8Sequence() throws(Malformed) {
            let lead = bytes[position]
            let (more, lowest): (Int, UInt32) =
                switch lead {
                case 0xC2...0xDF: (1, 0x80)
                case 0xE0...0xEF: (2, 0x800)
                case 0xF0...0xF4: (3, 0x10000)
                default: throw fail()
                }
            guard end - position > more else { throw fail() }
            var scalar = UInt32(lead & (0x7F >> (more + 1)))
            for offset in 1...more {
                let byte = bytes[position + offset]
                guard byte & 0xC0 == 0x80 else { throw fail() }
                scalar = scalar << 6 | UInt32(byte & 0x3F)
            }
            guard scalar >= lowest, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { throw fail() }
            position += more + 1
        }

        /// A UTF-16 escape must not split a pair: a high surrogate is followed by an escaped low one,
        /// and a low one never stands alone.
        mutating func surrogates(first: UInt16) throws(Malformed) {
            if (0xDC00..<0xE000).contains(first) { throw fail() }
            guard (0xD800..<0xDC00).contains(first) else { return }
            guard end - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else { throw fail() }
            position += 2
            guard (0xDC00..<0xE000).contains(try hex4()) else { throw fail() }
        }

        mutating func hex4() throws(Malformed) -> UInt16 {
            guard end - position >= 4 else { throw fail() }
            var value: UInt16 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                let digit: UInt8 =
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
                    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
                    default: throw fail()
                    }
                value = value << 4 | UInt16(digit)
                position += 1
            }
            return value
        }

        /// The text of an escaped string, already checked (surrogates come in pairs).
        func unescape(_ range: Range<Int>) throws(Malformed) -> String {
            var out: [UInt8] = []
            out.reserveCapacity(range.count)
            var reader = Scanner(bytes: bytes, position: range.lowerBound, end: range.upperBound)
            while let byte = reader.current {
                reader.position += 1
                guard byte == UInt8(ascii: "\\"), let kind = reader.current else { out.append(byte); continue }
                reader.position += 1
                switch kind {
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = UInt32(try reader.hex4())
                    if (0xD800..<0xDC00).contains(scalar) {
                        reader.position += 2  // the \u of the low half
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (UInt32(try reader.hex4()) - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw reader.fail() }
                    out.append(contentsOf: UTF8.encode(unicode)!)
                default: out.append(kind)  // " \ /
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// A number in JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
        mutating func number() throws(Malformed) -> (Double, Int?) {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else { throw fail() }
            position += 1
            if first != UInt8(ascii: "0") { digits() }
            var plain = true
            if current == UInt8(ascii: ".") {
                plain = false
                position += 1
                guard digits() > 0 else { throw fail() }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                plain = false
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw fail() }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if plain, let integer = Int(text) { return (Double(integer), integer) }
            // Out of Double's range is refused, as Foundation's parser refuses it.
            guard let double = Double(text), double.isFinite else { throw fail() }
            let exact = double.rounded() == double && abs(double) < 0x1p63 ? Int(double) : nil
            return (double, exact)
        }

        @discardableResult
        mutating func digits() -> Int {
            let start = position
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
            return position - start
        }
    }
}
