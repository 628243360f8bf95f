/// Failures of the persistence layer, worded for the person running Warden.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    case invalidDatabaseURL(String)
    case unavailable(String)
    case migrationFailed(version: Int, reason: String)
    case newerSchema(found: Int, known: Int)
    case conflict(String)
    /// An amount that must never enter a ledger (zero or negative where only a positive one means anything).
    case invalidAmount(String)
    /// A store a boot must not use (an empty or foreign file, one that cannot be written), and why.
    case unusable(String)
    /// An operation that did not finish within its deadline.
    case timedOut(Duration)

    public var description: String {
        switch self {
        case .invalidDatabaseURL(let reason): "invalid database URL: \(reason)"
        case .unavailable(let reason): "database unavailable: \(reason)"
        case .migrationFailed(let version, let reason): "migration \(version) failed: \(reason)"
        case .newerSchema(let found, let known):
            "the database has schema version \(found), newer than this warden knows (\(known)); upgrade warden"
        case .conflict(let reason): "conflict: \(reason)"
        case .invalidAmount(let reason): "invalid amount: \(reason)"
        case .unusable(let reason): reason
        case .timedOut(let limit): "the store did not answer within \(limit)"
        }
    }
}
