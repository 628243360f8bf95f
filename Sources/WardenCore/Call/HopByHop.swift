import Foundation
import HTTPTypes

/// Fields that concern one connection rather than the message (RFC 9110 §7.6.1).
public enum HopByHop {
    /// `fields` without the fields that `incoming`'s Connection fields name as connection options: a
    /// client's `Connection: close, X-Secret-Hop` means X-Secret-Hop was for Warden, the next hop,
    /// and must not reach the upstream. `close` and `keep-alive` name no field; Content-Length is kept
    /// (it frames the body the upstream client sends, which sets it again anyway). Without an option
    /// that names another field (`Connection: keep-alive`, no Connection field), `fields` comes back as
    /// it is and nothing is allocated.
    public static func removingConnectionOptions(from fields: HTTPFields, namedIn incoming: HTTPFields) -> HTTPFields {
        guard incoming.contains(.connection) else { return fields }
        var out = fields
        for field in incoming where field.name == .connection {
            let value = field.value.utf8
            var start = value.startIndex
            while start < value.endIndex {
                let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
                var token = value[start..<end]
                while let first = token.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { token = token.dropFirst() }
                while let last = token.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { token = token.dropLast() }
                start = end == value.endIndex ? end : value.index(after: end)
                guard !token.isEmpty, !isKept(token), let name = HTTPField.Name(String(Substring(token))) else { continue }
                out[name] = nil
            }
        }
        return out
    }

    /// The first field `incoming`'s Connection fields name that describes the content (`Content-Type`,
    /// `Content-Encoding`, … but `Content-Length`, which is kept): RFC 9110 forbids naming such a field, and
    /// removing it would make the upstream read the body otherwise than Warden checked it.
    public static func namedContentField(in incoming: HTTPFields) -> String? {
        for field in incoming where field.name == .connection {
            for option in field.value.split(separator: ",") {
                let name = option.trimmingCharacters(in: .whitespaces).lowercased()
                if name.hasPrefix("content-") && name != "content-length" { return name }
            }
        }
        return nil
    }

    /// Options that name no field to remove: `close`, `keep-alive`, and `content-length`.
    private static func isKept(_ token: Substring.UTF8View) -> Bool {
        for kept in ["close", "keep-alive", "content-length"] where token.count == kept.utf8.count {
            if token.elementsEqual(kept.utf8, by: { $0 == $1 || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") && $0 | 0x20 == $1) }) {
                return true
            }
        }
        return false
    }
}
