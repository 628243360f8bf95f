import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `GET /usage`: today's (UTC) LLM calls, tokens and spend per agent key and venue, and the day's
/// order volume (live and paper) against `daily_cap_usd`.
struct UsageController {
    let activity: Activity

    struct Entry: Encodable {
        let agentKeyID, venue: String
        let requests, inputTokens, outputTokens: Int64
        /// Exact decimals (micro-dollars), encoded as JSON numbers.
        let spentUSD, reservedUSD: Decimal
        enum CodingKeys: String, CodingKey {
            case agentKeyID = "agent_key_id", venue, requests, inputTokens = "input_tokens", outputTokens = "output_tokens"
            case spentUSD = "spent_usd", reservedUSD = "reserved_usd"
        }
    }
    struct Trading: Encodable {
        let day: String
        let liveUSD, paperUSD, dailyCapUSD: Decimal
        enum CodingKeys: String, CodingKey { case day, liveUSD = "live_usd", paperUSD = "paper_usd", dailyCapUSD = "daily_cap_usd" }
    }
    struct Body: Encodable { let day: String; let llm: [Entry]; let trading: Trading }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("usage") { _, context in
            let today = try await activity.today(try context.requirePrincipal())
            let volume = today.volume
            return try Response.json(
                Body(
                    day: today.day,
                    llm: today.llm.map {
                        Entry(
                            agentKeyID: $0.agentKeyID, venue: $0.venue, requests: $0.requests, inputTokens: $0.inputTokens,
                            outputTokens: $0.outputTokens, spentUSD: $0.spent.decimal, reservedUSD: $0.reserved.decimal)
                    },
                    trading: Trading(
                        day: today.day, liveUSD: (volume[.live] ?? .zero).decimal, paperUSD: (volume[.paper] ?? .zero).decimal,
                        dailyCapUSD: today.dailyCap.decimal)))
        }
    }
}
