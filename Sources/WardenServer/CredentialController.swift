import Hummingbird
import WardenCore
import WardenStore

/// `/credentials` and their grants. Responses carry metadata only.
struct CredentialController {
    let credentials: Credentials
    let bodyLimit: Int

    struct CreateRequest: Decodable { let venue: String; let label: String; let secret: [String: String] }
    struct UpdateRequest: Decodable { let label: String?; let secret: [String: String]? }
    struct GrantRequest: Decodable { let email: String; let access: String }

    struct View: Encodable {
        let id, venue, label, fingerprint, access: String
        let createdAt, updatedAt: String?
        let lastUsedAt: String?
        enum CodingKeys: String, CodingKey {
            case id, venue, label, fingerprint, access
            case createdAt = "created_at", updatedAt = "updated_at", lastUsedAt = "last_used_at"
        }
        init(_ v: CredentialView) {
            id = v.id; venue = v.venue; label = v.label; fingerprint = v.fingerprint; access = v.holding.name
            createdAt = Timestamp.iso(v.createdAt); updatedAt = Timestamp.iso(v.updatedAt); lastUsedAt = Timestamp.iso(v.lastUsedAt)
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(venue, forKey: .venue); try c.encode(label, forKey: .label)
            try c.encode(fingerprint, forKey: .fingerprint); try c.encode(access, forKey: .access)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(updatedAt, forKey: .updatedAt)
            try c.encode(lastUsedAt, forKey: .lastUsedAt)
        }
    }
    struct GrantView: Encodable {
        let id, credentialID, email, access: String
        let createdAt: String?
        enum CodingKeys: String, CodingKey {
            case id, credentialID = "credential_id", email, access, createdAt = "created_at"
        }
        init(_ g: GrantRecord, email: String) {
            id = g.id; credentialID = g.credentialID; self.email = email; access = g.access.rawValue; createdAt = Timestamp.iso(g.createdAt)
        }
    }
    struct List<T: Encodable>: Encodable { let items: [T] }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("credentials") { _, context in
            try Response.json(["credentials": try await credentials.list(try context.requirePrincipal()).map(View.init)])
        }
        api.post("credentials") { request, context in
            let body = try await JSONBody.decode(CreateRequest.self, from: request, limit: bodyLimit)
            let view = try await credentials.create(
                try context.requirePrincipal(), venue: body.venue, label: body.label, secret: body.secret)
            return try Response.json(View(view), status: .created)
        }
        api.get("credentials/{id}") { _, context in
            try Response.json(View(try await credentials.get(try context.requirePrincipal(), id: try context.parameters.require("id"))))
        }
        api.patch("credentials/{id}") { request, context in
            let body = try await JSONBody.decode(UpdateRequest.self, from: request, limit: bodyLimit)
            guard body.label != nil || body.secret != nil else {
                throw WardenError(.badRequest, code: "empty_update", "send a new label, a new secret, or both")
            }
            let view = try await credentials.update(
                try context.requirePrincipal(), id: try context.parameters.require("id"),
                label: body.label, secret: body.secret)
            return try Response.json(View(view))
        }
        api.delete("credentials/{id}") { _, context in
            try await credentials.delete(try context.requirePrincipal(), id: try context.parameters.require("id"))
            return Response.noContent
        }
        api.get("credentials/{id}/grants") { _, context in
            let grants = try await credentials.listGrants(
                try context.requirePrincipal(), credentialID: try context.parameters.require("id"))
            return try Response.json(["grants": grants.map { GrantView($0.0, email: $0.1) }])
        }
        api.post("credentials/{id}/grants") { request, context in
            let body = try await JSONBody.decode(GrantRequest.self, from: request, limit: bodyLimit)
            let (grant, email) = try await credentials.grant(
                try context.requirePrincipal(), credentialID: try context.parameters.require("id"),
                email: body.email, access: body.access)
            return try Response.json(GrantView(grant, email: email), status: .created)
        }
        api.delete("credentials/{id}/grants/{grant_id}") { _, context in
            try await credentials.revokeGrant(
                try context.requirePrincipal(), credentialID: try context.parameters.require("id"),
                grantID: try context.parameters.require("grant_id"))
            return Response.noContent
        }
    }
}
