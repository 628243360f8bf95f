import SQLKit

/// Which Warden user an identity provider's subject is: one subject per user and provider, bound at the
/// user's first single sign-on and never moved.
public struct IdentityRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    /// The user bound to `subject` at `issuer`.
    public func user(issuer: String, subject: String) async throws -> String? {
        try await database.withConnection { db in
            try await db.raw("SELECT user_id FROM oidc_identities WHERE issuer = \(bind: issuer) AND subject = \(bind: subject)")
                .first()?.decode(column: "user_id", as: String.self)
        }
    }

    /// The subject `userID` is bound to at `issuer`.
    public func subject(issuer: String, userID: String) async throws -> String? {
        try await database.withConnection { db in
            try await db.raw("SELECT subject FROM oidc_identities WHERE issuer = \(bind: issuer) AND user_id = \(bind: userID)")
                .first()?.decode(column: "subject", as: String.self)
        }
    }

    /// Binds `subject` to `userID`; false when either is already bound (to anything: a concurrent sign-in
    /// may have won, so read again).
    public func bind(issuer: String, subject: String, userID: String, at time: Int64, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw(
            """
            INSERT INTO oidc_identities (issuer, subject, user_id, created_at)
            VALUES (\(bind: issuer), \(bind: subject), \(bind: userID), \(bind: time))
            ON CONFLICT DO NOTHING RETURNING user_id
            """
        ).first() != nil
    }
}
