import Foundation

/// A value written with its members in a set order, as JSON or as MessagePack: for venues that sign a hash of
/// the MessagePack of what they execute (Hyperliquid), where the order of members is part of the signed bytes.
/// Only the kinds such payloads use: maps, arrays, strings, unsigned integers, booleans and null.
indirect enum OrderedWire: Equatable, Sendable {
    case map([(String, OrderedWire)])
    case array([OrderedWire])
    case string(String)
    case uint(UInt64)
    case bool(Bool)
    case null

    static func == (a: OrderedWire, b: OrderedWire) -> Bool {
        switch (a, b) {
        case (.map(let x), .map(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.array(let x), .array(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.uint(let x), .uint(let y)): x == y
        case (.bool(let x), .bool(let y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// JSON, members in order, no blanks.
    var json: String {
        switch self {
        case .map(let members): "{" + members.map { Self.quoted($0.0) + ":" + $0.1.json }.joined(separator: ",") + "}"
        case .array(let items): "[" + items.map(\.json).joined(separator: ",") + "]"
        case .string(let text): Self.quoted(text)
        case .uint(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        case .null: "null"
        }
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// MessagePack in its shortest forms (strings as str 8/16/32, integers in the fewest bytes), as the
    /// reference encoders write it.
    var messagePack: [UInt8] {
        var out: [UInt8] = []
        append(to: &out)
        return out
    }

    func append(to out: inout [UInt8]) {
        switch self {
        case .map(let members):
            Self.header(members.count, fix: 0x80, fixLimit: 16, wide: (0xde, 0xdf), to: &out)
            for (key, value) in members {
                OrderedWire.string(key).append(to: &out)
                value.append(to: &out)
            }
        case .array(let items):
            Self.header(items.count, fix: 0x90, fixLimit: 16, wide: (0xdc, 0xdd), to: &out)
            for item in items { item.append(to: &out) }
        case .string(let text):
            let bytes = Array(text.utf8)
            if bytes.count < 32 {
                out.append(0xa0 | UInt8(bytes.count))
            } else if bytes.count < 256 {
                out += [0xd9, UInt8(bytes.count)]
            } else {
                Self.header(bytes.count, fix: 0, fixLimit: 0, wide: (0xda, 0xdb), to: &out)
            }
            out += bytes
        case .uint(let value):
            switch value {
            case 0..<128: out.append(UInt8(value))
            case 128..<256: out += [0xcc, UInt8(value)]
            case 256..<65_536: out += [0xcd] + Self.bigEndian(value, bytes: 2)
            case 65_536..<4_294_967_296: out += [0xce] + Self.bigEndian(value, bytes: 4)
            default: out += [0xcf] + Self.bigEndian(value, bytes: 8)
            }
        case .bool(let value): out.append(value ? 0xc3 : 0xc2)
        case .null: out.append(0xc0)
        }
    }

    /// A map's, array's or long string's length: in the type byte when under `fixLimit`, else 16 or 32 bits.
    static func header(_ count: Int, fix: UInt8, fixLimit: Int, wide: (UInt8, UInt8), to out: inout [UInt8]) {
        if count < fixLimit {
            out.append(fix | UInt8(count))
        } else if count < 65_536 {
            out += [wide.0] + bigEndian(UInt64(count), bytes: 2)
        } else {
            out += [wide.1] + bigEndian(UInt64(count), bytes: 4)
        }
    }

    static func bigEndian(_ value: UInt64, bytes: Int) -> [UInt8] {
        (0..<bytes).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }
}
