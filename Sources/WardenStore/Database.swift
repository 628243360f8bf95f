@preconcurrency import AsyncKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit
import Synchronization

/// The SQL engines Warden runs on.
public enum SQLDialectKind: String, Sendable {
    case sqlite, postgres
}

/// A pooled connection to the store, with transactions that behave alike on SQLite and PostgreSQL.
/// Queries never log their bound values (they may hold ciphertext or hashes).
///
/// Every operation ends within `deadline`, so a store that stalls (a SQLite file locked by another
/// process, a frozen PostgreSQL) makes callers fail, never wait for ever: waiting for a connection and
/// for SQLite's write lock are bounded by it; on PostgreSQL a query that outlives it has its connection
/// closed (the pool replaces it); on SQLite the busy timeout bounds a query that waits for another
/// process's lock.
public final class Database: Sendable {
    /// How long any store operation may take, waits included.
    public static let deadline = Duration.seconds(5)
    public let dialect: SQLDialectKind
    public let location: DatabaseLocation
    private let lender: any ConnectionLender
    /// SQLite has one writer at a time: in-process writers queue here instead of sleeping in SQLite.
    private let writerLock = AsyncLock()
    /// On SQLite, the connection and thread every write transaction runs on (SQLiteWriter.swift).
    private let writer: SQLiteWriter?
    private let closed = Atomic<Bool>(false)
    /// Operations under way: a close waits for them, so the pool is never shut down under one.
    private let active = Atomic<Int>(0)
    /// Where write transactions run, for a task that does little else: SQLite's writer thread; nil on PostgreSQL.
    public var writeExecutor: (any TaskExecutor)? { writer?.executor }
    /// Whether `close` was called: nothing should wait on this store any more.
    public var isClosed: Bool { closed.load(ordering: .relaxed) }

    private init(dialect: SQLDialectKind, location: DatabaseLocation, lender: any ConnectionLender, writer: SQLiteWriter? = nil) {
        self.dialect = dialect
        self.location = location
        self.lender = lender
        self.writer = writer
    }

    /// Opens a pool. For SQLite the file is created with mode 0600 (its directory must exist).
    public static func open(_ location: DatabaseLocation, logger: Logger, maxConnections: Int = 8) throws(StoreError) -> Database {
        let group = MultiThreadedEventLoopGroup.singleton
        let perLoop = max(1, maxConnections / max(1, System.coreCount))
        switch location {
        case .sqlite(let path):
            try StoreFile.check(path)
            try createPrivateFile(at: path)
            let threadPool = NIOThreadPool(numberOfThreads: perLoop * System.coreCount + 2)
            threadPool.start()
            let pool = EventLoopGroupConnectionPool(
                source: SQLiteSource(path: path, threadPool: threadPool), maxConnectionsPerEventLoop: perLoop,
                requestTimeout: TimeAmount(deadline), logger: logger, on: group)
            return Database(
                dialect: .sqlite, location: location,
                lender: PooledLender(pool: pool, logger: logger, session: { $0.sql(queryLogLevel: nil) }, threadPool: threadPool),
                writer: SQLiteWriter(path: path, logger: logger))
        case .postgres(let url):
            var configuration: SQLPostgresConfiguration
            do { configuration = try SQLPostgresConfiguration(url: url) } catch {
                throw .invalidDatabaseURL("cannot parse the postgres URL: \(error)")
            }
            // A caller waits at most `deadline` for a connection (`requestTimeout`), but an attempt to connect
            // is not cut short: when the driver gives one up during the start-up exchange with a frozen
            // server, it drops the connection unclosed, and it lingers once the server wakes. An attempt to
            // a frozen server holds its pool slot until the server answers (or ten minutes pass).
            configuration.coreConfiguration.options.connectTimeout = .minutes(10)
            let pool = EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: configuration), maxConnectionsPerEventLoop: perLoop,
                requestTimeout: TimeAmount(deadline), logger: logger, on: group)
            return Database(
                dialect: .postgres, location: location,
                lender: PooledLender(
                    pool: pool, logger: logger, session: { $0.session() },
                    interrupt: {
                        let closing: EventLoopFuture<Void> = $0.close(); _ = closing
                    }))
        }
    }

    /// Runs `body` on one connection (autocommit).
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await tracked { try await self.lender.withConnection(deadline: Self.deadline, body) }
    }

    /// Runs one operation unless the store is closed, counted so that `close` can wait for it.
    private func tracked<T: Sendable>(_ operation: () async throws -> T) async throws -> T {
        active.add(1, ordering: .acquiringAndReleasing)
        defer { active.subtract(1, ordering: .acquiringAndReleasing) }
        guard !isClosed else { throw StoreError.unavailable("the store is closed") }
        return try await operation()
    }

    /// Runs `body` in one transaction; any thrown error rolls it back. On SQLite it runs on the writer's
    /// own connection and thread, and the write lock is taken up front (BEGIN IMMEDIATE) so two writers
    /// never deadlock upgrading a read lock. `deadline` is longer only for what may rightly take long
    /// (migrations of a large store).
    public func transaction<T: Sendable>(
        deadline: Duration = Database.deadline,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await tracked {
            guard let writer else { return try await run(begin: "BEGIN", deadline: deadline, body) }
            return try await writerLock.withLock(waitingAtMost: deadline) {
                try await writer.transaction(begin: "BEGIN IMMEDIATE", body)
            }
        }
    }

    private func run<T: Sendable>(
        begin: SQLQueryString, deadline: Duration,
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await lender.withConnection(deadline: deadline) { db in
            try await db.raw(begin).run()
            do {
                let result = try await body(db)
                try await db.raw("COMMIT").run()
                return result
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    /// Whether the store answers and takes a write: one small committed write, the one a full disk, a
    /// read-only file or a lock held elsewhere refuses.
    public func probeWrite() async throws {
        try await transaction { db in
            try await db.raw("UPDATE store_probe SET checked_at = \(bind: Clock.nowMillis()) WHERE id = 1").run()
        }
    }

    /// Closes every connection; on SQLite the WAL is checkpointed into the main file first.
    public func close() async throws {
        if dialect == .sqlite {
            _ = try? await withConnection { db in try await db.raw("PRAGMA wal_checkpoint(TRUNCATE)").run() }
        }
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Operations under way end within their deadline; none starts now.
        let limit = ContinuousClock.now + Self.deadline + .seconds(1)
        while active.load(ordering: .acquiring) > 0, ContinuousClock.now < limit { try? await Task.sleep(for: .milliseconds(10)) }
        await writer?.close()
        try await lender.shutdown()
    }

    /// A store dropped without `close` (its owner failed on the way out) still lets its connections go.
    deinit {
        if !isClosed {
            writer?.abandon()
            lender.abandon()
        }
    }

    private static func createPrivateFile(at path: String) throws(StoreError) {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) { return }
        guard manager.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw .unavailable("cannot create the SQLite file at \(path)")
        }
    }
}
