import Logging
import NIOCore
import NIOPosix
import SQLKit
import SQLiteKit
// The very SQLite that SQLiteNIO links: one copy of the library per process, so both see each other's
// locks on the file (two copies in one process would each think the other's POSIX locks were their own).
import VaporCSQLite

/// SQLite's one writer: a connection of its own on a thread of its own, where every write transaction runs
/// whole. A transaction's body runs with this thread as its task executor, and each statement runs in
/// place, prepared once and kept: a transaction costs one hop to the thread and one back, where a pooled
/// connection costs two thread hops and a fresh parse per statement. Only this thread touches the handle.
final class SQLiteWriter: Sendable {
    private let path: String
    private let thread: WriterThread
    private let connection: WriterConnection

    init(path: String, logger: Logger) {
        self.path = path
        thread = WriterThread()
        connection = WriterConnection(path: path, loop: thread.loop, logger: logger)
    }

    var executor: any TaskExecutor { thread }

    /// Runs `body` in one transaction on the writer's connection; any thrown error rolls it back.
    func transaction<T: Sendable>(begin: String, _ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let connection = connection
        return try await withTaskExecutorPreference(thread) {
            let session = WriterSession(connection: connection)
            try await session.run(begin)
            do {
                let value = try await body(session)
                try await session.run("COMMIT")
                return value
            } catch {
                try? await session.run("ROLLBACK")
                throw error
            }
        }
    }

    func close() async {
        try? await thread.loop.submit { self.connection.close() }.get()
        try? await thread.group.shutdownGracefully()
    }

    /// For a store dropped without `close`: lets the thread go once the handle is closed.
    func abandon() {
        let group = thread.group
        thread.loop.execute {
            self.connection.close()
            group.shutdownGracefully { _ in }
        }
    }
}

/// A thread of its own, as a task executor: jobs run on it in order.
final class WriterThread: TaskExecutor {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: any EventLoop { group.any() }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// The writer's `sqlite3` handle and its prepared statements. Every method runs on `loop`'s thread.
final class WriterConnection: @unchecked Sendable {
    let path: String
    let loop: any EventLoop
    let logger: Logger
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    /// Statements kept at most; past it, the cache starts again (the hot ones are back at once).
    static let maxStatements = 512
    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String, loop: any EventLoop, logger: Logger) {
        self.path = path
        self.loop = loop
        self.logger = logger
    }

    /// Runs one statement; `onRow` sees each row it returns.
    func run(_ sql: String, _ binds: [SQLiteData], _ onRow: (WriterRow) -> Void) throws {
        precondition(loop.inEventLoop, "the SQLite writer's handle is used off its thread")
        let db = try open()
        let statement = try prepared(sql, on: db)
        defer {
            sqlite_nio_sqlite3_reset(statement)
            sqlite_nio_sqlite3_clear_bindings(statement)
        }
        for (index, value) in binds.enumerated() {
            try check(bind(value, at: Int32(index + 1), on: statement), db)
        }
        var columns: [String]?
        while true {
            let step = sqlite_nio_sqlite3_step(statement)
            if step == SQLITE_DONE { return }
            guard step == SQLITE_ROW else { throw failure(step, db) }
            let names = columns ?? Self.columns(of: statement)
            columns = names
            onRow(WriterRow(columns: names, values: (0..<Int32(names.count)).map { Self.value(at: $0, of: statement) }))
        }
    }

