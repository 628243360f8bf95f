import Foundation
import SQLKit
import WardenCrypto
import WardenStore

/// Who is calling: an authenticated user and the session their token belongs to.
public struct Principal: Sendable {
    public var user: UserRecord
    /// The login session's id, or `token:ID` for a personal access token.
    public var sessionID: String
    /// A personal access token's scope; nil for a person logged in (everything the user may do).
    public var scope: TokenScope?

    public init(user: UserRecord, sessionID: String, scope: TokenScope? = nil) {
        self.user = user
        self.sessionID = sessionID
        self.scope = scope
    }
}

/// How long a login lasts: `idleSeconds` unused (`[server] session_hours`), each use moving the end
/// again, and never past `maxSeconds` after the login (`[server] session_max_days`), when the token
/// itself expires.
public struct SessionLifetime: Sendable, Equatable {
    public var idleSeconds: Int
    public var maxSeconds: Int

    public init(idleSeconds: Int = 12 * 3600, maxSeconds: Int = 30 * 86_400) {
        self.idleSeconds = idleSeconds
        self.maxSeconds = maxSeconds
    }

    /// A use moves the end only when it moves it by a step (a twelfth of the idle time, at most an hour),
    /// so a busy session writes its row at most once per step.
    var stepMillis: Int64 { Int64(min(idleSeconds / 12, 3600)) * 1000 }

    /// The session's new end after a use at `now`, or nil when it need not move.
    func extended(_ session: SessionRecord, now: Int64) -> Int64? {
        let target = min(now + Int64(idleSeconds) * 1000, session.createdAt + Int64(maxSeconds) * 1000)
        return target - session.expiresAt >= max(stepMillis, 1000) ? target : nil
    }
}

public struct LoginResult: Sendable {
    public var accessToken: String
    /// Seconds the session lasts unused; each use within it extends it (see `SessionLifetime`).
    public var expiresIn: Int
    /// Seconds the token can last at most, however much it is used.
    public var maxLifetime: Int
    public var mustChangePassword: Bool
    /// The login throttle's device token for this client to keep (see `LoginThrottle`), when it asked for one.
    public var deviceToken: String?
}

/// Users, passwords and sessions: onboarding (from the CLI), login, logout, password changes.
public struct Accounts: Sendable {
    let database: Database
    let hasher: PasswordHasher
    let tokens: TokenService
    let audit: AuditLog
    let throttle: LoginThrottle
    let users: UserRepository
    let sessions: SessionRepository
    let lifetime: SessionLifetime

    public init(
        database: Database, hasher: PasswordHasher, tokens: TokenService, audit: AuditLog, throttle: LoginThrottle,
        lifetime: SessionLifetime = .init()
    ) {
        self.database = database
        self.lifetime = lifetime
        self.hasher = hasher
        self.tokens = tokens
        self.audit = audit
        self.throttle = throttle
        self.users = UserRepository(database)
        self.sessions = SessionRepository(database)
    }

    // MARK: onboarding (CLI)

    /// Creates a user. Without a password, a strong one is generated and returned (to be shown once).
    /// `by` is the administrator acting through the dashboard (nil for the CLI, run by whoever holds the vault);
    /// `via` names another way in (single sign-on's `auto_create`).
    public func createUser(
        email rawEmail: String, password: String?, mustReset: Bool, admin: Bool, by actor: Principal? = nil, via way: String? = nil
    ) async throws -> (user: UserRecord, generatedPassword: String?) {
        let via = try way ?? Self.via(actor)
        let email = try Self.normalize(email: rawEmail)
        let generated = password == nil ? Self.generatePassword() : nil
        let chosen = password ?? generated!
        try PasswordPolicy.check(chosen, email: email)
        guard try await users.find(email: email) == nil else {
            throw WardenError(.conflict, code: "user_exists", "a user with email \(email) already exists")
        }
        let now = Clock.nowMillis()
        let user = UserRecord(
            id: UUID().uuidString.lowercased(), email: email, passwordHash: try await hasher.hash(chosen),
            isAdmin: admin, disabled: false, mustChangePassword: mustReset, createdAt: now, updatedAt: now)
        try await database.transaction { db in
            try await users.insert(user, on: db)
            try await ProfileRepository(database).upsert(userID: user.id, Profiles.defaults, on: db)
            try await audit.append(
                AuditEntry(
                    actor: actor?.user.id, owner: user.id, action: "user.create", target: user.id,
                    detail: ["admin": String(admin), "via": via]), on: db)
        }
        return (user, generated)
    }

