import Foundation

/// What a key with a budget may ask an LLM venue for: only calls whose cost Warden can bound before they
/// are sent, from the request's bytes (input) and its output ceiling times its generations (output).
/// Anything billed otherwise (per image, per second, per search, from context stored at the venue, in the
/// background) is refused for such a key, since no reservation could cover it.
public enum BudgetedCall: Equatable, Sendable {
    /// Billed nothing (reads, deletes, token counting, moderation).
    case free
    /// Billed by tokens: `ceiling` says where the venue reads this endpoint's output ceiling (nil: no
    /// output, as for embeddings); `prompts` multiplies the generations (a legacy prompt list).
    case tokens(ceiling: Ceiling?, prompts: Int)
    /// Billed otherwise than by tokens: only an operator's price per call (`[call_prices]`) can bound it.
    case unpriced(String)
    case refused(String)

    static let freeEndpoints: [UsageDialect: Set<String>] = [
        .openAI: ["/v1/moderations"], .anthropic: ["/v1/messages/count_tokens"],
    ]
    /// The fields an endpoint reads its output ceiling from; Warden writes `field` when none is given. A
    /// ceiling given in a field the endpoint does not read bounds nothing.
    public struct Ceiling: Equatable, Sendable {
        public let field: String
        public let read: [String]
    }

    static let tokenEndpoints: [UsageDialect: [String: Ceiling?]] = [
        .openAI: [
            "/v1/chat/completions": Ceiling(field: "max_completion_tokens", read: ["max_completion_tokens", "max_tokens"]),
            "/v1/completions": Ceiling(field: "max_tokens", read: ["max_tokens"]),
            "/v1/responses": Ceiling(field: "max_output_tokens", read: ["max_output_tokens"]),
            "/v1/embeddings": nil,
        ],
        .anthropic: ["/v1/messages": Ceiling(field: "max_tokens", read: ["max_tokens"])],
    ]
    /// The request fields a budgeted call may carry, per endpoint: anything else (a faster or regional tier,
    /// a new billing feature) could change what the venue bills, so it is refused rather than guessed at.
    static let sampling: Set<String> = [
        "model", "stream", "stream_options", "temperature", "top_p", "stop", "user", "metadata", "seed",
        "service_tier", "max_tokens", "n",
    ]
    static let allowedFields: [String: Set<String>] = [
        "/v1/chat/completions": sampling.union([
            "messages", "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
            "tools", "tool_choice", "parallel_tool_calls", "response_format", "reasoning_effort", "store", "functions",
            "function_call", "verbosity", "safety_identifier", "prompt_cache_key", "modalities",
        ]),
        "/v1/completions": sampling.union([
            "prompt", "best_of", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
            "echo", "suffix",
        ]),
        "/v1/responses": sampling.union([
            "input", "instructions", "max_output_tokens", "tools", "tool_choice", "parallel_tool_calls",
            "text", "reasoning", "store", "truncation", "include", "safety_identifier",
            "prompt_cache_key", "max_tool_calls", "top_logprobs",
        ]).subtracting(["max_tokens", "n", "stop", "seed"]),
        "/v1/embeddings": ["model", "input", "dimensions", "encoding_format", "user"],
        "/v1/messages": [
            "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_k",
            "top_p", "tools", "tool_choice", "thinking", "service_tier",
        ],
    ]

    /// Inputs priced per item or per second, not by their bytes.
    static let unboundedParts: Set<String> = [
        "image_url", "input_image", "image", "input_audio", "audio", "file", "input_file", "document", "container_upload",
    ]
    /// Tools the venue runs itself and bills per use.
    static let clientTools: Set<String> = ["function", "custom"]

    public static func classify(_ dialect: UsageDialect, method: String, path: String, body: Data) -> BudgetedCall {
        let path = path.lowercased()
        guard method == "POST" || method == "PUT" || method == "PATCH" else {
            // A read is billed nothing, as long as it carries nothing a venue could act on.
            return body.isEmpty ? .free : .refused("a \(method) with a body")
        }
        if freeEndpoints[dialect]?.contains(path) == true { return .free }
        guard let ceiling = tokenEndpoints[dialect]?[path] else {
            return .unpriced("\(method) \(path) is not billed by tokens, so a key with a budget cannot call it")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            return .refused("the request body must be a JSON object")
        }
        if let reason = unboundedFeature(object, path: path) { return .refused(reason + ": its cost is not bounded by the request") }
        var prompts = 1
        if path == "/v1/completions", let list = object["prompt"] as? [Any], list.contains(where: { $0 is String || $0 is [Any] }) {
            prompts = max(1, list.count)
        }
        return .tokens(ceiling: ceiling, prompts: prompts)
    }

    static func unboundedFeature(_ object: [String: Any], path: String) -> String? {
        if let allowed = allowedFields[path], let field = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            return "the field \(field) (not among those Warden prices for \(path))"
        }
        if let background = object["background"] as? Bool, background { return "background responses" }
        for name in ["previous_response_id", "conversation", "audio", "web_search_options", "prediction", "mcp_servers", "container"]
        where object[name] != nil && !(object[name] is NSNull) {
            return "\(name)"
        }
        if path == "/v1/responses", object["prompt"] != nil, !(object["prompt"] is NSNull) { return "stored prompts" }
        if let modalities = object["modalities"] as? [Any], modalities.contains(where: { ($0 as? String) != "text" }) {
            return "non-text modalities"
        }
        if let tier = object["service_tier"], !(tier is NSNull), !["auto", "default", "standard_only"].contains(tier as? String ?? "") {
            return "service_tier \(tier)"
        }
        if let tools = object["tools"] as? [Any] {
            for case let tool as [String: Any] in tools {
                if let type = tool["type"] as? String, !clientTools.contains(type) { return "the \(type) tool" }
            }
        }
        return unboundedPart(in: object, depth: 0)
    }

    /// An image, audio or file input anywhere in the request.
    static func unboundedPart(in value: Any, depth: Int) -> String? {
        guard depth < 64 else { return "nesting" }
        if let object = value as? [String: Any] {
            if let type = object["type"] as? String, unboundedParts.contains(type) { return "\(type) inputs" }
            for name in ["image_url", "input_audio", "file_id", "file_data"] where object[name] != nil { return "\(name) inputs" }
            for child in object.values { if let found = unboundedPart(in: child, depth: depth + 1) { return found } }
        } else if let array = value as? [Any] {
            for child in array { if let found = unboundedPart(in: child, depth: depth + 1) { return found } }
        }
        return nil
    }

    /// The body with an output ceiling put in where the request gave none, so the venue can never
    /// generate more than was reserved.
    public static func withCeiling(_ body: Data, field: String, tokens: Int) -> Data? {
        guard var object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else { return nil }
        object[field] = tokens
        return try? JSONSerialization.data(withJSONObject: object)
    }
}
