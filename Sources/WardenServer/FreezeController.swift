import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/freeze` and `/unfreeze`: the kill switch, for logged-in people only (an agent key cannot reach these
/// routes: they sit behind the session check).
struct FreezeController {
    let killSwitch: KillSwitch
    let bodyLimit: Int

    struct FreezeRequest: Decodable {
        /// `all` for every key (administrators); without it, `email`'s keys, one key's `family` (its id), or the caller's own.
        let all: Bool?
        let email: String?
        let family: String?
        let reason: String?
    }

    struct View: Encodable {
        let scope, reason, frozenBy: String
        let frozenAt: String?
        enum CodingKeys: String, CodingKey { case scope, reason, frozenBy = "frozen_by", frozenAt = "frozen_at" }
        init(_ r: FreezeRecord) {
            scope = r.scope; reason = r.reason; frozenBy = r.frozenBy; frozenAt = Timestamp.iso(r.frozenAt)
        }
    }

    struct Changed: Encodable {
        let scope: String
        let changed: Bool
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("freeze") { _, context in
            try Response.json(["freezes": try await killSwitch.list(try context.requirePrincipal()).map(View.init)])
        }
        api.post("freeze") { request, context in
            let p = try context.requirePrincipal()
            let body = try await JSONBody.decode(FreezeRequest.self, from: request, limit: bodyLimit)
            let scope = try await killSwitch.scope(all: body.all == true, email: body.email, family: body.family, caller: p)
            let changed = try await killSwitch.freeze(scope, reason: body.reason ?? "", by: .person(p))
            return try Response.json(Changed(scope: scope.stored, changed: changed), status: changed ? .created : .ok)
        }
        api.post("unfreeze") { request, context in
            let p = try context.requirePrincipal()
            let body = try await JSONBody.decode(FreezeRequest.self, from: request, limit: bodyLimit)
            let scope = try await killSwitch.scope(all: body.all == true, email: body.email, family: body.family, caller: p)
            let changed = try await killSwitch.unfreeze(scope, by: .person(p))
            return try Response.json(Changed(scope: scope.stored, changed: changed))
        }
    }
}

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

/// `/alarms`: what was raised and where each delivery stands (administrators).
struct AlarmController {
    let alarms: Alarms

    struct View: Encodable {
        let id, event, severity, summary: String
        let createdAt: String?
        let detail: [String: String]
        let deliveries: [Delivery]
        enum CodingKeys: String, CodingKey { case id, event, severity, summary, createdAt = "created_at", detail, deliveries }
    }

    struct Delivery: Encodable {
        let channel, state: String
        let attempts: Int
        let lastError, deliveredAt, nextAttemptAt: String?
        enum CodingKeys: String, CodingKey {
            case channel, state, attempts, lastError = "last_error", deliveredAt = "delivered_at", nextAttemptAt = "next_attempt_at"
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(channel, forKey: .channel); try c.encode(state, forKey: .state); try c.encode(attempts, forKey: .attempts)
            try c.encode(lastError, forKey: .lastError); try c.encode(deliveredAt, forKey: .deliveredAt)
            try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
        }
    }

    static func view(_ alarm: AlarmRecord, _ deliveries: [AlarmDelivery]) -> View {
        View(
            id: alarm.id, event: alarm.event, severity: alarm.severity, summary: alarm.summary, createdAt: Timestamp.iso(alarm.createdAt),
            detail: alarm.detail,
            deliveries: deliveries.map {
                Delivery(
                    channel: $0.channel, state: $0.state.rawValue, attempts: $0.attempts, lastError: $0.lastError,
                    deliveredAt: Timestamp.iso($0.deliveredAt), nextAttemptAt: $0.state == .pending ? Timestamp.iso($0.nextAttemptAt) : nil)
            })
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("alarms") { request, context in
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 100
            let recent = try await alarms.recent(try context.requirePrincipal(), limit: limit)
            return try Response.json(["alarms": recent.map { Self.view($0.0, $0.1) }])
        }
    }
}
