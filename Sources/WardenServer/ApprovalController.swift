import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/approvals`: orders held for their owner's approval. The owner approves or rejects them with a login
/// session; the agent that placed one reads what became of it with its own key.
struct ApprovalController {
    let approvals: Approvals
    let agentKeys: AgentKeys
    let honeyTokens: HoneyTokens
    let accounts: Accounts

    struct View: Encodable {
        let id, status, venue, notionalUSD, clientOrderID: String
        let createdAt, expiresAt, decidedAt: String?
        let answerStatus: Int?
        let answer, reason: String?
        enum CodingKeys: String, CodingKey {
            case id, status, venue, notionalUSD = "notional_usd", clientOrderID = "client_order_id", createdAt = "created_at"
            case expiresAt = "expires_at", decidedAt = "decided_at", answerStatus = "answer_status", answer, reason
        }
        init(_ a: ApprovalRecord) {
            id = a.id; venue = a.venue; notionalUSD = a.notional.description; clientOrderID = a.clientOrderID
            status = a.status == .pending && a.expiresAt <= Clock.nowMillis() ? "expired" : a.status.rawValue
            createdAt = Timestamp.iso(a.createdAt); expiresAt = Timestamp.iso(a.expiresAt); decidedAt = Timestamp.iso(a.decidedAt)
            answerStatus = a.answerStatus; answer = a.answerBody.map { String(decoding: $0.prefix(64 * 1024), as: UTF8.self) }
            reason = a.reason
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(status, forKey: .status); try c.encode(venue, forKey: .venue)
            try c.encode(notionalUSD, forKey: .notionalUSD); try c.encode(clientOrderID, forKey: .clientOrderID)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(decidedAt, forKey: .decidedAt); try c.encode(answerStatus, forKey: .answerStatus)
            try c.encode(answer, forKey: .answer); try c.encode(reason, forKey: .reason)
        }
    }

    /// `GET /approvals/{id}` takes an agent key of the family that placed the order, or a login session.
    func addPublicRoutes(to api: RouterGroup<WardenContext>) {
        api.get("approvals/{id}") { request, context in
            let id = try context.parameters.require("id")
            let caller = try await AgentKeyController.minter(
                request, context, accounts: accounts, agentKeys: agentKeys, honeyTokens: honeyTokens, frozen: true)
            switch caller {
            case .agentKey(let key): return try Response.json(View(try await approvals.find(key, id: id)))
            case .session(let p): return try Response.json(View(try await approvals.find(p, id: id)))
            }
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("approvals") { _, context in
            try Response.json(["approvals": try await approvals.list(try context.requirePrincipal()).map(View.init)])
        }
        api.post("approvals/{id}/approve") { _, context in
            try Response.json(View(try await approvals.approve(try context.requirePrincipal(), id: try context.parameters.require("id"))))
        }
        api.post("approvals/{id}/reject") { _, context in
            try Response.json(View(try await approvals.reject(try context.requirePrincipal(), id: try context.parameters.require("id"))))
        }
    }
}
