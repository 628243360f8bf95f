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

    func withConnection<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let connection = try await pool.requestConnection(logger: logger).get()
        do {
            let result = try await body(session(connection))
            pool.releaseConnection(connection, logger: logger)
            return result
        } catch {
            pool.releaseConnection(connection, logger: logger)
            throw error
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
                // busy_timeout replaces the driver's busy handler (which retries forever without sleeping).
                let pragmas = [
                    "PRAGMA busy_timeout = 15000", "PRAGMA journal_mode = WAL",
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
