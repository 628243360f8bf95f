import Foundation

/// Wall-clock time as stored in the database: Unix milliseconds.
public enum Clock {
    public static func nowMillis() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
