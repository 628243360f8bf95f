import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO

/// Hears every change to what the gateway decides on the moment it commits, from any process on the same
/// PostgreSQL database (`LISTEN` on `StoreRevision.channel`), over a connection of its own outside the
/// pool. On SQLite there is nothing to listen to: the poll alone finds changes.
public struct RevisionListener: Sendable {
    let configuration: PostgresConnection.Configuration
    let logger: Logger

    /// Nil for a store that cannot notify (SQLite).
    public init?(_ database: Database, logger: Logger) {
        guard case .postgres(let url) = database.location, let sql = try? SQLPostgresConfiguration(url: url) else { return nil }
        configuration = sql.coreConfiguration
        self.logger = logger
    }

    /// Calls `changed` for each notification until the task is cancelled. A lost connection is made again
    /// (after a second, then doubling to 30 s); `changed` is called on each (re)connection too, since
    /// changes made while nobody listened were not heard.
    public func run(_ changed: @escaping @Sendable () async -> Void) async {
        var backoff = Duration.seconds(1)
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: attempt, logger: logger)
                defer { Task { try? await connection.close() } }
                try await connection.listen(on: StoreRevision.channel) { notifications in
                    backoff = .seconds(1)
                    await changed()
                    for try await _ in notifications { await changed() }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("revision notifications lost; listening again", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(30))
        }
    }
}
