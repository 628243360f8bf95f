@preconcurrency import AsyncKit
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit
import Synchronization

/// A connection pool that lends connections as `SQLDatabase` sessions.
protocol ConnectionLender: Sendable {
    func withConnection<T: Sendable>(deadline: Duration, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    func shutdown() async throws
    /// Lets the connections go without waiting: for a store dropped without `shutdown`.
    func abandon()
}

// The pool guards its state with its own locks; AsyncKit predates Sendable annotations.
struct PooledLender<Source: ConnectionPoolSource>: ConnectionLender, @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<Source>
    let logger: Logger
    let session: @Sendable (Source.Connection) -> any SQLDatabase
    var threadPool: NIOThreadPool? = nil
    /// How a body that uses its connection past its deadline is stopped (PostgreSQL: the connection is
    /// closed; a SQLite connection cannot be closed under a running query, its busy timeout bounds it).
    var interrupt: (@Sendable (Source.Connection) -> Void)? = nil

    func withConnection<T: Sendable>(deadline: Duration, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    {
        let connection: Source.Connection
        do { connection = try await pool.requestConnection(logger: logger).get() } catch {
            throw StoreError.unavailable("no connection to the store: \(error)")
        }
        // A closed connection is dropped by the pool when released, and a new one made when next needed.
        defer { pool.releaseConnection(connection, logger: logger) }
        let session = session(connection)
        guard let interrupt else { return try await body(session) }
        // The caller does not wait for a body past the deadline: its connection is closed, which fails
        // what it awaits, and the body ends on its own (the driver may never answer a query sent on a
        // connection that has just closed, so waiting for it could be for ever).
        let outcome = FirstOutcome<T>()
        let held = PooledConnection(value: connection)  // the pool's connections are safe to close from any thread
        return try await withCheckedThrowingContinuation { waiter in
            outcome.set(waiter)
            let work = Mutex<Task<Void, Never>?>(nil)
            let timer = Task {
                try? await Task.sleep(for: deadline)
                guard outcome.claim() else { return }
                logger.warning("a store operation passed its deadline: its connection is closed")
                // Closed before the caller goes on (and the pool takes it back), so nobody else gets it open.
                interrupt(held.value)
                work.withLock { $0?.cancel() }
                outcome.deliver(.failure(StoreError.timedOut(deadline)))
            }
            work.withLock {
                $0 = Task {
                    do { outcome.give(.success(try await body(session))) } catch { outcome.give(.failure(error)) }
                    timer.cancel()
                }
            }
        }
    }

    func shutdown() async throws {
        try await pool.shutdownAsync()
        try await threadPool?.shutdownGracefully()
    }

    func abandon() {
        logger.error("a store was dropped without being closed: its connections are closed now")
        let threadPool = threadPool
        pool.shutdownGracefully { _ in threadPool?.shutdownGracefully { _ in } }
    }
}

struct PooledConnection<Connection>: @unchecked Sendable {
    let value: Connection
}

/// The first of a body's result and its deadline, handed to the one waiting for it.
final class FirstOutcome<T: Sendable>: Sendable {
    private let state = Mutex<(waiter: CheckedContinuation<T, any Error>?, given: Result<T, any Error>?, claimed: Bool)>((nil, nil, false))

    func set(_ waiter: CheckedContinuation<T, any Error>) {
        let ready = state.withLock { s -> Result<T, any Error>? in
            guard let given = s.given else { s.waiter = waiter; return nil }
            return given
        }
        if let ready { waiter.resume(with: ready) }
    }

    /// True for the first caller only, who must then `deliver`.
    func claim() -> Bool {
        state.withLock { s in
            defer { s.claimed = true }
            return !s.claimed
        }
    }

    func deliver(_ result: Result<T, any Error>) {
        let waiter = state.withLock { s -> CheckedContinuation<T, any Error>? in
            guard let waiter = s.waiter else { s.given = result; return nil }
            s.waiter = nil
            return waiter
        }
        waiter?.resume(with: result)
    }

    func give(_ result: Result<T, any Error>) {
        if claim() { deliver(result) }
    }
}

/// SQLite connections with the pragmas Warden relies on set on each one.
struct SQLiteSource: ConnectionPoolSource {
    // WAL lets readers run beside the writer; FULL makes every commit durable.
    // busy_timeout replaces the driver's busy handler (which retries forever without sleeping),
    // and bounds a wait for another process's lock to `Database.deadline`.
    static let pragmas = [
        "PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON",
    ]
    let path: String
    /// SQLite calls block a thread, and a connection waiting for the write lock blocks one for a while:
    /// this pool has more threads than there are connections, so the lock holder always gets one.
    let threadPool: NIOThreadPool

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        SQLiteConnection.open(storage: .file(path: path), threadPool: threadPool, logger: logger, on: eventLoop)
            .flatMap { connection in
                return Self.pragmas.reduce(eventLoop.makeSucceededVoidFuture()) { future, pragma in
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

/// One pooled connection lent as an `SQLDatabase`: everything but running a query is its driver's.
protocol PooledSession: SQLDatabase {
    var base: any SQLDatabase { get }
}

extension PooledSession {
    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    /// Already one connection.
    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}

extension PostgresConnection {
    func session() -> any SQLDatabase { PostgresSession(connection: self, base: sql(queryLogLevel: nil)) }
}

/// A pooled PostgreSQL connection that refuses queries once it is closed: the driver drops a query
/// sent on a closed connection without ever answering it (a rollback after a deadline closed it).
struct PostgresSession: PooledSession {
    let connection: PostgresConnection
    let base: any SQLDatabase

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        guard !connection.isClosed else {
            return eventLoop.makeFailedFuture(StoreError.unavailable("the connection to the store is closed"))
        }
        return base.execute(sql: query, onRow)
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        guard !connection.isClosed else { throw StoreError.unavailable("the connection to the store is closed") }
        try await base.execute(sql: query, onRow)
    }
}
