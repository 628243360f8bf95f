import Logging
import SQLKit

/// One numbered schema change. `{blob}` and `{double}` in a statement become the dialect's types;
/// `dialectStatements` run after the shared ones, for what the two engines spell differently (triggers).
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]
    public var dialectStatements: [SQLDialectKind: [String]] = [:]

    init(version: Int, name: String, statements: [String], dialectStatements: [SQLDialectKind: [String]] = [:]) {
        self.version = version
        self.name = name
        self.statements = statements
        self.dialectStatements = dialectStatements
    }

    func sql(for dialect: SQLDialectKind) -> [String] {
        (statements + (dialectStatements[dialect] ?? [])).map {
            $0.replacingOccurrences(of: "{blob}", with: dialect == .sqlite ? "BLOB" : "BYTEA")
                .replacingOccurrences(of: "{double}", with: dialect == .sqlite ? "REAL" : "DOUBLE PRECISION")
        }
    }
}

/// Applies pending migrations at startup. All pending ones run in one transaction, serialised
/// across processes (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so a crash or a
/// second process starting at the same time never leaves a half-migrated store.
public enum Migrator {
    public static var latestVersion: Int { Schema.migrations.map(\.version).max() ?? 0 }
    /// Every version this binary knows, in the order they are applied (numbers may have gaps).
    public static var versions: [Int] { Schema.migrations.map(\.version) }

    /// Returns the versions applied by this call (empty when the store was already current).
    @discardableResult
    /// `through` stops after that version (an upgrade test builds an older store with it).
    public static func migrate(_ database: Database, logger: Logger, through last: Int = .max) async throws -> [Int] {
        let dialect = database.dialect
        // A migration of a large store may rightly take long, and a second server waits for the first's.
        let applied = try await database.transaction(deadline: .seconds(3600)) { db -> [Int] in
            if dialect == .postgres {
                try await db.raw("SELECT pg_advisory_xact_lock(727137)").run()
            }
            try await refuseForeign(db, dialect: dialect)
            try await db.raw(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                """
            ).run()
            let done = Set(
                try await db.raw("SELECT version FROM schema_migrations")
                    .all(decodingColumn: "version", as: Int.self))
            if let newest = done.max(), newest > latestVersion {
                throw StoreError.newerSchema(found: newest, known: latestVersion)
            }
            var appliedNow: [Int] = []
            for migration in Schema.migrations where !done.contains(migration.version) && migration.version <= last {
                do {
                    for statement in migration.sql(for: dialect) {
                        try await db.raw("\(unsafeRaw: statement)").run()
                    }
                } catch {
                    throw StoreError.migrationFailed(version: migration.version, reason: String(describing: error))
                }
                try await db.raw(
                    """
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: Clock.nowMillis()))
                    """
                ).run()
                appliedNow.append(migration.version)
            }
            return appliedNow
        }
        for version in applied {
            logger.info("applied migration", metadata: ["version": "\(version)"])
        }
        return applied
    }

    /// A store with tables but no migration record is someone else's database: Warden does not move in.
    static func refuseForeign(_ db: any SQLDatabase, dialect: SQLDialectKind) async throws {
        let query: SQLQueryString =
            switch dialect {
            case .sqlite: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            case .postgres: "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        let tables = try await db.raw(query).all(decodingColumn: "name", as: String.self)
        guard !tables.isEmpty, !tables.contains("schema_migrations") else { return }
        throw StoreError.unusable(
            "the database holds tables (\(tables.sorted().prefix(3).joined(separator: ", "))) but is not a Warden store")
    }
}
