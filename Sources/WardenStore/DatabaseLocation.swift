import Foundation

/// Where the store lives, parsed from `--database` / `WARDEN_DATABASE_URL`.
public enum DatabaseLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// Accepts `sqlite:///absolute/path.db`, `sqlite://relative/path.db` and `postgres://…` (or `postgresql://…`).
    public init(url: String) throws(StoreError) {
        if url.hasPrefix("sqlite://") {
            let path = String(url.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw .invalidDatabaseURL("sqlite URL has no path (use sqlite:///absolute/path/warden.db)") }
            self = .sqlite(path: path)
        } else if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard URL(string: url)?.host != nil else {
                throw .invalidDatabaseURL("postgres URL has no host (use postgres://user:password@host:5432/database)")
            }
            self = .postgres(url: url)
        } else {
            throw .invalidDatabaseURL("unsupported scheme: use sqlite:///path/warden.db or postgres://user:password@host:5432/database")
        }
    }

    /// A description safe to log: the PostgreSQL password is masked.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite://\(path)"
        case .postgres(let url):
            guard var parts = URLComponents(string: url) else { return "postgres://…" }
            if parts.password != nil { parts.password = "****" }
            return parts.string ?? "postgres://…"
        }
    }
}
