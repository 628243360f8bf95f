import SQLKit

/// A counter that every change to what the gateway decides on moves forward: keys and their bindings,
/// users (disabled), credentials (sealed secret, owner), grants and profiles. Triggers bump it in the
/// changing transaction, whichever process writes (a server, a second server, the CLI), so a cache
/// tagged with the revision it was read at knows when it is stale. `last_used_at` writes do not count.
public enum StoreRevision {
    typealias Watched = [(table: String, columns: [String])]

    /// Tables and the columns whose update counts (inserts and deletes always count), as version 6 made them.
    static let watchedAtVersion6: Watched = [
        ("agent_keys", ["owner_id", "key_hash", "access", "expires_at", "revoked_at", "daily_budget_usd", "parent_id"]),
        ("agent_key_credentials", ["agent_key_id", "credential_id", "venue"]),
        ("users", ["disabled"]),
        ("credentials", ["owner_id", "venue", "nonce", "ciphertext", "wrapped_dek", "kek_version"]),
        ("grants", ["credential_id", "grantee_id", "access"]),
        (
            "profiles",
            [
                "min_net_edge_cents", "max_leg_usd", "daily_cap_usd", "allow_live_trading", "starting_balance_usd",
                "fee_bps", "slippage_bps", "live_venues",
            ]
        ),
    ]

    /// The tables whose money columns version 7 makes exact, with their watched columns from then on.
    static let exactMoneyTables: Watched = [
        ("agent_keys", ["owner_id", "key_hash", "access", "expires_at", "revoked_at", "daily_budget_micros", "parent_id"]),
        (
            "profiles",
            [
                "min_net_edge_cents", "max_leg_micros", "daily_cap_micros", "allow_live_trading", "starting_balance_usd",
                "fee_bps", "slippage_bps", "live_venues",
            ]
        ),
    ]

    /// Version 13's tables the gateway decides on: a freeze stops keys, a honey token is refused and alarms.
    static let safetyTables: Watched = [("freezes", ["scope"]), ("honey_tokens", ["token_hash", "owner_id"])]

    static let bump = "UPDATE store_revision SET value = value + 1 WHERE id = 1"
    static let bumpFunction =
        "CREATE FUNCTION warden_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \(bump); RETURN NULL; END $$"
    /// The channel every server listens on (PostgreSQL): a notification is delivered when the changing
    /// transaction commits, so a listener reads the new revision at once instead of at its next poll.
    public static let channel = "warden_revision"
    /// Version 21: the bump also notifies `channel` (PostgreSQL folds the notifications of one transaction).
    static let notifyingBumpFunction = """
        CREATE OR REPLACE FUNCTION warden_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN \(bump); PERFORM pg_notify('\(channel)', ''); RETURN NULL; END $$
        """

    static var triggers: [SQLDialectKind: [String]] {
        let made = create(watchedAtVersion6)
        return [.sqlite: made[.sqlite] ?? [], .postgres: [bumpFunction] + (made[.postgres] ?? [])]
    }

    static func create(_ watched: Watched) -> [SQLDialectKind: [String]] {
        var sqlite: [String] = []
        var postgres: [String] = []
        for (table, columns) in watched {
            for (event, name) in [("INSERT", "insert"), ("DELETE", "delete"), ("UPDATE OF \(columns.joined(separator: ", "))", "update")] {
                sqlite.append("CREATE TRIGGER revision_\(table)_\(name) AFTER \(event) ON \(table) BEGIN \(bump); END")
            }
            postgres.append(
                """
                CREATE TRIGGER revision_\(table) AFTER INSERT OR DELETE OR UPDATE OF \(columns.joined(separator: ", ")) ON \(table)
                FOR EACH STATEMENT EXECUTE FUNCTION warden_bump_revision()
                """)
        }
        return [.sqlite: sqlite, .postgres: postgres]
    }

    /// A trigger that names a column keeps it from being dropped (PostgreSQL) or stops firing on it (SQLite).
    static func drop(_ tables: [String]) -> [SQLDialectKind: [String]] {
        [
            .sqlite: tables.flatMap { table in ["insert", "delete", "update"].map { "DROP TRIGGER IF EXISTS revision_\(table)_\($0)" } },
            .postgres: tables.map { "DROP TRIGGER IF EXISTS revision_\($0) ON \($0)" },
        ]
    }

    /// The current revision.
    public static func read(_ database: Database) async throws -> Int64 {
        try await database.withConnection { db in
            try await db.raw("SELECT value FROM store_revision WHERE id = 1").first(decodingColumn: "value", as: Int64.self) ?? 0
        }
    }

    /// Moves the revision forward in the caller's transaction, for a change no trigger watches (a KEK rotation:
    /// every cache of opened credentials must go).
    public static func bump(on db: any SQLDatabase) async throws {
        try await db.raw("UPDATE store_revision SET value = value + 1 WHERE id = 1").run()
    }
}