    /// Rows the last statement inserted, updated or deleted.
    func changes() -> Int {
        precondition(loop.inEventLoop, "the SQLite writer's handle is used off its thread")
        return handle.map { Int(sqlite_nio_sqlite3_changes64($0)) } ?? 0
    }

    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements = [:]
        if let handle { sqlite_nio_sqlite3_close_v2(handle) }
        handle = nil
    }

    private func open() throws -> OpaquePointer {
        if let handle { return handle }
        var db: OpaquePointer?
        let opened = sqlite_nio_sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
        guard opened == SQLITE_OK, let db else {
            let reason = db.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) } ?? "code \(opened)"
            if let db { sqlite_nio_sqlite3_close_v2(db) }
            throw StoreError.unavailable("cannot open \(path) for writing: \(reason)")
        }
        // The same pragmas as the pool's connections (ConnectionSources.swift).
        for pragma in SQLiteSource.pragmas {
            let done = sqlite_nio_sqlite3_exec(db, pragma, nil, nil, nil)
            guard done == SQLITE_OK else {
                let error = failure(done, db)
                sqlite_nio_sqlite3_close_v2(db)
                throw error
            }
        }
        handle = db
        return db
    }

    private func prepared(_ sql: String, on db: OpaquePointer) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.maxStatements {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements = [:]
        }
        var statement: OpaquePointer?
        let done = sqlite_nio_sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard done == SQLITE_OK, let statement else { throw failure(done, db) }
        statements[sql] = statement
        return statement
    }

    private func bind(_ value: SQLiteData, at index: Int32, on statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let number): sqlite_nio_sqlite3_bind_int64(statement, index, Int64(number))
        case .float(let number): sqlite_nio_sqlite3_bind_double(statement, index, number)
        case .text(let text):
            sqlite_nio_sqlite3_bind_text64(statement, index, text, UInt64(text.utf8.count), Self.transient, UInt8(SQLITE_UTF8))
        case .blob(let bytes):
            bytes.withUnsafeReadableBytes {
                sqlite_nio_sqlite3_bind_blob64(statement, index, $0.baseAddress, UInt64($0.count), Self.transient)
            }
        case .null: sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    private static func columns(of statement: OpaquePointer) -> [String] {
        (0..<sqlite_nio_sqlite3_column_count(statement)).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)) }
    }

    private static func value(at column: Int32, of statement: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, column) {
        case SQLITE_INTEGER: return .integer(Int(sqlite_nio_sqlite3_column_int64(statement, column)))
        case SQLITE_FLOAT: return .float(sqlite_nio_sqlite3_column_double(statement, column))
        case SQLITE_TEXT: return .text(String(cString: sqlite_nio_sqlite3_column_text(statement, column)))
        case SQLITE_BLOB:
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, column))
            guard count > 0, let bytes = sqlite_nio_sqlite3_column_blob(statement, column) else { return .blob(ByteBuffer()) }
            return .blob(ByteBuffer(bytes: UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    private func check(_ code: Int32, _ db: OpaquePointer) throws {
        guard code == SQLITE_OK else { throw failure(code, db) }
    }

    private func failure(_ code: Int32, _ db: OpaquePointer) -> StoreError {
        .unavailable(String(cString: sqlite_nio_sqlite3_errmsg(db)) + " (SQLite code \(code))")
    }
}

/// The writer's connection as an `SQLDatabase`: SQLKit builds each statement, the writer runs it in place.
struct WriterSession: SQLDatabase {
    let connection: WriterConnection
    static let encoder = SQLiteDataEncoder()

    var logger: Logger { connection.logger }
    var eventLoop: any EventLoop { connection.loop }
    var version: (any SQLDatabaseReportedVersion)? { nil }
    var dialect: any SQLDialect { SQLiteDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) -> EventLoopFuture<Void> {
        let connection = connection
        return connection.loop.submit {
            let (sql, binds) = try Self.serialize(query, on: self)
            try connection.run(sql, binds) { onRow($0) }
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> ()) async throws {
        let (sql, binds) = try Self.serialize(query, on: self)
        try await run(sql, binds) { onRow($0) }
    }

    /// Runs one statement of plain SQL with its values: in place on the writer's thread, where a
    /// transaction's body runs, or with one hop to it from anywhere else.
    func run(_ sql: String, _ binds: [SQLiteData] = [], _ onRow: @escaping @Sendable (WriterRow) -> Void = { _ in }) async throws {
        let connection = connection
        if connection.loop.inEventLoop { return try connection.run(sql, binds, onRow) }
        try await connection.loop.submit { try connection.run(sql, binds, onRow) }.get()
    }

    /// Runs one statement and says how many rows it inserted, updated or deleted.
    func changes(_ query: any SQLExpression) async throws -> Int {
        let (sql, binds) = try Self.serialize(query, on: self)
        let connection = connection
        if connection.loop.inEventLoop {
            try connection.run(sql, binds) { _ in }
            return connection.changes()
        }
        return try await connection.loop.submit {
            try connection.run(sql, binds) { _ in }
            return connection.changes()
        }.get()
    }

    static func serialize(_ query: any SQLExpression, on db: WriterSession) throws -> (String, [SQLiteData]) {
        let (sql, binds) = db.serialize(query)
        return (sql, try binds.map { try encoder.encode($0) })
    }
}

/// One row the writer read.
struct WriterRow: SQLRow {
    let columns: [String]
    let values: [SQLiteData]
    static let decoder = SQLiteDataDecoder()

    var allColumns: [String] { columns }

    func contains(column: String) -> Bool { columns.contains(column) }

    func decodeNil(column: String) throws -> Bool { (value(column) ?? .null) == .null }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let value = value(column) else {
            throw DecodingError.keyNotFound(
                SQLColumnKey(column), .init(codingPath: [], debugDescription: "no column \(column) in the row"))
        }
        return try Self.decoder.decode(D.self, from: value)
    }

    private func value(_ column: String) -> SQLiteData? {
        columns.firstIndex(of: column).map { values[$0] }
    }
}

/// A column's name as a coding key, for a decoding error.
struct SQLColumnKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
