/// Warden's schema, one migration per feature. Never edit a released migration: add a new one.
/// Times are Unix milliseconds (BIGINT) so both engines store and compare them alike.
enum Schema {
    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "vault, users and credentials",
            statements: [
                """
                CREATE TABLE vault (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    vault_id TEXT NOT NULL,
                    kek_source TEXT NOT NULL,
                    kek_version INTEGER NOT NULL,
                    kdf_salt {blob} NOT NULL,
                    kdf_memory_kib BIGINT NOT NULL,
                    kdf_iterations BIGINT NOT NULL,
                    kdf_parallelism BIGINT NOT NULL,
                    verifier {blob} NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL,
                    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
                    disabled BOOLEAN NOT NULL DEFAULT FALSE,
                    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE credentials (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    venue TEXT NOT NULL,
                    label TEXT NOT NULL,
                    fingerprint TEXT NOT NULL,
                    nonce {blob} NOT NULL,
                    ciphertext {blob} NOT NULL,
                    wrapped_dek {blob} NOT NULL,
                    kek_version INTEGER NOT NULL,
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX credentials_owner ON credentials (owner_id)",
            ]),
        Migration(
            version: 2, name: "sessions, profiles, grants, agent keys, audit chain",
            statements: [
                """
                CREATE TABLE server_secrets (
                    name TEXT PRIMARY KEY,
                    nonce {blob} NOT NULL,
                    ciphertext {blob} NOT NULL,
                    wrapped_dek {blob} NOT NULL,
                    kek_version INTEGER NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    revoked_at BIGINT
                )
                """,
                "CREATE INDEX sessions_user ON sessions (user_id)",
                """
                CREATE TABLE profiles (
                    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                    min_net_edge_cents {double} NOT NULL,
                    max_leg_usd {double} NOT NULL,
                    daily_cap_usd {double} NOT NULL,
                    allow_live_trading BOOLEAN NOT NULL,
                    starting_balance_usd {double} NOT NULL,
                    fee_bps {double} NOT NULL,
                    slippage_bps {double} NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE grants (
                    id TEXT PRIMARY KEY,
                    credential_id TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
                    grantee_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    access TEXT NOT NULL CHECK (access IN ('read', 'trade')),
                    created_at BIGINT NOT NULL,
                    UNIQUE (credential_id, grantee_id)
                )
                """,
                "CREATE INDEX grants_grantee ON grants (grantee_id)",
                """
                CREATE TABLE agent_keys (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    key_hash TEXT NOT NULL UNIQUE,
                    key_prefix TEXT NOT NULL,
                    access TEXT NOT NULL CHECK (access IN ('read', 'trade')),
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT,
                    revoked_at BIGINT,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX agent_keys_owner ON agent_keys (owner_id)",
                """
                CREATE TABLE agent_key_credentials (
                    agent_key_id TEXT NOT NULL REFERENCES agent_keys(id) ON DELETE CASCADE,
                    credential_id TEXT NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
                    venue TEXT NOT NULL,
                    PRIMARY KEY (agent_key_id, venue)
                )
                """,
                """
                CREATE TABLE audit (
                    seq BIGINT PRIMARY KEY,
                    at BIGINT NOT NULL,
                    actor_id TEXT,
                    owner_id TEXT,
                    action TEXT NOT NULL,
                    target TEXT,
                    outcome TEXT NOT NULL,
                    detail TEXT,
                    mac {blob} NOT NULL
                )
                """,
                "CREATE INDEX audit_owner ON audit (owner_id, seq)",
                "CREATE INDEX audit_actor ON audit (actor_id, seq)",
                """
                CREATE TABLE audit_head (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    seq BIGINT NOT NULL,
                    mac {blob} NOT NULL,
                    head_mac {blob} NOT NULL
                )
                """,
            ]),
        Migration(
            version: 3, name: "LLM budgets and spend",
            statements: [
                "ALTER TABLE agent_keys ADD COLUMN daily_budget_usd {double}",
                """
                CREATE TABLE llm_spend (
                    agent_key_id TEXT NOT NULL REFERENCES agent_keys(id) ON DELETE CASCADE,
                    day TEXT NOT NULL,
                    venue TEXT NOT NULL,
                    requests BIGINT NOT NULL DEFAULT 0,
                    input_tokens BIGINT NOT NULL DEFAULT 0,
                    output_tokens BIGINT NOT NULL DEFAULT 0,
                    spent_usd {double} NOT NULL DEFAULT 0,
                    reserved_usd {double} NOT NULL DEFAULT 0,
                    PRIMARY KEY (agent_key_id, day, venue)
                )
                """,
            ]),
        Migration(
            version: 4, name: "child agent keys",
            statements: [
                "ALTER TABLE agent_keys ADD COLUMN parent_id TEXT REFERENCES agent_keys(id) ON DELETE CASCADE"
            ]),
        Migration(
            version: 5, name: "trading: daily volume, orders, paper ledger, live venues",
            statements: [
                "ALTER TABLE profiles ADD COLUMN live_venues TEXT NOT NULL DEFAULT ''",
                """
                CREATE TABLE trade_days (
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    day TEXT NOT NULL,
                    mode TEXT NOT NULL CHECK (mode IN ('live', 'paper')),
                    used_usd {double} NOT NULL DEFAULT 0,
                    PRIMARY KEY (owner_id, day, mode)
                )
                """,
                """
                CREATE TABLE trade_orders (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    venue TEXT NOT NULL,
                    client_order_id TEXT NOT NULL,
                    mode TEXT NOT NULL CHECK (mode IN ('live', 'paper')),
                    day TEXT NOT NULL,
                    notional_usd {double} NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('reserved', 'rejected')),
                    created_at BIGINT NOT NULL,
                    UNIQUE (owner_id, venue, client_order_id)
                )
                """,
                """
                CREATE TABLE paper_orders (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    venue TEXT NOT NULL,
                    client_order_id TEXT NOT NULL,
                    instrument TEXT NOT NULL,
                    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
                    quantity TEXT NOT NULL,
                    price TEXT NOT NULL,
                    notional_usd {double} NOT NULL,
                    fee_usd {double} NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX paper_orders_owner ON paper_orders (owner_id, created_at)",
            ]),
        Migration(
            version: 6, name: "store revision for the gateway's caches",
            statements: [
                "CREATE TABLE store_revision (id INTEGER PRIMARY KEY CHECK (id = 1), value BIGINT NOT NULL)",
                "INSERT INTO store_revision (id, value) VALUES (1, 0)",
            ], dialectStatements: StoreRevision.triggers),
        // Money becomes exact (integer micro-dollars that the columns refuse to hold negative), and an
        // order's reservation is no longer keyed by its client order id, which venues do not keep unique.
        // The revision triggers name the columns replaced, so they are dropped first and made again after.
        Migration(
            version: 7, name: "exact money: micro-dollar limits, spend and volume; one reservation per order", statements: [],
            dialectStatements: Schema.aroundRevisionTriggers(StoreRevision.exactMoneyTables, exactMoney)),
        Migration(
            version: 8, name: "key families: each agent key's root",
            statements: [
                "ALTER TABLE agent_keys ADD COLUMN root_id TEXT REFERENCES agent_keys(id) ON DELETE CASCADE",
                // Until this version a child was always minted with parent_id = its family's top key, so
                // parent_id (or the key itself, for a top key) is every existing row's root.
                "UPDATE agent_keys SET root_id = COALESCE(parent_id, id)",
                "CREATE INDEX agent_keys_parent ON agent_keys (parent_id)",
                "CREATE INDEX agent_keys_root ON agent_keys (root_id, created_at)",
            ]),
        // A row that boots and health checks rewrite: proof that the store takes writes, not only reads.
        Migration(
            version: 9, name: "write probe",
            statements: [
                "CREATE TABLE store_probe (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at BIGINT NOT NULL)",
                "INSERT INTO store_probe (id, checked_at) VALUES (1, 0)",
            ]),
        // The LLM budget and the order caps are held on one kind of row with one locking rule (DayLedger.swift):
        // a key's spend summed over venues, an owner's volume per mode. Holders are ids never reused, so a
        // deleted key's or user's rows are left to count nothing.
        Migration(
            version: 10, name: "one day ledger for budgets and caps",
            statements: [
                """
                CREATE TABLE ledger_days (
                    ledger TEXT NOT NULL CHECK (ledger IN ('llm', 'live', 'paper')),
                    holder TEXT NOT NULL,
                    day TEXT NOT NULL,
                    used_micros BIGINT NOT NULL DEFAULT 0 CHECK (used_micros >= 0),
                    PRIMARY KEY (ledger, holder, day)
                )
                """,
                "INSERT INTO ledger_days (ledger, holder, day, used_micros) SELECT mode, owner_id, day, used_micros FROM trade_days",
                """
                INSERT INTO ledger_days (ledger, holder, day, used_micros)
                SELECT 'llm', agent_key_id, day, SUM(spent_micros + reserved_micros) FROM llm_spend GROUP BY agent_key_id, day
                """,
                "DROP TABLE trade_days",
            ]),
        // Only orders at venues that deduplicate by content carry a fingerprint: the others' rows need no
        // entry in its index, one page fewer written per order.
        Migration(
            version: 11, name: "fingerprint index only for fingerprinted orders",
            statements: [
                "DROP INDEX order_reservations_fingerprint",
                """
                CREATE INDEX order_reservations_fingerprint ON order_reservations (owner_id, venue, fingerprint)
                WHERE fingerprint IS NOT NULL
                """,
            ]),
        // Each audit row names the key epoch (the KEK version) whose key made its MAC, so the chain verifies
        // across rotations; pruned rows leave a signed checkpoint the first kept row chains to.
        Migration(
            version: 12, name: "audit key epochs and pruning checkpoint",
            statements: [
                "ALTER TABLE audit ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1",
                "ALTER TABLE audit_head ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1",
                """
                CREATE TABLE audit_checkpoint (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    seq BIGINT NOT NULL,
                    mac {blob} NOT NULL,
                    epoch INTEGER NOT NULL,
                    pruned_rows BIGINT NOT NULL,
                    last_pruned_at BIGINT NOT NULL,
                    prunes BIGINT NOT NULL,
                    signed_epoch INTEGER NOT NULL,
                    checkpoint_mac {blob} NOT NULL
                )
                """,
            ]),
        // The kill switch (a freeze per scope), decoy keys that raise an alarm when used, and the alarms'
        // outbox: one row per event, one delivery per channel it is routed to.
        Migration(
            version: 13, name: "kill switch, honey tokens and alarms",
            statements: [
                """
                CREATE TABLE freezes (
                    scope TEXT PRIMARY KEY,
                    reason TEXT NOT NULL,
                    frozen_by TEXT NOT NULL,
                    frozen_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE honey_tokens (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    label TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    created_at BIGINT NOT NULL,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX honey_tokens_owner ON honey_tokens (owner_id, created_at)",
                """
                CREATE TABLE alarms (
                    id TEXT PRIMARY KEY,
                    audit_seq BIGINT,
                    event TEXT NOT NULL,
                    severity TEXT NOT NULL,
                    owner_id TEXT,
                    summary TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    once_key TEXT UNIQUE,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX alarms_created ON alarms (created_at)",
                """
                CREATE TABLE alarm_deliveries (
                    alarm_id TEXT NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
                    channel TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at BIGINT NOT NULL,
                    leased_until BIGINT NOT NULL DEFAULT 0,
                    last_error TEXT,
                    delivered_at BIGINT,
                    PRIMARY KEY (alarm_id, channel)
                )
                """,
                "CREATE INDEX alarm_deliveries_due ON alarm_deliveries (state, next_attempt_at)",
                "CREATE TABLE alarm_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
                "INSERT INTO alarm_cursor (id, seq) VALUES (1, COALESCE((SELECT MAX(seq) FROM audit), 0))",
            ],
            dialectStatements: StoreRevision.create(StoreRevision.safetyTables)),
        // Circuit breakers in the profile, per key family; nothing set means off.
        Migration(
            version: 14, name: "circuit breakers",
            statements: [
                "ALTER TABLE profiles ADD COLUMN breaker_orders_per_minute BIGINT CHECK (breaker_orders_per_minute > 0)",
                "ALTER TABLE profiles ADD COLUMN breaker_refusals_per_minute BIGINT CHECK (breaker_refusals_per_minute > 0)",
                "ALTER TABLE profiles ADD COLUMN breaker_llm_micros_per_hour BIGINT CHECK (breaker_llm_micros_per_hour > 0)",
                "ALTER TABLE profiles ADD COLUMN breaker_notional_micros_per_hour BIGINT CHECK (breaker_notional_micros_per_hour > 0)",
            ]),
        // Orders above a threshold wait for a person: the call as the agent sent it (never a secret: the
        // agent's key is not kept), its reservation, and what became of it.
        Migration(
            version: 15, name: "approvals",
            statements: [
                "ALTER TABLE profiles ADD COLUMN approve_above_micros BIGINT CHECK (approve_above_micros > 0)",
                """
                CREATE TABLE approvals (
                    id TEXT PRIMARY KEY,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    key_id TEXT NOT NULL,
                    root_id TEXT NOT NULL,
                    venue TEXT NOT NULL,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    query TEXT NOT NULL,
                    body {blob} NOT NULL,
                    content_type TEXT,
                    client_order_id TEXT NOT NULL,
                    notional_micros BIGINT NOT NULL CHECK (notional_micros > 0),
                    reservation_id TEXT,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'rejected', 'expired', 'failed')),
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    decided_by TEXT,
                    decided_at BIGINT,
                    answer_status INTEGER,
                    answer_body {blob},
                    reason TEXT
                )
                """,
                "CREATE INDEX approvals_due ON approvals (status, expires_at)",
                "CREATE INDEX approvals_owner ON approvals (owner_id, created_at)",
                """
                CREATE UNIQUE INDEX approvals_open_order ON approvals (owner_id, venue, client_order_id)
                WHERE status IN ('pending', 'sending')
                """,
            ]),
        Migration(
            version: 16, name: "shared rate limits",
            statements: [
                """
                CREATE TABLE rate_buckets (
                    bucket TEXT PRIMARY KEY,
                    tokens BIGINT NOT NULL CHECK (tokens >= 0),
                    updated_at BIGINT NOT NULL
                )
                """
            ]),
        Migration(
            version: 17, name: "device logins",
            statements: [
                """
                CREATE TABLE device_grants (
                    device_hash TEXT PRIMARY KEY,
                    user_code TEXT NOT NULL UNIQUE,
                    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
                    user_id TEXT REFERENCES users(id) ON DELETE CASCADE,
                    client_address TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    polled_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX device_grants_pending ON device_grants (client_address, status, expires_at)",
            ]),
        Migration(
            version: 18, name: "login throttle in the store",
            statements: [
                """
                CREATE TABLE login_failures (
                    id TEXT PRIMARY KEY,
                    account TEXT NOT NULL,
                    address TEXT NOT NULL,
                    device_hash TEXT,
                    at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX login_failures_address ON login_failures (address, at)",
                "CREATE INDEX login_failures_account ON login_failures (account, at)",
                "CREATE INDEX login_failures_device ON login_failures (device_hash, at)",
                "CREATE INDEX login_failures_at ON login_failures (at)",
                "CREATE TABLE login_spacing (account TEXT PRIMARY KEY, next_at BIGINT NOT NULL)",
                """
                CREATE TABLE login_trust (
                    account TEXT NOT NULL,
                    address TEXT NOT NULL,
                    at BIGINT NOT NULL,
                    PRIMARY KEY (account, address)
                )
                """,
                "CREATE INDEX login_trust_at ON login_trust (at)",
                "CREATE TABLE login_devices (device_hash TEXT PRIMARY KEY, account TEXT NOT NULL, issued_at BIGINT NOT NULL)",
                "CREATE INDEX login_devices_account ON login_devices (account, issued_at)",
            ]),
        Migration(
            version: 19, name: "personal access tokens",
            statements: [
                """
                CREATE TABLE access_tokens (
                    id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    token_hash TEXT NOT NULL UNIQUE,
                    scope TEXT NOT NULL CHECK (scope IN ('read', 'manage-keys', 'admin')),
                    created_at BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    revoked_at BIGINT,
                    last_used_at BIGINT
                )
                """,
                "CREATE INDEX access_tokens_user ON access_tokens (user_id, created_at)",
            ]),
        Migration(
            version: 20, name: "single sign-on identities",
            statements: [
                """
                CREATE TABLE oidc_identities (
                    issuer TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    PRIMARY KEY (issuer, subject),
                    UNIQUE (issuer, user_id)
                )
                """
            ]),
        Migration(
            version: 21, name: "revision notifications", statements: [],
            dialectStatements: [.postgres: [StoreRevision.notifyingBumpFunction]]),
        Migration(
            version: 22, name: "leverage limit",
            statements: ["ALTER TABLE profiles ADD COLUMN max_leverage INTEGER NOT NULL DEFAULT 1 CHECK (max_leverage >= 1)"]),
        Migration(
            version: 23, name: "venue nonces",
            statements: ["CREATE TABLE venue_nonces (key_hash TEXT PRIMARY KEY, nonce BIGINT NOT NULL)"]),
    ]

    /// A USD column of doubles becomes `…_micros`, exact integers the column refuses to hold negative. A negative
    /// figure can only come from the ceiling attack version 7 closes: it counts as nothing.
    static func toMicros(_ table: String, _ column: String, nullable: Bool = false) -> [String] {
        let micros = column.replacingOccurrences(of: "_usd", with: "_micros")
        return [
            "ALTER TABLE \(table) ADD COLUMN \(micros) BIGINT\(nullable ? "" : " NOT NULL DEFAULT 0") CHECK (\(micros) >= 0)",
            """
            UPDATE \(table) SET \(micros) = CASE WHEN \(column) IS NULL THEN NULL
                WHEN \(column) > 0 THEN CAST(ROUND(\(column) * 1000000) AS BIGINT) ELSE 0 END
            """,
            "ALTER TABLE \(table) DROP COLUMN \(column)",
        ]
    }

    static let exactMoney: [String] =
        toMicros("llm_spend", "spent_usd") + toMicros("llm_spend", "reserved_usd")
        + toMicros("trade_days", "used_usd") + toMicros("profiles", "max_leg_usd") + toMicros("profiles", "daily_cap_usd")
        + toMicros("agent_keys", "daily_budget_usd", nullable: true) + [
            """
            CREATE TABLE order_reservations (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                credential_owner_id TEXT REFERENCES users(id) ON DELETE CASCADE,
                venue TEXT NOT NULL,
                client_order_id TEXT NOT NULL,
                fingerprint TEXT,
                mode TEXT NOT NULL CHECK (mode IN ('live', 'paper')),
                day TEXT NOT NULL,
                notional_micros BIGINT NOT NULL CHECK (notional_micros > 0),
                status TEXT NOT NULL CHECK (status IN ('reserved', 'released')),
                retries BIGINT NOT NULL DEFAULT 0,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX order_reservations_fingerprint ON order_reservations (owner_id, venue, fingerprint)",
            """
            INSERT INTO order_reservations (id, owner_id, venue, client_order_id, mode, day, notional_micros, status, created_at)
            SELECT id, owner_id, venue, client_order_id, mode, day, CAST(ROUND(notional_usd * 1000000) AS BIGINT), 'reserved', created_at
            FROM trade_orders WHERE status = 'reserved' AND notional_usd > 0
            """,
            "DROP TABLE trade_orders",
        ]

    /// `statements` for both engines, with the revision triggers of `tables` dropped before and made again after.
    static func aroundRevisionTriggers(_ tables: StoreRevision.Watched, _ statements: [String]) -> [SQLDialectKind: [String]] {
        let drop = StoreRevision.drop(tables.map(\.table)), create = StoreRevision.create(tables)
        return [
            .sqlite: (drop[.sqlite] ?? []) + statements + (create[.sqlite] ?? []),
            .postgres: (drop[.postgres] ?? []) + statements + (create[.postgres] ?? []),
        ]
    }
}
