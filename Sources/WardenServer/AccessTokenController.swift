import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/tokens`: personal access tokens, managed by a person logged in; the token appears only in the
/// creation response.
struct AccessTokenController {
    let tokens: AccessTokens
    let bodyLimit: Int

    struct CreateRequest: Decodable {
        let name: String, scope: String, expiresInDays: Int?
        enum CodingKeys: String, CodingKey { case name, scope, expiresInDays = "expires_in_days" }
    }

    struct View: Encodable {
        let id, name, scope: String
        let createdAt, expiresAt: String?
        let revokedAt, lastUsedAt: String?
        let token: String?
        enum CodingKeys: String, CodingKey {
            case id, name, scope, createdAt = "created_at", expiresAt = "expires_at", revokedAt = "revoked_at"
            case lastUsedAt = "last_used_at", token
        }
        init(_ r: AccessTokenRecord, token: String? = nil) {
            id = r.id; name = r.name; scope = r.scope; createdAt = Timestamp.iso(r.createdAt); expiresAt = Timestamp.iso(r.expiresAt)
            revokedAt = Timestamp.iso(r.revokedAt); lastUsedAt = Timestamp.iso(r.lastUsedAt); self.token = token
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(name, forKey: .name); try c.encode(scope, forKey: .scope)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(revokedAt, forKey: .revokedAt); try c.encode(lastUsedAt, forKey: .lastUsedAt)
            try c.encodeIfPresent(token, forKey: .token)
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("tokens") { _, context in
            try Response.json(["tokens": try await tokens.list(try context.requirePrincipal()).map { View($0) }])
        }
        api.post("tokens") { request, context in
            let body = try await JSONBody.decode(CreateRequest.self, from: request, limit: bodyLimit)
            let (record, token) = try await tokens.create(
                try context.requirePrincipal(), name: body.name, scope: body.scope, expiresInDays: body.expiresInDays ?? 30)
            var response = try Response.json(View(record, token: token), status: .created)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        api.delete("tokens/{id}") { _, context in
            try await tokens.revoke(try context.requirePrincipal(), id: try context.parameters.require("id"))
            return Response.noContent
        }
    }
}
