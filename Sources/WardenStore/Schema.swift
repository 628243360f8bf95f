/// Warden's schema, one migration per feature. Never edit a released migration: add a new one.
/// Times are Unix milliseconds (BIGINT) so both engines store and compare them alike.
enum Schema {
    static let migrations: [Migration] = [
        Migration(version: 1, name: "vault, users and credentials", statements: [
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
    ]
}
