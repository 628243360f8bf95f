import Foundation

/// Where a venue's nonces start: the clock in nanoseconds, the finest scale clients use (others count
/// milliseconds, microseconds or 10 ns), so that a key's nonces stay above those any earlier tool made.
enum Nonces {
    static func clock(_ now: Date = Date()) -> Int64 { Int64((now.timeIntervalSince1970 * 1_000_000_000).rounded(.down)) }
}
