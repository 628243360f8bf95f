import Crypto
import Foundation
import WardenCrypto
import WardenStore

/// What a personal access token may do with the management API. No token manages tokens or passwords,
/// decides an approval, passes the go-live checks, lifts a freeze or opens the dashboard: those take a
/// person's login (checked here for every request, and again by those operations themselves).
public enum TokenScope: String, Sendable, CaseIterable {
    /// Reads only: GET and HEAD.
    case read
    /// Reads, and creating and revoking agent keys (`/api/v1/agent-keys`).
    case manageKeys = "manage-keys"
    /// Everything its user, an administrator, may do through the API.
    case admin

    /// Whether a request with `method` on `path` (under `/api/v1`) is within the scope. The path is read as
    /// the router reads it: empty segments (`//`, a trailing `/`) count for nothing.
    public func allows(method: String, path raw: String) -> Bool {
        let path = "/" + raw.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        if Self.personOnly.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) { return false }
        if method == "GET" || method == "HEAD" { return true }
        if Self.personDecides(path) { return false }
        switch self {
        case .read: return false
        case .manageKeys: return path == "/api/v1/agent-keys" || path.hasPrefix("/api/v1/agent-keys/")
        case .admin: return true
        }
    }

    /// Paths only a login session may use, whatever the scope and method.
    static let personOnly = ["/api/v1/tokens", "/api/v1/auth"]

    /// Changes that are a person's decision by design: approving or rejecting a held order, going live,
    /// lifting a freeze (a script may freeze, as a person's stop button, but not undo one).
    static func personDecides(_ path: String) -> Bool {
        path == "/api/v1/profile/go-live" || path == "/api/v1/unfreeze"
            || (path.hasPrefix("/api/v1/approvals/") && (path.hasSuffix("/approve") || path.hasSuffix("/reject")))
    }
}

/// Personal access tokens: `wdp_…` bearer tokens for the management API, each scoped, expiring and
/// revocable, made by a person logged in. Distinct from agent keys, which only the gateway takes. A
/// token is stored as its SHA-256 hash (it is 256 random bits, so no slow hash is needed).
public struct AccessTokens: Sendable {
    let database: Database
    let repository: AccessTokenRepository
    let users: UserRepository
    let audit: AuditLog

    public static let prefix = "wdp_"
    /// Live tokens per user: enough for every script and job, not a way to fill the store.
    public static let maxLivePerUser = 50
    public static let maxDays = 365

    public init(database: Database, audit: AuditLog) {
        self.database = database
        repository = AccessTokenRepository(database)
        users = UserRepository(database)
        self.audit = audit
    }

    /// Makes a token for the person logged in; the token is returned once and never again.
    public func create(_ p: Principal, name: String, scope rawScope: String, expiresInDays days: Int) async throws -> (
        AccessTokenRecord, String
    ) {
        try Self.requirePerson(p)
        guard (1...100).contains(name.count) else { throw WardenError.invalid("name", "must be 1 to 100 characters") }
        try Credentials.validate(label: name)
        guard let scope = TokenScope(rawValue: rawScope) else {
            throw WardenError.invalid("scope", "must be one of: \(TokenScope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if scope == .admin, !p.user.isAdmin {
            throw WardenError(.forbidden, code: "not_admin", "only administrators make admin tokens", field: "scope")
        }
        guard (1...Self.maxDays).contains(days) else {
            throw WardenError.invalid("expires_in_days", "must be between 1 and \(Self.maxDays)")
        }
        let token = Self.generate(), now = Clock.nowMillis()
        let record = AccessTokenRecord(
            id: UUID().uuidString.lowercased(), userID: p.user.id, name: name, tokenHash: Self.hash(token), scope: scope.rawValue,
            createdAt: now, expiresAt: now + Int64(days) * 86_400_000)
        try await database.transaction { db in
            guard try await repository.insert(record, limitPerUser: Self.maxLivePerUser, on: db) else {
                throw WardenError(
                    .conflict, code: "too_many_tokens",
                    "you have \(Self.maxLivePerUser) live access tokens; revoke some (DELETE /api/v1/tokens/ID) first")
            }
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "token.create", target: record.id,
                    detail: ["name": name, "scope": scope.rawValue, "expires_at": String(record.expiresAt)]), on: db)
        }
        return (record, token)
    }

    public func list(_ p: Principal) async throws -> [AccessTokenRecord] {
        try Self.requirePerson(p)
        return try await repository.list(userID: p.user.id, now: Clock.nowMillis())
    }

    /// Revokes one of the person's tokens at once, on every server (each use reads the store).
    public func revoke(_ p: Principal, id: String) async throws {
        try Self.requirePerson(p)
        try await database.transaction { db in
            guard try await repository.revoke(id: id, userID: p.user.id, at: Clock.nowMillis(), on: db) else {
                throw WardenError.notFound("live access token \(id)")
            }
            try await audit.append(AuditEntry(actor: p.user.id, owner: p.user.id, action: "token.revoke", target: id), on: db)
        }
    }

    /// The principal behind a token, if it is live, unexpired and its user is enabled.
    public func authenticate(_ token: String) async throws -> Principal {
        let now = Clock.nowMillis()
        guard token.hasPrefix(Self.prefix), let record = try await repository.find(hash: Self.hash(token)),
            record.revokedAt == nil, record.expiresAt > now, let scope = TokenScope(rawValue: record.scope),
            let user = try await users.find(id: record.userID), !user.disabled,
            scope != .admin || user.isAdmin
        else { throw WardenError.unauthenticated }
        try await repository.touch(id: record.id, now: now)
        return Principal(user: user, sessionID: "token:\(record.id)", scope: scope)
    }

    /// Refuses a personal access token where only a person logged in may act.
    public static func requirePerson(_ p: Principal) throws(WardenError) {
        guard p.scope == nil else {
            throw WardenError(.forbidden, code: "token_scope", "this takes a person logged in, not an access token")
        }
    }

    static func generate() -> String {
        var bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        defer { Wipe.array(&bytes) }
        return prefix + Hex.encode(Data(bytes))
    }

    static func hash(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }
}
