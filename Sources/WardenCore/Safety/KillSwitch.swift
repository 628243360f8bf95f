import Foundation
import SQLKit
import WardenStore

/// What a freeze covers.
public enum FreezeScope: Sendable, Equatable, CustomStringConvertible {
    /// Every agent key of every user.
    case all
    /// Every key of one user.
    case user(String)
    /// A key and every key minted from it (by its root key's id).
    case family(String)

    public var stored: String {
        switch self {
        case .all: "all"
        case .user(let id): "user:\(id)"
        case .family(let root): "family:\(root)"
        }
    }

    public init?(stored: String) {
        if stored == "all" {
            self = .all
        } else if stored.hasPrefix("user:") {
            self = .user(String(stored.dropFirst(5)))
        } else if stored.hasPrefix("family:") {
            self = .family(String(stored.dropFirst(7)))
        } else {
            return nil
        }
    }

    public var description: String { stored }
}

/// The kill switch: one action stops every agent key in a scope, on every server sharing the store (the
/// freeze moves the store revision, so each server's key cache drops its entries within its poll, 50 ms).
/// A frozen key is refused at admission like a revoked one, and cannot mint keys. Only a person lifts a
/// freeze: a logged-in user (their own scope, unless an administrator or the host's operator set it) or an
/// administrator, or the host's operator with `warden unfreeze`; never an agent key.
public struct KillSwitch: Sendable {
    let database: Database
    let audit: AuditLog
    let repository: FreezeRepository

    public init(database: Database, audit: AuditLog) {
        self.database = database
        self.audit = audit
        repository = FreezeRepository(database)
    }

    /// Who acts on the switch.
    public enum Actor: Sendable {
        /// A logged-in user (the API, the dashboard).
        case person(Principal)
        /// The host's operator (`warden freeze`), who holds the vault key.
        case operatorCLI
        /// A honey token's use (its id), freezing its owner.
        case honeyToken(String)
        /// A circuit breaker (its metric), freezing a key family.
        case breaker(String)

        var stored: String {
            switch self {
            case .person(let p): p.user.id
            case .operatorCLI: "cli"
            case .honeyToken(let id): "honey:\(id)"
            case .breaker(let metric): "breaker:\(metric)"
            }
        }
    }