    public func listUsers() async throws -> [UserRecord] { try await users.list() }

    /// Disabling revokes every session at once; enabling lets the user log in again.
    public func setDisabled(email rawEmail: String, _ disabled: Bool, by actor: Principal? = nil) async throws -> UserRecord {
        let via = try Self.via(actor)
        let user = try await existing(email: rawEmail)
        try await database.transaction { db in
            try await users.setDisabled(userID: user.id, disabled, on: db)
            if disabled { try await sessions.revokeAll(userID: user.id, on: db) }
            try await audit.append(
                AuditEntry(
                    actor: actor?.user.id, owner: user.id, action: disabled ? "user.disable" : "user.enable",
                    target: user.id, detail: ["via": via]), on: db)
        }
        return user
    }

    /// Sets a generated password that must be changed at next login, and ends every session.
    public func resetPassword(email rawEmail: String, by actor: Principal? = nil) async throws -> String {
        let via = try Self.via(actor)
        let user = try await existing(email: rawEmail)
        let password = Self.generatePassword()
        let hash = try await hasher.hash(password)
        try await database.transaction { db in
            try await users.setPassword(userID: user.id, hash: hash, mustChange: true, on: db)
            try await sessions.revokeAll(userID: user.id, on: db)
            try await audit.append(
                AuditEntry(
                    actor: actor?.user.id, owner: user.id, action: "user.reset_password", target: user.id,
                    detail: ["via": via]), on: db)
        }
        return password
    }

    /// Where a user administration came from: an administrator's session (the dashboard) or the CLI. A
    /// session that is not an administrator's never gets this far (the pages check first); refused here too.
    static func via(_ actor: Principal?) throws -> String {
        guard let actor else { return "cli" }
        guard actor.user.isAdmin else { throw WardenError(.forbidden, code: "not_admin", "only administrators manage users") }
        return "dashboard"
    }

    // MARK: sessions (API)

    /// Checks the password (same answer and cost for an unknown email and a wrong password) and opens a session.
    /// `device` is the device token the client kept from an earlier login; `rememberDevice` asks for one
    /// (the dashboard keeps it in a cookie).
    public func login(
        email rawEmail: String, password: String, clientAddress: String, device: String? = nil,
        rememberDevice: Bool = false
    ) async throws -> LoginResult {
        let email = (try? Self.normalize(email: rawEmail)) ?? rawEmail.lowercased()
        let attempt: LoginThrottle.Attempt
        switch try await throttle.admit(account: email, address: clientAddress, device: device) {
        case .success(let admitted): attempt = admitted
        case .failure(let wait):
            throw WardenError(
                .tooManyRequests, code: "too_many_attempts",
                "too many failed logins; try again in \(wait.seconds) seconds", retryAfterSeconds: wait.seconds)
        }
        // The attempt already counts as a failure; only a right password takes it back.
        let user = try await users.find(email: email)
        let ok = try await hasher.verify(password, hash: user?.passwordHash)
        guard ok, let user, !user.disabled else {
            var detail = ["address": clientAddress]
            if try await throttle.isUnderAttack(account: email) { detail["alarm"] = AlarmEvent.failedLogins.rawValue }
            try await audit.append(
                AuditEntry(actor: user?.id, owner: user?.id, action: "auth.login", outcome: .failed, detail: detail))
            throw WardenError.badCredentials
        }
        let deviceToken = try await throttle.succeeded(attempt, issueDevice: rememberDevice)
        var result = try await openSession(for: user, detail: ["address": clientAddress])
        result.deviceToken = deviceToken
        return result
    }

    /// Opens a session for a user who proved who they are (a password, or a device login they approved).
    func openSession(for user: UserRecord, detail: [String: String]) async throws -> LoginResult {
        let now = Date()
        let session = SessionRecord(
            id: UUID().uuidString.lowercased(), userID: user.id, createdAt: Clock.nowMillis(),
            expiresAt: Clock.nowMillis() + Int64(min(lifetime.idleSeconds, lifetime.maxSeconds)) * 1000)
        try await sessions.sweep(now: Clock.nowMillis())
        try await sessions.insert(session)
        try await audit.append(AuditEntry(actor: user.id, owner: user.id, action: "auth.login", detail: detail))
        let token = try await tokens.sign(userID: user.id, sessionID: session.id, now: now)
        return LoginResult(
            accessToken: token, expiresIn: min(lifetime.idleSeconds, lifetime.maxSeconds), maxLifetime: tokens.lifetimeSeconds,
            mustChangePassword: user.mustChangePassword, deviceToken: nil)
    }

