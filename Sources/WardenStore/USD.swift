import Foundation

/// An amount of US dollars, exact to the micro-dollar: caps, budgets, notionals, reservations and spend.
/// Never negative and never above `limit`: an amount is checked when it is made, so every sum of amounts
/// is a sum of bounded non-negative integers (and the store's columns refuse a negative one too).
public struct USD: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public let micros: Int64

    /// A billion dollars: far above any cap, and small enough that thousands of amounts sum without overflow.
    public static let limit = USD(checked: 1_000_000_000 * 1_000_000)
    public static let zero = USD(checked: 0)
    static let perDollar: Int64 = 1_000_000

    private init(checked micros: Int64) { self.micros = micros }

    /// `nil` when `micros` is negative or above `limit`.
    public init?(micros: Int64) {
        guard micros >= 0, micros <= Self.limit.micros else { return nil }
        self.micros = micros
    }

    /// A value worked out by the policy (a notional, a worst-case cost), rounded up to the micro-dollar so
    /// that it never falls short of what it stands for. `nil` when negative, not a number, or above `limit`.
    public init?(roundingUp value: Decimal) {
        guard !value.isNaN, value >= 0 else { return nil }
        var scaled = value * Decimal(Self.perDollar)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .up)
        guard rounded <= Decimal(Self.limit.micros) else { return nil }
        self.init(checked: NSDecimalNumber(decimal: rounded).int64Value)
    }

    /// A limit a person set (a cap, a budget), rounded down to the micro-dollar so it never grows.
    public init?(limit value: Double) {
        guard value.isFinite, value >= 0 else { return nil }
        let scaled = (value * Double(Self.perDollar) + 1e-6).rounded(.down)
        guard scaled <= Double(Self.limit.micros) else { return nil }
        self.init(checked: Int64(scaled))
    }

    /// A limit a person set, exactly as written, rounded down to the micro-dollar.
    public init?(limit value: Decimal) {
        guard !value.isNaN, value >= 0, value <= Self.limit.decimal else { return nil }
        var scaled = value * Decimal(Self.perDollar)
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .down)
        self.init(checked: NSDecimalNumber(decimal: rounded).int64Value)
    }

    /// Whole dollars.
    public init(dollars: Int) { self.init(checked: Int64(dollars) * Self.perDollar) }

    public var decimal: Decimal { Decimal(micros) / Decimal(Self.perDollar) }

    /// For display and JSON only; decisions compare micro-dollars.
    public var double: Double { Double(micros) / Double(Self.perDollar) }

    public static func < (a: USD, b: USD) -> Bool { a.micros < b.micros }

    /// A JSON number, exact (`12.5`).
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(decimal)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let value = USD(limit: try container.decode(Decimal.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "an amount of USD from 0 to \(USD.limit)")
        }
        self = value
    }

    /// Sums of bounded amounts cannot overflow 64 bits; `limit` caps the result all the same.
    public static func + (a: USD, b: USD) -> USD { USD(checked: min(a.micros + b.micros, limit.micros)) }

    /// The difference, or zero when `b` is larger.
    public func minus(_ b: USD) -> USD { USD(checked: Swift.max(0, micros - b.micros)) }

    /// `12`, `0.5`, `0.000001`: the fewest decimals that are exact.
    public var description: String {
        let whole = micros / Self.perDollar, fraction = micros % Self.perDollar
        guard fraction > 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 6 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