    /// Freezes `scope`; false when it was already frozen (the first freeze and its reason stay), unless an
    /// administrator or the operator freezes a scope frozen by someone they outrank: the freeze becomes theirs,
    /// so the user it stops can no longer lift it.
    @discardableResult
    public func freeze(_ scope: FreezeScope, reason: String, by actor: Actor, alarm: AlarmEvent = .killSwitch) async throws -> Bool {
        try await authorize(actor, scope)
        let reason = String(reason.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300))
        let record = FreezeRecord(
            scope: scope.stored, reason: reason.isEmpty ? "kill switch" : reason, frozenBy: actor.stored, frozenAt: Clock.nowMillis())
        return try await database.transaction { db in
            if try await !repository.insert(record, on: db) {
                guard actor.outranksUsers, let existing = try await repository.find(scope: scope.stored, on: db),
                    existing.frozenBy != record.frozenBy, try await !Self.setByAuthority(existing, on: db)
                else { return false }
                try await repository.take(scope: scope.stored, by: record.frozenBy, reason: record.reason, on: db)
            }
            try await audit.append(
                AuditEntry(
                    actor: actor.auditActor, owner: scope.owner, action: "killswitch.freeze", target: scope.stored,
                    detail: ["scope": scope.stored, "reason": record.reason, "alarm": alarm.rawValue]), on: db)
            return true
        }
    }

    /// Lifts the freeze of `scope`; false when it was not frozen.
    @discardableResult
    public func unfreeze(_ scope: FreezeScope, by actor: Actor) async throws -> Bool {
        switch actor {
        case .honeyToken, .breaker: throw Self.personOnly
        case .person(let p):
            try AccessTokens.requirePerson(p)
            try await authorize(actor, scope)
        case .operatorCLI: try await authorize(actor, scope)
        }
        return try await database.transaction { db in
            guard let existing = try await repository.find(scope: scope.stored, on: db) else { return false }
            if !actor.mayLift(existing) {
                throw WardenError(
                    .forbidden, code: "frozen_by_admin", "this freeze was set by an administrator; only an administrator can lift it")
            }
            _ = try await repository.delete(scope: scope.stored, on: db)
            try await audit.append(
                AuditEntry(
                    actor: actor.auditActor, owner: scope.owner, action: "killswitch.unfreeze", target: scope.stored,
                    detail: [
                        "scope": scope.stored, "frozen": existing.reason, "alarm": AlarmEvent.killSwitchLifted.rawValue,
                    ]), on: db)
            return true
        }
    }

    /// The scope a request names: all keys, a user's by email, or (neither) the caller's own.
    public func scope(all: Bool, email: String?, family: String? = nil, caller: Principal?) async throws -> FreezeScope {
        guard [all ? "all" : nil, email, family].compactMap({ $0 }).count <= 1 else {
            throw WardenError.invalid("scope", "name one of all, email or family")
        }
        if all { return .all }
        if let family {
            guard let key = try await AgentKeyRepository(database).find(id: family) else { throw WardenError.notFound("agent key") }
            return .family(key.rootID)
        }
        if let email {
            guard let user = try await UserRepository(database).find(email: email.lowercased()) else { throw WardenError.notFound("user") }
            return .user(user.id)
        }
        guard let caller else { throw WardenError.invalid("scope", "name a user (--user EMAIL) or all keys (--all)") }
        return .user(caller.user.id)
    }

    /// Whether `freeze` was set by the operator or an administrator.
    static func setByAuthority(_ freeze: FreezeRecord, on db: any SQLDatabase) async throws -> Bool {
        if freeze.frozenBy == "cli" { return true }
        if freeze.frozenBy.hasPrefix("honey:") || freeze.frozenBy.hasPrefix("breaker:") { return false }
        return try await UserRepository.isAdmin(id: freeze.frozenBy, on: db)
    }

    /// Every freeze in force.
    public func list() async throws -> [FreezeRecord] { try await repository.all() }

    /// The freezes a user sees: their own scopes and `all` (an administrator sees every one).
    public func list(_ p: Principal) async throws -> [FreezeRecord] {
        let all = try await repository.all()
        guard !p.user.isAdmin else { return all }
        var mine: [FreezeRecord] = []
        for freeze in all {
            switch FreezeScope(stored: freeze.scope) {
            case .all: mine.append(freeze)
            case .user(let id) where id == p.user.id: mine.append(freeze)
            case .family(let root) where try await AgentKeyRepository(database).find(id: root)?.ownerID == p.user.id: mine.append(freeze)
            default: continue
            }
        }
        return mine
    }

    static let personOnly = WardenError(.forbidden, code: "person_only", "only a person can lift a freeze")

    /// A user freezes or lifts their own keys (all of them, or one family); an administrator and the operator any scope.
    func authorize(_ actor: Actor, _ scope: FreezeScope) async throws {
        guard case .person(let p) = actor, !p.user.isAdmin else { return }
        switch scope {
        case .user(let id) where id == p.user.id: return
        case .family(let root):
            guard try await AgentKeyRepository(database).find(id: root)?.ownerID == p.user.id else {
                throw WardenError.notFound("agent key")
            }
        default:
            throw WardenError(.forbidden, code: "not_admin", "only administrators freeze all keys or another user's")
        }
    }
}

extension FreezeScope {
    /// The user whose activity page shows the freeze (nil for all).
    var owner: String? {
        if case .user(let id) = self { return id }
        return nil
    }
}

extension KillSwitch.Actor {
    var auditActor: String? {
        switch self {
        case .person(let p): p.user.id
        case .operatorCLI: nil
        case .honeyToken(let id): "honey:\(id)"
        case .breaker(let metric): "breaker:\(metric)"
        }
    }

    /// An administrator or the host's operator: a freeze of theirs is lifted only by one of them.
    var outranksUsers: Bool {
        switch self {
        case .operatorCLI: true
        case .person(let p): p.user.isAdmin
        case .honeyToken, .breaker: false
        }
    }

    /// Freezes set by a person are lifted by that person or an administrator; those set by a decoy or a
    /// breaker, by anyone whose keys they stop.
    func mayLift(_ freeze: FreezeRecord) -> Bool {
        guard case .person(let p) = self, !p.user.isAdmin else { return true }
        return freeze.frozenBy == p.user.id || freeze.frozenBy.hasPrefix("honey:") || freeze.frozenBy.hasPrefix("breaker:")
    }
}
