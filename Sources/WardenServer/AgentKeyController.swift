import Hummingbird
import WardenCore
import WardenStore

/// `/agent-keys`: the key itself appears only in the creation response.
struct AgentKeyController {
    let agentKeys: AgentKeys
    let bodyLimit: Int

    struct CreateRequest: Decodable {
        let name: String, credentialIDs: [String], access: String, expiresInDays: Int?, dailyBudgetUSD: Double?
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
        let dailyBudgetUSD: Double?
        enum CodingKeys: String, CodingKey {
            case id, name, prefix, access, credentialIDs = "credential_ids", venues, createdAt = "created_at"
            case expiresAt = "expires_at", revokedAt = "revoked_at", lastUsedAt = "last_used_at", key
            case dailyBudgetUSD = "daily_budget_usd"
        }
        init(_ r: AgentKeyRecord, key: String? = nil) {
            id = r.id; name = r.name; prefix = r.keyPrefix; access = r.access
            venues = r.credentials.keys.sorted(); credentialIDs = venues.compactMap { r.credentials[$0] }
            createdAt = Timestamp.iso(r.createdAt); expiresAt = Timestamp.iso(r.expiresAt)
            revokedAt = Timestamp.iso(r.revokedAt); lastUsedAt = Timestamp.iso(r.lastUsedAt); self.key = key
            dailyBudgetUSD = r.dailyBudgetUSD
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

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("agent-keys") { _, context in
            try Response.json(["agent_keys": try await agentKeys.list(try context.requirePrincipal()).map { View($0) }])
        }
        api.post("agent-keys") { request, context in
            let body = try await JSONBody.decode(CreateRequest.self, from: request, limit: bodyLimit)
            let (record, key) = try await agentKeys.create(try context.requirePrincipal(), name: body.name, credentialIDs: body.credentialIDs,
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
