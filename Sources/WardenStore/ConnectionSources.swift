@preconcurrency import AsyncKit
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// A connection pool that lends connections as `SQLDatabase` sessions.
protocol ConnectionLender: Sendable {
    func withConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func shutdown() async throws
}

// The pool guards its state with its own locks; AsyncKit predates Sendable annotations.
struct PooledLender<Source: ConnectionPoolSource>: ConnectionLender, @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<Source>
    let logger: Logger
    let session: @Sendable (Source.Connection) -> any SQLDatabase
    var threadPool: NIOThreadPool? = nil
    /// How long a body may use a connection before `close` ends what it is waiting for (PostgreSQL;
    /// a SQLite connection cannot be closed under a running query, its busy timeout bounds it instead).
    var interrupt: (after: Duration, close: @Sendable (Source.Connection) -> Void)? = nil

    func withConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let connection: Source.Connection
        do { connection = try await pool.requestConnection(logger: logger).get() } catch {
            throw StoreError.unavailable("no connection to the store: \(error)")
        }
        // A closed connection is dropped by the pool when released, and a new one made when next needed.
        defer { pool.releaseConnection(connection, logger: logger) }
        guard let interrupt else { return try await body(session(connection)) }
        let session = session(connection)
        // The group ends only once both children have, so `body` never outlives this call.
        return try await withoutActuallyEscaping(body) { body in
            try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { .some(try await body(session)) }
                group.addTask {
                    try? await Task.sleep(for: interrupt.after)
                    return nil  // also when cancelled, which only happens once the body has finished
                }
                let first = try await group.next()!
                group.cancelAll()
                if let result = first { return result }
                interrupt.close(connection)
                _ = try? await group.next()  // the body, failing now that its connection is closed
                throw StoreError.timedOut(interrupt.after)
            }
        }
    }

    func shutdown() async throws {
        try await pool.shutdownAsync()
        try await threadPool?.shutdownGracefully()
    }
}

/// SQLite connections with the pragmas Warden relies on set on each one.
struct SQLiteSource: ConnectionPoolSource {
    let path: String
    /// SQLite calls block a thread, and a connection waiting for the write lock blocks one for a while:
    /// this pool has more threads than there are connections, so the lock holder always gets one.
    let threadPool: NIOThreadPool

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool, logger: logger, on: eventLoop)
            .flatMap { connection in
                // WAL lets readers run beside the writer; FULL makes every commit durable.
                // busy_timeout replaces the driver's busy handler (which retries forever without sleeping),
                // and bounds a wait for another process's lock to `Database.deadline`.
                let pragmas = [
                    "PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
                ]
                return pragmas.reduce(eventLoop.makeSucceededVoidFuture()) { future, pragma in
                    future.flatMap { connection.query(pragma).map { _ in } }
                }
                .map { connection }
                .flatMapErrorThrowing { error in
                    _ = connection.close()
                    throw error
                }
            }
    }
}

extension SQLiteConnection {
    func session() -> any SQLDatabase { SQLiteSession(connection: self, base: sql(queryLogLevel: nil)) }
}

/// A pooled SQLite connection lent as an `SQLDatabase` that keeps the connection at hand, so the hottest
/// write (the audit's batches) can bind `SQLiteData` directly instead of building SQLKit expressions.
struct SQLiteSession: SQLDatabase {
    let connection: SQLiteConnection
    let base: any SQLDatabase

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        base.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        try await base.execute(sql: query, onRow)
    }

    /// Already one connection.
    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

extension PostgresConnection {
    func session() -> any SQLDatabase { sql(queryLogLevel: nil) }
}
