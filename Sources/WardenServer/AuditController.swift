import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `GET /audit?limit=&before=&action=&request=`: the caller's rows, newest first (admins see every row);
/// `request` keeps the rows of the gateway call whose answer carried that `X-Warden-Request-Id`.
struct AuditController {
    let activity: Activity

    struct Entry: Encodable {
        let seq: Int64
        let at: String?
        let actorID, ownerID, target, detail: String?
        let action, outcome: String
        enum CodingKeys: String, CodingKey {
            case seq, at, actorID = "actor_id", ownerID = "owner_id", action, target, outcome, detail
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(seq, forKey: .seq); try c.encode(at, forKey: .at); try c.encode(actorID, forKey: .actorID)
            try c.encode(ownerID, forKey: .ownerID); try c.encode(action, forKey: .action); try c.encode(target, forKey: .target)
            try c.encode(outcome, forKey: .outcome); try c.encode(detail, forKey: .detail)
        }
    }
    struct Page: Encodable {
        let entries: [Entry]
        let nextBefore: Int64?
        enum CodingKeys: String, CodingKey { case entries, nextBefore = "next_before" }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(entries, forKey: .entries); try c.encode(nextBefore, forKey: .nextBefore)
        }
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("audit") { request, context in
            let principal = try context.requirePrincipal()
            let query = request.uri.queryParameters
            let limit = try Self.int(query["limit"].map(String.init), name: "limit", range: 1...500) ?? 50
            let before = try Self.int(query["before"].map(String.init), name: "before", range: 1...Int.max).map(Int64.init)
            let action = query["action"].map(String.init)
            if let action, action.count > 64 { throw WardenError.invalid("action", "is too long") }
            let requestID = query["request"].map(String.init)
            if let requestID, !AuditRepository.isRequestID(requestID) {
                throw WardenError.invalid("request", "must be a request id as sent in X-Warden-Request-Id (hex digits and dashes)")
            }
            let rows = try await activity.auditPage(principal, before: before, action: action, request: requestID, limit: limit)
            let entries = rows.map {
                Entry(
                    seq: $0.seq, at: Timestamp.iso($0.at), actorID: $0.actorID, ownerID: $0.ownerID, target: $0.target,
                    detail: $0.detail, action: $0.action, outcome: $0.outcome)
            }
            return try Response.json(Page(entries: entries, nextBefore: rows.count == limit ? rows.last?.seq : nil))
        }
    }

    static func int(_ text: String?, name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw WardenError.invalid(name, "must be an integer between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }
}
