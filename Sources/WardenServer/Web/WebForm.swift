import Foundation
import Hummingbird

/// An `application/x-www-form-urlencoded` body, read whole (forms are small).
struct WebForm: Sendable {
    private var pairs: [(String, String)] = []

    static let maxBytes = 64 * 1024

    init(_ request: Request) async throws {
        var request = request
        let buffer = try await request.collectBody(upTo: Self.maxBytes)
        self.init(String(buffer: buffer))
    }

    /// Any text: a body that is not valid form encoding (a `text/plain` form's `a=b c`, a stray `%`) gives
    /// fields as written, which no check accepts (a CSRF token, a code), never a failure.
    init(_ text: String) {
        pairs = text.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (Self.decode(parts[0]), parts.count > 1 ? Self.decode(parts[1]) : "")
        }
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    subscript(name: String) -> String? { pairs.first { $0.0 == name }?.1 }

    /// The trimmed value, nil when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = self[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
}
