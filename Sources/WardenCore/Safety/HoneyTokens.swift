import Crypto
import Foundation
import WardenCrypto
import WardenStore

/// Decoys: keys that look live (a `wdn_` agent key, or an OpenAI, Anthropic or Binance key) and that no
/// one should ever use. A use is answered like any unknown key's refusal, recorded with the caller's
/// address and what it tried, raises the `honey_token_used` alarm and freezes the owner's keys (a key in
/// an agent's environment leaked with the decoy beside it). Only the keyed hash is stored, like agent keys.
public struct HoneyTokens: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case agentKey = "agent_key", openai, anthropic, binance

        /// A fresh decoy in this kind's usual form.
        func generate() -> String {
            switch self {
            case .agentKey: AgentKeys.generateKey()
            case .openai: "sk-proj-" + Self.random(alphabet: Self.urlSafe, count: 48)
            case .anthropic: "sk-ant-api03-" + Self.random(alphabet: Self.urlSafe, count: 86) + "AA"
            case .binance: Self.random(alphabet: Self.alphanumeric, count: 64)
            }
        }

        static let alphanumeric = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        static let urlSafe = alphanumeric + Array("-_".utf8)

        static func random(alphabet: [UInt8], count: Int) -> String {
            var rng = SystemRandomNumberGenerator()
            return String(decoding: (0..<count).map { _ in alphabet.randomElement(using: &rng)! }, as: UTF8.self)
        }
    }

    let database: Database
    let audit: AuditLog
    let agentKeys: AgentKeys
    let killSwitch: KillSwitch
    let repository: HoneyTokenRepository

    public init(database: Database, audit: AuditLog, agentKeys: AgentKeys, killSwitch: KillSwitch) {
        self.database = database
        self.audit = audit
        self.agentKeys = agentKeys
        self.killSwitch = killSwitch
        repository = HoneyTokenRepository(database)
    }

    /// Makes a decoy; returns its record and the token itself (shown once).
    public func create(_ p: Principal, label: String, kind: String) async throws -> (HoneyTokenRecord, String) {
        guard let kind = Kind(rawValue: kind) else {
            throw WardenError.invalid("kind", "must be one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...100).contains(label.count) else { throw WardenError.invalid("label", "must be 1 to 100 characters") }
        try Credentials.validate(label: label)
        let token = kind.generate()
        let record = HoneyTokenRecord(
            id: UUID().uuidString.lowercased(), ownerID: p.user.id, label: label, kind: kind.rawValue, tokenHash: agentKeys.hash(token),
            createdAt: Clock.nowMillis())
        try await database.transaction { db in
            try await repository.insert(record, on: db)
            try await audit.append(
                AuditEntry(
                    actor: p.user.id, owner: p.user.id, action: "honey_token.create", target: record.id,
                    detail: ["kind": kind.rawValue, "label": label]), on: db)
        }
        return (record, token)
    }

    public func list(_ p: Principal) async throws -> [HoneyTokenRecord] {
        try await repository.list(ownerID: p.user.id)
    }

    public func delete(_ p: Principal, id: String) async throws {
        try await database.transaction { db in
            guard try await repository.delete(id: id, ownerID: p.user.id, on: db) else { throw WardenError.notFound("honey token") }
            try await audit.append(AuditEntry(actor: p.user.id, owner: p.user.id, action: "honey_token.delete", target: id), on: db)
        }
    }

    /// The decoy with this key hash, if it is one.
    func find(hash: String) async throws -> HoneyTokenRecord? {
        try await repository.find(hash: hash)
    }

    /// Whether `presented` is a decoy, presented outside the gateway (where a key is asked for by the
    /// management API): if so it is caught as at the gateway, its row naming the caller and the call.
    @discardableResult
    public func caught(_ presented: String, client: String, call: String) async -> Bool {
        guard presented.utf8.count < 200, let token = try? await repository.find(hash: agentKeys.hash(presented)) else { return false }
        await tripped(token)
        try? await audit.append(
            AuditEntry(
                actor: nil, owner: token.ownerID, action: "honey_token.used", target: token.id, outcome: .refused,
                detail: [
                    "honey_token": token.id, "honey_label": token.label, "client": client, "path": String(call.prefix(256)),
                    "alarm": AlarmEvent.honeyTokenUsed.rawValue,
                ]))
        return true
    }

    /// A decoy was presented: its owner's keys are frozen (the row of that freeze is in the log) and its
    /// last use kept. The caller records the refused call itself, with the alarm.
    func tripped(_ token: HoneyTokenRecord) async {
        try? await database.transaction { db in
            try await repository.markUsed(id: token.id, at: Clock.nowMillis(), on: db)
        }
        _ = try? await killSwitch.freeze(
            .user(token.ownerID), reason: "honey token \(token.label) was used", by: .honeyToken(token.id))
    }
}
