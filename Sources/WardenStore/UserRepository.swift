import Foundation
import SQLKit

public struct UserRecord: Sendable, Equatable {
    public var id: String
    /// Normalised (trimmed, lowercased) so lookups are exact.
    public var email: String
    public var passwordHash: String
    public var isAdmin: Bool
    public var disabled: Bool
    public var mustChangePassword: Bool
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, email: String, passwordHash: String, isAdmin: Bool, disabled: Bool,
        mustChangePassword: Bool, createdAt: Int64, updatedAt: Int64
    ) {
        self.id = id
        self.email = email
        self.passwordHash = passwordHash
        self.isAdmin = isAdmin
        self.disabled = disabled
        self.mustChangePassword = mustChangePassword
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

public struct UserRepository: Sendable {
    let database: Database

    public init(_ database: Database) { self.database = database }

    public func insert(_ user: UserRecord) async throws {
        do {
            try await database.withConnection { db in try await insert(user, on: db) }
        } catch {
            if try await find(email: user.email) != nil { throw StoreError.conflict("a user with this email exists") }
            throw error
        }
    }

    public func find(email: String) async throws -> UserRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM users WHERE email = \(bind: email)").first().map(Self.decode)
        }
    }

    /// Whether the user `id` exists and is an administrator, read in the caller's transaction.
    public static func isAdmin(id: String, on db: any SQLDatabase) async throws -> Bool {
        try await db.raw("SELECT is_admin FROM users WHERE id = \(bind: id)").first(decodingColumn: "is_admin", as: Bool.self) ?? false
    }

    public func find(id: String) async throws -> UserRecord? {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM users WHERE id = \(bind: id)").first().map(Self.decode)
        }
    }

    public func list() async throws -> [UserRecord] {
        try await database.withConnection { db in
            try await db.raw("SELECT * FROM users ORDER BY created_at, email").all().map(Self.decode)
        }
    }

    static func decode(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: String.self),
            email: try row.decode(column: "email", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            isAdmin: try row.decode(column: "is_admin", as: Bool.self),
            disabled: try row.decode(column: "disabled", as: Bool.self),
            mustChangePassword: try row.decode(column: "must_change_password", as: Bool.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }
}

extension UserRepository {
    public func setPassword(userID: String, hash: String, mustChange: Bool, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            UPDATE users SET password_hash = \(bind: hash), must_change_password = \(bind: mustChange),
                updated_at = \(bind: Clock.nowMillis()) WHERE id = \(bind: userID)
            """
        ).run()
    }

    public func setDisabled(userID: String, _ disabled: Bool, on db: any SQLDatabase) async throws {
        try await db.raw(
            "UPDATE users SET disabled = \(bind: disabled), updated_at = \(bind: Clock.nowMillis()) WHERE id = \(bind: userID)"
        ).run()
    }

    public func insert(_ user: UserRecord, on db: any SQLDatabase) async throws {
        try await db.raw(
            """
            INSERT INTO users (id, email, password_hash, is_admin, disabled, must_change_password, created_at, updated_at)
            VALUES (\(bind: user.id), \(bind: user.email), \(bind: user.passwordHash), \(bind: user.isAdmin),
                \(bind: user.disabled), \(bind: user.mustChangePassword), \(bind: user.createdAt), \(bind: user.updatedAt))
            """
        ).run()
    }
}
