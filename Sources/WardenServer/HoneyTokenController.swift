import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/honey-tokens`: decoys; the token itself appears only in the creation response.
struct HoneyTokenController {
    let honeyTokens: HoneyTokens
    let bodyLimit: Int

    struct CreateRequest: Decodable {
        let label: String
        let kind: String?
    }

    struct View: Encodable {
        let id, label, kind: String
        let createdAt: String?
        let lastUsedAt: String?
        let token: String?
        enum CodingKeys: String, CodingKey { case id, label, kind, createdAt = "created_at", lastUsedAt = "last_used_at", token }
        init(_ r: HoneyTokenRecord, token: String? = nil) {
            id = r.id; label = r.label; kind = r.kind; createdAt = Timestamp.iso(r.createdAt)
            lastUsedAt = Timestamp.iso(r.lastUsedAt); self.token = token
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(label, forKey: .label); try c.encode(kind, forKey: .kind)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(lastUsedAt, forKey: .lastUsedAt)
            try c.encodeIfPresent(token, forKey: .token)
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("honey-tokens") { _, context in
            try Response.json(["honey_tokens": try await honeyTokens.list(try context.requirePrincipal()).map { View($0) }])
        }
        api.post("honey-tokens") { request, context in
            let body = try await JSONBody.decode(CreateRequest.self, from: request, limit: bodyLimit)
            let (record, token) = try await honeyTokens.create(
                try context.requirePrincipal(), label: body.label, kind: body.kind ?? HoneyTokens.Kind.agentKey.rawValue)
            var response = try Response.json(View(record, token: token), status: .created)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        api.delete("honey-tokens/{id}") { _, context in
            try await honeyTokens.delete(try context.requirePrincipal(), id: try context.parameters.require("id"))
            return Response.noContent
        }
    }
}
