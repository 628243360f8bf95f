import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenStore

/// `/agent-keys`: the key itself appears only in the creation response.
struct AgentKeyController {
    let agentKeys: AgentKeys
    /// Decoys presented where a key is expected are caught here too.
    var honeyTokens: HoneyTokens
    let bodyLimit: Int

    struct CreateRequest: Decodable {
        let name: String, credentialIDs: [String], access: String, expiresInDays: Int?, dailyBudgetUSD: Decimal?
        enum CodingKeys: String, CodingKey {
            case name, credentialIDs = "credential_ids", access, expiresInDays = "expires_in_days"
            case dailyBudgetUSD = "daily_budget_usd"
        }
    }

    struct View: Encodable {
        let id, name, prefix, access: String
        let credentialIDs: [String]
        let venues: [String]
        let createdAt: String?
        let expiresAt, revokedAt, lastUsedAt: String?
        let key: String?
        let dailyBudgetUSD: Decimal?
        enum CodingKeys: String, CodingKey {
            case id, name, prefix, access, credentialIDs = "credential_ids", venues, createdAt = "created_at"
            case expiresAt = "expires_at", revokedAt = "revoked_at", lastUsedAt = "last_used_at", key
            case dailyBudgetUSD = "daily_budget_usd"
        }
        init(_ r: AgentKeyRecord, key: String? = nil) {
            id = r.id; name = r.name; prefix = r.keyPrefix; access = r.access.rawValue
            venues = r.credentials.keys.sorted(); credentialIDs = venues.compactMap { r.credentials[$0] }
            createdAt = Timestamp.iso(r.createdAt); expiresAt = Timestamp.iso(r.expiresAt)
            revokedAt = Timestamp.iso(r.revokedAt); lastUsedAt = Timestamp.iso(r.lastUsedAt); self.key = key
            dailyBudgetUSD = r.dailyBudgetUSD?.decimal
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(name, forKey: .name); try c.encode(prefix, forKey: .prefix)
            try c.encode(access, forKey: .access); try c.encode(credentialIDs, forKey: .credentialIDs)
            try c.encode(venues, forKey: .venues); try c.encode(createdAt, forKey: .createdAt)
            try c.encode(expiresAt, forKey: .expiresAt); try c.encode(revokedAt, forKey: .revokedAt)
            try c.encode(lastUsedAt, forKey: .lastUsedAt)
            try c.encode(dailyBudgetUSD, forKey: .dailyBudgetUSD)
            try c.encodeIfPresent(key, forKey: .key)
        }
    }

    struct ChildRequest: Decodable {
        let venues: [String]?, ttlSeconds: Int?, name: String?
        enum CodingKeys: String, CodingKey { case venues, ttlSeconds = "ttl_seconds", name }
    }

    /// Routes a `warden run` reaches with either a login session or an agent key.
    func addDelegationRoutes(to api: RouterGroup<WardenContext>, accounts: Accounts) {
        let honeyTokens = honeyTokens
        api.post("agent-keys/child") { request, context in
            let minter = try await Self.minter(request, context, accounts: accounts, agentKeys: agentKeys, honeyTokens: honeyTokens)
            let body = try await JSONBody.decode(ChildRequest.self, from: request, limit: bodyLimit)
            let (record, key) = try await agentKeys.mintChild(
                minter, venues: body.venues, ttlSeconds: body.ttlSeconds ?? 12 * 3600,
                name: body.name ?? "warden run")
            var response = try Response.json(View(record, key: key), status: .created)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        api.delete("agent-keys/self") { request, context in
            guard
                case .agentKey(let key) = try await Self.minter(
                    request, context, accounts: accounts, agentKeys: agentKeys, honeyTokens: honeyTokens, frozen: true)
            else {
                throw WardenError(.badRequest, code: "not_an_agent_key", "present the agent key to revoke in X-Warden-Key")
            }
            try await agentKeys.revokeSelf(key)
            return Response.noContent
        }
    }

    /// The caller: an agent key (`X-Warden-Key` or a `wdn_` bearer) or a login session. A decoy presented
    /// here is answered as any dead key is, and caught (its owner frozen, the alarm raised).
    static func minter(
        _ request: Request, _ context: WardenContext, accounts: Accounts, agentKeys: AgentKeys, honeyTokens: HoneyTokens,
        frozen: Bool = false
    ) async throws -> KeyMinter {
        var presented = request.headers[HTTPField.Name("x-warden-key")!]
        var token: String?
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            let value = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("wdn_") { presented = presented ?? value } else { token = value }
        }
        if let presented {
            do { return .agentKey(try await agentKeys.authenticate(presented, frozen: frozen)) } catch {
                await honeyTokens.caught(presented, client: context.clientAddress, call: "\(request.method) \(request.uri.path)")
                throw error
            }
        }
        guard let token else { throw WardenError.unauthenticated }
        let principal = try await accounts.authenticate(token: token)
        if principal.user.mustChangePassword { throw WardenError.passwordChangeRequired }
        return .session(principal)
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("agent-keys") { _, context in
            try Response.json(["agent_keys": try await agentKeys.list(try context.requirePrincipal()).map { View($0) }])
        }
        api.post("agent-keys") { request, context in
            let body = try await JSONBody.decode(CreateRequest.self, from: request, limit: bodyLimit)
            let (record, key) = try await agentKeys.create(
                try context.requirePrincipal(), name: body.name, credentialIDs: body.credentialIDs,
                access: body.access, expiresInDays: body.expiresInDays,
                dailyBudgetUSD: body.dailyBudgetUSD)
            var response = try Response.json(View(record, key: key), status: .created)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        api.delete("agent-keys/{id}") { _, context in
            try await agentKeys.revoke(try context.requirePrincipal(), id: try context.parameters.require("id"))
            return Response.noContent
        }
    }
}
