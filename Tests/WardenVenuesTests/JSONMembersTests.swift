import Foundation
import Testing
@testable import WardenVenues

/// The gateway reads the fields it prices a call by with `JSONMembers`: it must read what the venue
/// will read, and refuse what is not JSON rather than guess.
@Suite struct JSONMembersTests {
    func read(_ text: String, _ names: Set<String>) throws -> [String: JSONMember] {
        try JSONMembers.read(Data(text.utf8), names: names)
    }

    @Test func scalarsAreRead() throws {
        let text = #"""
            { "s": "a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00x", "i": -42, "f": 12.0, "e": 1.2e1, "h": 1.5,
              "huge": 123456789012345678901234567890, "t": true, "n": null, "o": {"k": [1, {"x": "y"}]}, "a": [1, 2], "skipped": "\ud83d\ude00" }
            """#
        let fields = try read(text, ["s", "i", "f", "e", "h", "huge", "t", "n", "o", "a", "absent"])
        #expect(fields["s"] == .string("a\"b\\c/d\u{08}\u{0C}\n\r\té😀x"))
        #expect(fields["i"] == .number(-42, integer: -42))
        #expect(fields["f"]?.integer == 12 && fields["e"]?.integer == 12)
        #expect(fields["h"] == .number(1.5, integer: nil))
        #expect(fields["huge"]?.integer == nil)
        #expect(fields["t"] == .bool(true) && fields["n"] == .null && fields["a"] == .array)
        #expect(fields["absent"] == nil && fields["skipped"] == nil)
        guard case .object(let range)? = fields["o"] else { Issue.record("o is not an object"); return }
        let inner = try Data(text.utf8).withUnsafeBytes { try JSONMembers.read($0, range: range, names: ["k"]) }
        #expect(inner["k"] == .array)
    }

    @Test func escapedNamesMatchAndTheLastOfTwoWins() throws {
        let fields = try read(#"{"model": "cheap", "mod\u0065l": "dear", "max_tokens": 1, "max_tokens": 9000}"#, ["model", "max_tokens"])
        #expect(fields["model"]?.string == "dear")
        #expect(fields["max_tokens"]?.integer == 9000)
        #expect(try read("{}", ["a"]).isEmpty)
        #expect(try read(" \r\n\t{ \"a\" : 1 } \n", ["a"])["a"]?.integer == 1)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1]", "\"s\"", "1", "null", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":1,}", "{,}",
        "{\"a\":1 \"b\":2}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":-}", "{\"a\":+1}", "{\"a\":1e}", "{\"a\":1e+}",
        "{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":falsey}", "{\"a\":\"x}",
        "{\"a\":\"\u{01}\"}", "{\"a\":\"tab\there\"}", "{\"a\":\"\\q\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12G4\"}", "{\"a\":[1,]}",
        "{\"a\":[1 2]}", "{\"a\":{\"b\"}}", "{\"a\":{\"b\":1,}}", "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":1}}", "{\"a\":[}", "{\"a\":]}",
        "{\"a\":1e400}", "{\"a\":-1e400}", "{\"z\":\"\\ud800\"}", "{\"z\":\"\\udc00\\ud800\"}", "{\"model\":\"\\ud800\"}",
        "{\"model\":\"\\ud800\\u0041\"}", "{\"model\":\"\\udc00\"}",
    ])
    func malformedDocumentsAreRefused(text: String) {
        #expect(throws: JSONMembers.Malformed.self) { try read(text, ["a", "model"]) }
    }

    /// A lone continuation byte, overlong forms, an encoded surrogate, past U+10FFFF, a cut sequence, a byte outside a string.
    @Test(
        arguments: [[0x80], [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFF]]
            as [[UInt8]])
    func malformedUTF8IsRefused(sequence: [UInt8]) throws {
        let wrap = { (inner: [UInt8]) in Array(#"{"a":""#.utf8) + inner + Array(#""}"#.utf8) }
        #expect(try read(String(decoding: wrap(Array("€😀".utf8)), as: UTF8.self), ["a"])["a"]?.string == "€😀")
        #expect(throws: JSONMembers.Malformed.self) { try JSONMembers.read(Data(wrap(sequence)), names: ["a"]) }
        #expect(throws: JSONMembers.Malformed.self) { try JSONMembers.read(Data(wrap(sequence)), names: []) }
        #expect(throws: JSONMembers.Malformed.self) { try JSONMembers.read(Data(Array(#"{"a":1"#.utf8) + sequence + [0x7D]), names: []) }
    }

    @Test func nestingIsBounded() throws {
        let deep = { (n: Int) in "{\"a\":" + String(repeating: "[", count: n) + String(repeating: "]", count: n) + "}" }
        #expect(try read(deep(JSONMembers.maxDepth - 1), ["a"])["a"] == .array)
        #expect(throws: JSONMembers.Malformed.self) { try read(deep(JSONMembers.maxDepth + 1), ["a"]) }
        #expect(throws: JSONMembers.Malformed.self) { try read(deep(100_000), ["a"]) }
    }

    /// Random documents, written with random spacing and escapes: every one is read back as written,
    /// and Foundation's parser agrees that each is JSON. Then single-byte damage: whatever is still
    /// read must also be JSON to Foundation (the reader is never the more lenient of the two).
    @Test func randomDocumentsReadBackAndDamageIsNeverMoreLenientThanFoundation() throws {
        var random = SplitMix(seed: 0x5EED)
        var damagedAccepted = 0
        for _ in 0..<400 {
            var members: [(String, Value)] = []
            for i in 0..<random.next(upTo: 8) { members.append(("k\(i)\(random.text(max: 3))", Value.random(&random, depth: 0))) }
            let text = Value.object(members).json(&random)
            #expect((try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil, "\(text)")
            let names = Set(members.map(\.0))
            let fields = try read(text, names)
            var expected: [String: Value] = [:]
            for (name, value) in members { expected[name] = value }
            for (name, value) in expected { #expect(value.matches(fields[name]), "\(name) in \(text)") }

            var bytes = Array(text.utf8)
            let alphabet = Array("{}[]\",:\\ 0123456789.eE+-tfnrulaxu".utf8)
            for _ in 0..<4 {
                let at = random.next(upTo: bytes.count)
                switch random.next(upTo: 3) {
                case 0: bytes.remove(at: at)
                case 1: bytes.insert(alphabet[random.next(upTo: alphabet.count)], at: at)
                default: bytes[at] = alphabet[random.next(upTo: alphabet.count)]
                }
                guard !bytes.isEmpty else { break }
                if (try? JSONMembers.read(Data(bytes), names: names)) != nil {
                    damagedAccepted += 1
                    #expect((try? JSONSerialization.jsonObject(with: Data(bytes))) != nil, "\(String(decoding: bytes, as: UTF8.self))")
                }
            }
        }
        #expect(damagedAccepted > 50)  // the damage check saw accepted documents, not only refusals
    }

    indirect enum Value {
        case string(String), integer(Int), double(Double), bool(Bool), null, array([Value]), object([(String, Value)])

        static func random(_ r: inout SplitMix, depth: Int) -> Value {
            switch r.next(upTo: depth > 3 ? 5 : 7) {
            case 0: return .string(r.text(max: 12))
            case 1: return .integer(Int(bitPattern: UInt(r.raw())) >> r.next(upTo: 64))
            case 2: return .double(Double(Int(r.raw() % 2_000_000)) / 64 - 10_000)
            case 3: return .bool(r.next(upTo: 2) == 0)
            case 4: return .null
            case 5: return .array((0..<r.next(upTo: 4)).map { _ in random(&r, depth: depth + 1) })
            default: return .object((0..<r.next(upTo: 4)).map { i in ("n\(i)", random(&r, depth: depth + 1)) })
            }
        }

        func json(_ r: inout SplitMix) -> String {
            let blank = { (r: inout SplitMix) in [" ", "", "\n", "\t ", ""][r.next(upTo: 5)] }
            switch self {
            case .string(let s): return Self.quoted(s, &r)
            case .integer(let i): return String(i)
            case .double(let d): return r.next(upTo: 2) == 0 ? "\(d)" : String(format: "%.6e", d)
            case .bool(let b): return b ? "true" : "false"
            case .null: return "null"
            case .array(let items): return "[" + blank(&r) + items.map { $0.json(&r) + blank(&r) }.joined(separator: "," + blank(&r)) + "]"
            case .object(let members):
                return "{" + blank(&r)
                    + members.map { Self.quoted($0.0, &r) + blank(&r) + ":" + blank(&r) + $0.1.json(&r) + blank(&r) }
                    .joined(separator: "," + blank(&r)) + "}"
            }
        }

        static func quoted(_ s: String, _ r: inout SplitMix) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += r.next(upTo: 2) == 0 ? "\\\\" : "\\u005C"
                case "\n": out += "\\n"
                case "\u{01}": out += "\\u0001"
                default:
                    if r.next(upTo: 4) == 0 {
                        for unit in String(scalar).utf16 { out += String(format: "\\u%04x", unit) }  // surrogate pairs included
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }

        func matches(_ member: JSONMember?) -> Bool {
            switch (self, member) {
            case (.string(let s), .string(let t)?): s == t
            case (.integer(let i), .number(let d, let integer)?): integer == i && d == Double(i)
            case (.double(let d), .number(let e, _)?): abs(d - e) <= abs(d) * 1e-6
            case (.bool(let b), .bool(let c)?): b == c
            case (.null, .null?), (.array, .array?), (.object, .object?): true
            default: false
            }
        }
    }

    /// A seeded generator, so the random documents are the same on every run.
    struct SplitMix {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func raw() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func next(upTo bound: Int) -> Int { bound <= 0 ? 0 : Int(raw() % UInt64(bound)) }
        mutating func text(max: Int) -> String {
            let pool: [Unicode.Scalar] = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\u{01}", "é", "€", "😀", "\u{FFFF}"]
            var s = ""
            for _ in 0..<next(upTo: max + 1) { s.unicodeScalars.append(pool[next(upTo: pool.count)]) }
            return s
        }
    }
}
