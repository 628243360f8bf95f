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

    init(_ text: String) {
        var parts = URLComponents()
        parts.percentEncodedQuery = text.replacingOccurrences(of: "+", with: "%20")
        pairs = (parts.queryItems ?? []).map { ($0.name, $0.value ?? "") }
    }

    subscript(name: String) -> String? { pairs.first { $0.0 == name }?.1 }

    /// The trimmed value, nil when absent or blank.
    func text(_ name: String) -> String? {
        guard let value = self[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else { return nil }
        return value
    }

    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
}
