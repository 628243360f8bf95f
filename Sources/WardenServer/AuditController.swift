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
        addExportRoute(to: api)
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

    /// `GET /audit/export?since=&until=` (administrators): JSON lines, see `AuditArchive`. Times are ms since
    /// the epoch or UTC days (2026-12-01).
    func addExportRoute(to api: RouterGroup<WardenContext>) {
        api.get("audit/export") { request, context in
            let principal = try context.requirePrincipal()
            guard principal.user.isAdmin else {
                throw WardenError(.forbidden, code: "not_admin", "only administrators export the audit log")
            }
            return try Self.export(request, principal: principal, activity: activity)
        }
    }

    /// The export as a download, streamed a row at a time (for the API and the dashboard alike).
    static func export(_ request: Request, principal: Principal, activity: Activity) throws -> Response {
        let query = request.uri.queryParameters
        let since = try Self.time(query["since"].map(String.init), name: "since")
        let until = try Self.time(query["until"].map(String.init), name: "until")
        var headers = HTTPFields()
        headers[.contentType] = "application/x-ndjson"
        headers[.contentDisposition] = "attachment; filename=\"warden-audit.jsonl\""
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                try await activity.exportAudit(principal, since: since, until: until) { line in
                    try await writer.write(ByteBuffer(string: line))
                }
                try await writer.finish(nil)
            })
    }

    static func time(_ text: String?, name: String) throws -> Int64? {
        guard let text, !text.isEmpty else { return nil }
        if let millis = Int64(text), millis >= 0 { return millis }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = ISO8601DateFormatter().date(from: text) ?? day.date(from: text) else {
            throw WardenError.invalid(name, "must be ms since the epoch, a UTC day (2026-12-01) or an ISO 8601 time")
        }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    static func int(_ text: String?, name: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw WardenError.invalid(name, "must be an integer between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }
}
