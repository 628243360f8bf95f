import Foundation
import WardenVenues

/// Where a venue's nonces start: the clock in nanoseconds, the finest scale clients use (others count
/// milliseconds, microseconds or 10 ns), so that a key's nonces stay above those any earlier tool made;
/// in milliseconds for a venue that wants its nonces near its clock (Hyperliquid).
enum Nonces {
    static func clock(_ now: Date = Date()) -> Int64 { Int64((now.timeIntervalSince1970 * 1_000_000_000).rounded(.down)) }

    /// The least nonce `venue` may be given now: the clock in its unit.
    static func floor(for venue: any ExchangeVenue, now: Date = Date()) -> Int64 {
        venue.noncesInMilliseconds ? Int64((now.timeIntervalSince1970 * 1000).rounded(.down)) : clock(now)
    }
}
