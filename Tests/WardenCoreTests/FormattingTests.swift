import Foundation
import Testing
@testable import WardenCore

/// The hand-written formats on the gateway's path: audit detail JSON and fixed-point figures.
@Suite struct FormattingTests {
    @Test func auditDetailIsJSONWithSortedKeysForAnyText() throws {
        let detail = ["z": "plain", "a": "quote \" backslash \\ slash /", "m": "line\nbreak\ttab\r\u{0}\u{1f}", "é": "naïve 🔑"]
        let text = AuditLog.encode(detail)
        #expect(text.hasPrefix("{\"a\":"))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(parsed == detail)
        #expect(!text.utf8.contains(0))
        #expect(AuditLog.encode([:]) == "{}")
    }

    @Test(arguments: [
        (0.0, 1, "0.0"), (2.25, 1, "2.3"), (1234.5, 1, "1234.5"), (0.000123, 6, "0.000123"), (1.5, 6, "1.500000"),
        (-0.25, 2, "-0.25"), (-0.0001, 2, "0.00"), (42, 0, "42"),
    ])
    func fixedPointFigures(value: Double, places: Int, expected: String) {
        #expect(Decimals.fixed(value, places: places) == expected)
    }
}
