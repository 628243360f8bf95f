import Foundation

/// How an LLM venue describes a call's size before it is sent and its token usage after.
public enum UsageDialect: Sendable {
    case openAI, anthropic

    /// What a request asks for: the model, its output ceiling and whether it streams.
    public struct RequestInfo: Sendable, Equatable {
        public var model: String?
        public var maxOutputTokens: Int?
        public var stream: Bool
    }

    /// One decoder for every call: it is never reconfigured, and making one per call costs more than
    /// decoding these small documents.
    static let decoder = JSONDecoder()

    public func inspect(_ body: Data) -> RequestInfo {
        guard let fields = try? UsageDialect.decoder.decode(RequestFields.self, from: body) else {
            return RequestInfo(model: nil, maxOutputTokens: nil, stream: false)
        }
        return RequestInfo(model: fields.model, maxOutputTokens: fields.maxTokens ?? fields.maxCompletionTokens ?? fields.maxOutputTokens,
                           stream: fields.stream ?? false)
    }

    /// The request fields Warden reads; one of the wrong type counts as absent, like a missing one.
    struct RequestFields: Decodable {
        var model: String?
        var maxTokens, maxCompletionTokens, maxOutputTokens: Int?
        var stream: Bool?

        enum CodingKeys: String, CodingKey {
            case model, stream, maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", maxOutputTokens = "max_output_tokens"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            model = try? c.decodeIfPresent(String.self, forKey: .model)
            maxTokens = try? c.decodeIfPresent(Int.self, forKey: .maxTokens)
            maxCompletionTokens = try? c.decodeIfPresent(Int.self, forKey: .maxCompletionTokens)
            maxOutputTokens = try? c.decodeIfPresent(Int.self, forKey: .maxOutputTokens)
            stream = try? c.decodeIfPresent(Bool.self, forKey: .stream)
        }
    }

    /// For an OpenAI stream that does not ask for usage, asks for it (`stream_options.include_usage`),
    /// so the call can be priced; the extra usage chunk is removed again on the way back.
    /// Returns the body to send and whether the usage chunk must be stripped.
    public func prepare(_ body: Data, streaming: Bool) -> (body: Data, stripUsageChunk: Bool) {
        guard self == .openAI, streaming, var object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
              (object["stream"] as? Bool) == true
        else { return (body, false) }
        var options = object["stream_options"] as? [String: Any] ?? [:]
        if (options["include_usage"] as? Bool) == true { return (body, false) }
        options["include_usage"] = true
        object["stream_options"] = options
        guard let rewritten = try? JSONSerialization.data(withJSONObject: object) else { return (body, false) }
        return (rewritten, true)
    }
}

/// Tokens a call used.
public struct TokenUsage: Sendable, Equatable {
    public var input: Int
    public var output: Int

    public init(input: Int, output: Int) {
        self.input = input
        self.output = output
    }
}

/// Watches a response go by and reads its usage. Server-sent events are passed on one complete event at
/// a time (an event Warden asked for itself can be dropped); other bodies pass through untouched while a
/// bounded copy is kept for the usage at the end.
public struct UsageMeter: Sendable {
    public let dialect: UsageDialect
    public let streaming: Bool
    public let stripUsageChunk: Bool
    public private(set) var usage: TokenUsage?
    private var pending: [UInt8] = []
    private var copy: [UInt8] = []
    private var copyOverflowed = false
    static let maxCopy = 8 * 1024 * 1024

    public init(dialect: UsageDialect, streaming: Bool, stripUsageChunk: Bool) {
        self.dialect = dialect
        self.streaming = streaming
        self.stripUsageChunk = stripUsageChunk
    }

    /// Bytes to forward now for this chunk.
    public mutating func consume(_ chunk: [UInt8]) -> [UInt8] {
        guard streaming else {
            if copy.count + chunk.count <= Self.maxCopy { copy += chunk } else { copyOverflowed = true }
            return chunk
        }
        pending += chunk
        var out: [UInt8] = []
        while let end = Self.eventEnd(in: pending) {
            let event = Array(pending[..<end])
            pending.removeFirst(end)
            if observe(event: event) { out += event }
        }
        return out
    }