    /// The principal behind a bearer token, if the token is valid and its session and user are live.
    public func authenticate(token: String) async throws -> Principal {
        guard let claims = await tokens.verify(token),
            let session = try await sessions.find(id: claims.sessionID),
            session.userID == claims.userID, session.revokedAt == nil, session.expiresAt > Clock.nowMillis(),
            let user = try await users.find(id: claims.userID), !user.disabled
        else { throw WardenError.unauthenticated }
        if let later = lifetime.extended(session, now: Clock.nowMillis()) {
            try await sessions.extend(id: session.id, to: later)
        }
        return Principal(user: user, sessionID: session.id)
    }

    public func logout(_ principal: Principal) async throws {
        try AccessTokens.requirePerson(principal)
        try await database.transaction { db in
            try await sessions.revoke(id: principal.sessionID, on: db)
            try await audit.append(AuditEntry(actor: principal.user.id, owner: principal.user.id, action: "auth.logout"), on: db)
        }
    }

    /// Changes the password; every other session of the user ends. The current password is checked under
    /// the login throttle (a stolen session is no way to guess it faster than a login).
    public func changePassword(_ principal: Principal, current: String, new: String, clientAddress: String) async throws {
        try AccessTokens.requirePerson(principal)
        let attempt: LoginThrottle.Attempt
        switch try await throttle.admit(account: principal.user.email, address: clientAddress) {
        case .success(let admitted): attempt = admitted
        case .failure(let wait):
            throw WardenError(
                .tooManyRequests, code: "too_many_attempts",
                "too many wrong passwords; try again in \(wait.seconds) seconds", retryAfterSeconds: wait.seconds)
        }
        guard try await hasher.verify(current, hash: principal.user.passwordHash) else {
            try await audit.append(
                AuditEntry(
                    actor: principal.user.id, owner: principal.user.id, action: "auth.password_change",
                    outcome: .failed))
            throw WardenError(
                .forbidden, code: "wrong_password", "current_password is not your current password", field: "current_password")
        }
        try await throttle.succeeded(attempt)
        try PasswordPolicy.check(new, email: principal.user.email)
        guard new != current else { throw WardenError.invalid("new_password", "must differ from the current password") }
        let hash = try await hasher.hash(new)
        try await database.transaction { db in
            try await users.setPassword(userID: principal.user.id, hash: hash, mustChange: false, on: db)
            try await sessions.revokeAll(userID: principal.user.id, except: principal.sessionID, on: db)
            try await audit.append(AuditEntry(actor: principal.user.id, owner: principal.user.id, action: "auth.password_change"), on: db)
        }
    }

    // MARK: helpers

    func existing(email rawEmail: String) async throws -> UserRecord {
        guard let user = try await users.find(email: try Self.normalize(email: rawEmail)) else {
            throw WardenError.notFound("user \(rawEmail)")
        }
        return user
    }

    /// Trimmed, lowercased, NFC; refuses control and invisible formatting characters.
    public static func normalize(email: String) throws(WardenError) -> String {
        let email = email.trimmingCharacters(in: .whitespaces).precomposedStringWithCanonicalMapping.lowercased()
        guard !email.isEmpty, email.count <= 254 else { throw .invalid("email", "must be 1 to 254 characters") }
        for scalar in email.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
                throw .invalid(
                    "email", "contains an invisible, control or space character (U+\(String(scalar.value, radix: 16, uppercase: true)))")
            default: continue
            }
        }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix(".") else {
            throw .invalid("email", "is not an email address (expected name@domain.tld)")
        }
        return email
    }

    /// 24 characters from a 62-letter alphabet: about 143 bits.
    public static func generatePassword() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_")
        var rng = SystemRandomNumberGenerator()
        return String((0..<24).map { _ in alphabet[Int(rng.next(upperBound: UInt(alphabet.count)))] })
    }
}
