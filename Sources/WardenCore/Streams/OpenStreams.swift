import Synchronization

/// How many streams each key family (or, for a keyless stream, each client address) holds open on this
/// server: each holds a venue connection on the owner's credential, so their number is bounded
/// (`[gateway] stream_max_per_key`).
public final class OpenStreams: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    public init() {}

    /// Takes a place for `holder`; false when it already holds `limit`.
    func take(_ holder: String, limit: Int) -> Bool {
        counts.withLock { counts in
            let held = counts[holder, default: 0]
            guard held < limit else { return false }
            counts[holder] = held + 1
            return true
        }
    }

    func give(_ holder: String) {
        counts.withLock { counts in
            let held = counts[holder, default: 0]
            counts[holder] = held > 1 ? held - 1 : nil
        }
    }
}