    /// Bytes still held back when the upstream ends.
    public mutating func finish() -> [UInt8] {
        if streaming {
            let rest = pending
            pending = []
            return rest.isEmpty || observe(event: rest) ? rest : []
        }
        if !copyOverflowed, let reported = try? UsageDialect.decoder.decode(ReportedUsage.self, from: Data(copy)) {
            usage = reported.tokens(dialect)
        }
        copy = []
        return []
    }

    /// Reads one SSE event; returns whether to forward it.
    private mutating func observe(event: [UInt8]) -> Bool {
        let text = String(decoding: event, as: UTF8.self)
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("data:") {
            let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
            guard payload.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any]
            else { continue }
            if let found = Self.usage(in: object, dialect: dialect, previous: usage) {
                usage = found
                if stripUsageChunk, dialect == .openAI, (object["choices"] as? [Any])?.isEmpty == true { return false }
            }
        }
        return true
    }

    static func usage(in object: [String: Any], dialect: UsageDialect, previous: TokenUsage?) -> TokenUsage? {
        switch dialect {
        case .openAI:
            guard let usage = object["usage"] as? [String: Any] else { return nil }
            let input = (usage["prompt_tokens"] ?? usage["input_tokens"]) as? NSNumber
            let output = (usage["completion_tokens"] ?? usage["output_tokens"]) as? NSNumber
            guard input != nil || output != nil else { return nil }
            return TokenUsage(input: input?.intValue ?? 0, output: output?.intValue ?? 0)
        case .anthropic:
            // message_start carries the input count; message_delta a cumulative output count.
            let usage = (object["usage"] as? [String: Any]) ?? ((object["message"] as? [String: Any])?["usage"] as? [String: Any])
            guard let usage else { return nil }
            var result = previous ?? TokenUsage(input: 0, output: 0)
            if let input = usage["input_tokens"] as? NSNumber {
                let cached = ((usage["cache_creation_input_tokens"] as? NSNumber)?.intValue ?? 0)
                    + ((usage["cache_read_input_tokens"] as? NSNumber)?.intValue ?? 0)
                result.input = input.intValue + cached
            }
            if let output = usage["output_tokens"] as? NSNumber { result.output = output.intValue }
            return result
        }
    }

    /// The usage of a whole (non-streamed) answer: `usage`, or Anthropic's `message.usage`.
    struct ReportedUsage: Decodable {
        struct Counts: Decodable {
            var promptTokens, completionTokens, inputTokens, outputTokens, cacheCreationInputTokens, cacheReadInputTokens: Int?

            enum CodingKeys: String, CodingKey {
                case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", inputTokens = "input_tokens",
                     outputTokens = "output_tokens", cacheCreationInputTokens = "cache_creation_input_tokens",
                     cacheReadInputTokens = "cache_read_input_tokens"
            }
        }
        struct Message: Decodable { var usage: Counts? }
        var usage: Counts?
        var message: Message?

        func tokens(_ dialect: UsageDialect) -> TokenUsage? {
            switch dialect {
            case .openAI:
                guard let u = usage, (u.promptTokens ?? u.inputTokens) != nil || (u.completionTokens ?? u.outputTokens) != nil else { return nil }
                return TokenUsage(input: u.promptTokens ?? u.inputTokens ?? 0, output: u.completionTokens ?? u.outputTokens ?? 0)
            case .anthropic:
                guard let u = usage ?? message?.usage, u.inputTokens != nil || u.outputTokens != nil else { return nil }
                return TokenUsage(input: (u.inputTokens ?? 0) + (u.cacheCreationInputTokens ?? 0) + (u.cacheReadInputTokens ?? 0),
                                  output: u.outputTokens ?? 0)
            }
        }
    }

    /// End of the first complete event (after its blank line), if any.
    static func eventEnd(in bytes: [UInt8]) -> Int? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 10 && bytes[i + 1] == 10 { return i + 2 }
            if i + 3 < bytes.count, bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i + 4 }
            i += 1
        }
        return nil
    }
}
