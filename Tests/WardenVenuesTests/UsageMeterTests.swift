import Foundation
import HTTPTypes
import Testing
@testable import WardenVenues

@Suite struct UsageMeterTests {
    func feed(_ meter: inout UsageMeter, _ text: String, splitEvery size: Int) -> String {
        var out: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            out += meter.consume(Array(bytes[i..<min(i + size, bytes.count)]))
            i += size
        }
        out += meter.finish()
        return String(decoding: out, as: UTF8.self)
    }

    @Test(arguments: [1, 7, 4096])
    func openAIStreamUsageIsReadAndTheAddedChunkDropped(split: Int) {
        let stream = """
            data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n\
            data: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":22}}\n\n\
            data: [DONE]\n\n
            """
        var stripping = UsageMeter(dialect: .openAI, streaming: true, stripUsageChunk: true)
        let forwarded = feed(&stripping, stream, splitEvery: split)
        #expect(stripping.usage == TokenUsage(input: 11, output: 22))
        #expect(!forwarded.contains("prompt_tokens") && forwarded.contains("\"Hi\"") && forwarded.hasSuffix("data: [DONE]\n\n"))
        var keeping = UsageMeter(dialect: .openAI, streaming: true, stripUsageChunk: false)
        #expect(feed(&keeping, stream, splitEvery: split) == stream)
        #expect(keeping.usage == TokenUsage(input: 11, output: 22))
    }

    @Test func anthropicOutputCountIsCumulative() {
        let stream = """
            event: message_start\r\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,"output_tokens":1}}}\r\n\r\n\
            event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":5}}\r\n\r\n\
            event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\r\n\r\n
            """
        var meter = UsageMeter(dialect: .anthropic, streaming: true, stripUsageChunk: false)
        #expect(feed(&meter, stream, splitEvery: 5) == stream)
        #expect(meter.usage == TokenUsage(input: 12, output: 9))
    }

    @Test func jsonBodiesPassUntouchedAndArePriced() {
        let body = #"{"id":"x","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":2}}"#
        var meter = UsageMeter(dialect: .anthropic, streaming: false, stripUsageChunk: false)
        #expect(feed(&meter, body, splitEvery: 3) == body)
        #expect(meter.usage == TokenUsage(input: 5, output: 4))
        var broken = UsageMeter(dialect: .openAI, streaming: false, stripUsageChunk: false)
        _ = feed(&broken, "{not json", splitEvery: 100)
        #expect(broken.usage == nil)
    }

    @Test func wholeAnswersReportTheirUsageWhereEachVenuePutsIt() {
        let usage = { (dialect: UsageDialect, body: String) in Array(body.utf8).withUnsafeBytes { dialect.reportedUsage(in: $0) } }
        #expect(
            usage(.openAI, #"{"choices":[{"message":{"usage":{"prompt_tokens":99}}}],"usage":{"prompt_tokens":7,"completion_tokens":8}}"#)
                == TokenUsage(input: 7, output: 8))
        #expect(usage(.openAI, #"{"usage":{"input_tokens":3,"output_tokens":4}}"#) == TokenUsage(input: 3, output: 4))
        // A cache write counts as two input tokens (a one-hour write costs twice the input price).
        #expect(
            usage(.anthropic, #"{"message":{"usage":{"input_tokens":3,"cache_creation_input_tokens":1,"output_tokens":4}}}"#)
                == TokenUsage(input: 5, output: 4))
        // Only Anthropic nests it in `message`; a count of the wrong type counts as absent.
        #expect(usage(.openAI, #"{"message":{"usage":{"prompt_tokens":3}}}"#) == nil)
        #expect(usage(.openAI, #"{"usage":{"prompt_tokens":"3","completion_tokens":2}}"#) == TokenUsage(input: 0, output: 2))
        #expect(usage(.openAI, #"{"usage":null}"#) == nil)
        #expect(usage(.anthropic, #"{"usage":null,"message":{"usage":{"output_tokens":2}}}"#) == TokenUsage(input: 0, output: 2))
        #expect(usage(.openAI, #"{"usage":{"prompt_tokens":7}} trailing"#) == nil)
    }

    @Test func ceilingsAndGenerationsTheVenueReadsArePricedOrRefused() {
        let info = UsageDialect.openAI.inspect(Data(#"{"model":5,"max_completion_tokens":12.0,"stream":"true"}"#.utf8))
        #expect(info.model == nil && info.maxOutputTokens == 12 && info.ceilings == ["max_completion_tokens": 12] && !info.stream)
        let last = UsageDialect.openAI.inspect(Data(#"{"model":"a","model":"b","max_output_tokens":3}"#.utf8))
        #expect(last.model == "b" && last.maxOutputTokens == 3 && last.ceilings == ["max_output_tokens": 3] && !last.stream)
        // Every ceiling the venue may read counts; the largest wins; `n` and `best_of` multiply.
        let many = UsageDialect.openAI.inspect(Data(#"{"model":"m","max_tokens":10,"max_completion_tokens":300,"n":4,"best_of":6}"#.utf8))
        #expect(many.maxOutputTokens == 300 && many.generations == 6 && many.invalid == nil)
        // A ceiling or a count Warden cannot price refuses the call instead of counting as absent.
        for bad in [
            #""max_tokens":-1e12"#, #""max_tokens":0"#, #""max_tokens":1.5"#, #""max_completion_tokens":"9""#,
            #""max_output_tokens":1e300"#, #""max_tokens":100000000"#, #""n":0"#, #""n":-3"#, #""best_of":1000"#, #""n":"2""#,
        ] {
            let inspected = UsageDialect.openAI.inspect(Data(("{\"model\":\"m\"," + bad + "}").utf8))
            #expect(inspected.invalid != nil, "\(bad) was priced")
        }
        #expect(UsageDialect.anthropic.inspect(Data(#"{"model":"c","max_tokens":null}"#.utf8)).invalid == nil)
    }

    @Test func aBudgetedKeyOnlyMakesCallsWhoseCostIsBounded() {
        func classify(_ path: String, _ body: String, _ dialect: UsageDialect = .openAI, method: String = "POST") -> BudgetedCall {
            BudgetedCall.classify(dialect, method: method, path: path, body: Data(body.utf8))
        }
        #expect(
            classify("/v1/chat/completions", #"{"model":"m","messages":[]}"#)
                == .tokens(ceiling: .init(field: "max_completion_tokens", read: ["max_completion_tokens", "max_tokens"]), prompts: 1))
        #expect(
            classify("/v1/completions", #"{"model":"m","prompt":["a","b","c"]}"#)
                == .tokens(ceiling: .init(field: "max_tokens", read: ["max_tokens"]), prompts: 3))
        #expect(classify("/v1/embeddings", #"{"model":"m","input":"x"}"#) == .tokens(ceiling: nil, prompts: 1))
        #expect(classify("/v1/models", "", method: "GET") == .free)
        guard case .refused = classify("/v1/chat/completions", #"{"model":"m","n":10}"#, method: "GET")
        else { Issue.record("a GET with a body passed as free"); return }
        #expect(classify("/v1/messages/count_tokens", "{}", .anthropic) == .free)
        for (path, body) in [
            ("/v1/batches", #"{"input_file_id":"f"}"#), ("/v1/fine_tuning/jobs", "{}"), ("/v1/images/generations", "{}"),
            ("/v1/audio/speech", "{}"), ("/v1/threads/t/runs", "{}"),
            ("/v1/responses", #"{"model":"m","background":true}"#), ("/v1/responses", #"{"model":"m","previous_response_id":"r"}"#),
            ("/v1/responses", #"{"model":"m","tools":[{"type":"web_search"}]}"#),
            (
                "/v1/chat/completions",
                #"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}"#
            ),
            ("/v1/chat/completions", #"{"model":"m","service_tier":"priority"}"#),
            ("/v1/chat/completions", #"{"model":"m","modalities":["text","audio"]}"#),
            ("/v1/chat/completions", #"{"model":"m","messages":[],"speed":"fast"}"#),
            ("/v1/responses", #"{"model":"m","input":"x","n":2}"#),
        ] {
            switch classify(path, body) {
            case .refused, .unpriced: break
            default: Issue.record("\(path) \(body) was let through")
            }
        }
        guard
            case .refused = classify(
                "/v1/messages", #"{"model":"c","messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}"#, .anthropic)
        else { Issue.record("an Anthropic image was let through"); return }
        // Fast mode and regional inference are billed at other rates: not among the priced fields.
        for extra in [#""speed":"fast""#, #""inference_geo":"us""#] {
            guard case .refused = classify("/v1/messages", #"{"model":"c","max_tokens":1,"messages":[],"# + extra + "}", .anthropic)
            else { Issue.record("\(extra) was let through"); continue }
        }
        #expect(
            classify(
                "/v1/messages", #"{"model":"c","max_tokens":1,"messages":[],"system":"s","thinking":{"type":"enabled","budget_tokens":1}}"#,
                .anthropic) == .tokens(ceiling: .init(field: "max_tokens", read: ["max_tokens"]), prompts: 1))
        let bounded = BudgetedCall.withCeiling(Data(#"{"model":"m"}"#.utf8), field: "max_completion_tokens", tokens: 77)
        let object = (try? JSONSerialization.jsonObject(with: bounded ?? Data())) as? [String: Any]
        #expect(object?["model"] as? String == "m" && (object?["max_completion_tokens"] as? NSNumber)?.intValue == 77)
    }

    @Test func requestsAreInspectedAndStreamsAskedForUsage() throws {
        let body = Data(#"{"model":"m","max_tokens":50,"stream":true,"messages":[]}"#.utf8)
        let inspected = UsageDialect.openAI.inspect(body)
        #expect(inspected.model == "m" && inspected.maxOutputTokens == 50 && inspected.stream)
        let prepared = UsageDialect.openAI.prepare(body, streaming: true)
        #expect(prepared.stripUsageChunk)
        let object = try JSONSerialization.jsonObject(with: prepared.body) as? [String: Any]
        #expect((object?["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
        let asked = Data(#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#.utf8)
        #expect(UsageDialect.openAI.prepare(asked, streaming: true) == (asked, false))
        #expect(UsageDialect.anthropic.prepare(body, streaming: true).stripUsageChunk == false)
        #expect(UsageDialect.openAI.inspect(Data("garbage".utf8)) == .init(model: nil, maxOutputTokens: nil, stream: false))
    }

    @Test func agentKeysAreFoundWhereEachSDKPutsThem() {
        #expect(OpenAIVenue().agentKey(in: [.authorization: "Bearer wdn_a"]) == "wdn_a")
        #expect(AnthropicVenue().agentKey(in: [HTTPField.Name("x-api-key")!: "wdn_b"]) == "wdn_b")
        #expect(AnthropicVenue().agentKey(in: [.authorization: "Bearer wdn_c"]) == "wdn_c")
        let service = RESTServiceVenue(name: "gh", baseURL: "https://x", authHeader: "X-Token", authValuePrefix: "token ")
        #expect(service.agentKey(in: [HTTPField.Name("X-Token")!: "token wdn_d"]) == "wdn_d")
        var headers: HTTPFields = [:]
        service.authorize(&headers, secret: ["token": "real"])
        #expect(headers[HTTPField.Name("X-Token")!] == "token real")
        AnthropicVenue().authorize(&headers, secret: ["api_key": "sk"])
        #expect(headers[HTTPField.Name("x-api-key")!] == "sk")
    }

    @Test func refusalsAreShapedLikeTheVenue() throws {
        let openAI =
            try JSONSerialization.jsonObject(with: OpenAIVenue().errorBody(status: .tooManyRequests, kind: .budget, message: "m").body)
            as? [String: Any]
        #expect((openAI?["error"] as? [String: Any])?["type"] as? String == "rate_limit_exceeded")
        let claude =
            try JSONSerialization.jsonObject(with: AnthropicVenue().errorBody(status: .forbidden, kind: .permission, message: "m").body)
            as? [String: Any]
        #expect(claude?["type"] as? String == "error" && (claude?["error"] as? [String: Any])?["type"] as? String == "permission_error")
    }

    /// Every venue's refusal, with a message that needs escaping, parses back to exactly the fields its
    /// SDK reads: nothing lost, nothing extra, the message intact.
    @Test func everyVenueRefusalIsExactJSONWithTheMessageIntact() throws {
        let message = "quote \" backslash \\ slash / newline \n tab \t nul \u{0} é ✓ 🚀"
        let venues: [(any VenueAdapter, [String: Any])] = [
            (
                OpenAIVenue(),
                ["error": ["message": message, "type": "invalid_request_error", "param": NSNull(), "code": "invalid_api_key"]]
            ),
            (AnthropicVenue(), ["type": "error", "error": ["type": "authentication_error", "message": message]]),
            (BinanceVenue(), ["code": -2015, "msg": message]),
            (KalshiVenue(), ["error": ["code": "authentication_error", "message": message, "service": "warden"]]),
            (PolymarketVenue(), ["error": message]),
            (
                RESTServiceVenue(name: "gh", baseURL: "https://x", authHeader: "X-Token", authValuePrefix: ""),
                [
                    "type": "https://warden.local/problems/gateway_authentication", "title": "Unauthorized", "status": 401,
                    "code": "gateway_authentication", "detail": message,
                ]
            ),
        ]
        for (venue, expected) in venues {
            let (_, body) = venue.errorBody(status: .unauthorized, kind: .authentication, message: message)
            let parsed = try #require(try JSONSerialization.jsonObject(with: body) as? NSDictionary, "\(venue.name)")
            #expect(parsed == expected as NSDictionary, "\(venue.name): \(String(decoding: body, as: UTF8.self))")
        }
    }
}
