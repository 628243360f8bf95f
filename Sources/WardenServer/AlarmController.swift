import Foundation
import Hummingbird
import WardenCore
import WardenStore

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
