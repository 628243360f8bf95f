import Foundation

/// How an LLM venue describes a call's size before it is sent and its token usage after.
public enum UsageDialect: Sendable {
    case openAI, anthropic

    /// What a request asks for: the model, its output ceiling, how many generations, whether it streams.
    public struct RequestInfo: Sendable, Equatable {
        public var model: String?
        /// The largest output ceiling the request gives, in any ceiling field (nil: none given).
        public var maxOutputTokens: Int?
        /// Each ceiling field given, with its value.
        public var ceilings: [String: Int] = [:]
        /// Generations billed for one call (`n`, `best_of`, one per prompt of a legacy prompt list).
        public var generations: Int = 1
        public var stream: Bool
        /// A field the venue reads holds a value Warden will not price (a negative or absurd ceiling, a bad `n`).
        public var invalid: String?

        public init(model: String?, maxOutputTokens: Int?, generations: Int = 1, stream: Bool, invalid: String? = nil) {
            self.model = model
            self.maxOutputTokens = maxOutputTokens
            self.generations = generations
            self.stream = stream
            self.invalid = invalid
        }
    }

    /// Output ceilings and generation counts above these are refused: no model comes near them.
    public static let maxCeiling = 1_000_000
    public static let maxGenerations = 128

    public func inspect(_ body: Data) -> RequestInfo {
        guard let fields = try? JSONMembers.read(body, names: Self.requestFields) else {
            return RequestInfo(model: nil, maxOutputTokens: nil, stream: false)
        }
        var info = RequestInfo(model: fields["model"]?.string, maxOutputTokens: nil, stream: fields["stream"]?.bool ?? false)
        // Every field the venue may read as a ceiling counts, the largest wins; a value it would not refuse
        // but Warden cannot price (negative, zero, fractional, absurd, of another type) refuses the call.
        for name in Self.ceilingFields {
            guard let member = fields[name], member != .null else { continue }
            guard let value = member.integer, (1...Self.maxCeiling).contains(value) else {
                info.invalid = "\(name) must be a whole number of tokens from 1 to \(Self.maxCeiling)"
                return info
            }
            info.maxOutputTokens = max(info.maxOutputTokens ?? 0, value)
            info.ceilings[name] = value
        }
        for name in Self.generationFields {
            guard let member = fields[name], member != .null else { continue }
            guard let value = member.integer, (1...Self.maxGenerations).contains(value) else {
                info.invalid = "\(name) must be a whole number from 1 to \(Self.maxGenerations)"
                return info
            }
            info.generations = max(info.generations, value)
        }
        return info
    }

    /// Input tokens an Anthropic cache write is counted as: a one-hour write is billed at twice the input price.
    public static let cacheWriteWeight = 2

    /// How many input tokens a request's input may be billed as, per token it carries (Anthropic may write it all to the cache).
    public var inputWeight: Int { self == .anthropic ? Self.cacheWriteWeight : 1 }

    static let ceilingFields = ["max_tokens", "max_completion_tokens", "max_output_tokens", "max_tokens_to_sample"]
    static let generationFields = ["n", "best_of"]
    static let requestFields: Set<String> = Set(["model", "stream"] + ceilingFields + generationFields)

    /// The usage a whole (non-streamed) answer reports: `usage`, or Anthropic's `message.usage`.
    public func reportedUsage(in body: UnsafeRawBufferPointer) -> TokenUsage? {
        guard let top = try? JSONMembers.read(body, names: ["usage", "message"]) else { return nil }
        var counts = top["usage"]?.objectRange
        if counts == nil, self == .anthropic, let message = top["message"]?.objectRange {
            counts = (try? JSONMembers.read(body, range: message, names: ["usage"]))?["usage"]?.objectRange
        }
        guard let counts, let u = try? JSONMembers.read(body, range: counts, names: Self.usageFields) else { return nil }
        let count = { (name: String) in u[name]?.integer }
        switch self {
        case .openAI:
            let input = count("prompt_tokens") ?? count("input_tokens"), output = count("completion_tokens") ?? count("output_tokens")
            guard input != nil || output != nil else { return nil }
            return TokenUsage(input: input ?? 0, output: output ?? 0)
        case .anthropic:
            guard count("input_tokens") != nil || count("output_tokens") != nil else { return nil }
            // A cache write costs up to twice an input token (one-hour writes): it counts as two.
            return TokenUsage(
                input: (count("input_tokens") ?? 0) + Self.cacheWriteWeight * (count("cache_creation_input_tokens") ?? 0)
                    + (count("cache_read_input_tokens") ?? 0),
                output: count("output_tokens") ?? 0)
        }
    }

    static let usageFields: Set<String> = [
        "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    ]

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
        if !copyOverflowed { usage = copy.withUnsafeBytes { dialect.reportedUsage(in: $0) } }
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
                let cached =
                    UsageDialect.cacheWriteWeight * ((usage["cache_creation_input_tokens"] as? NSNumber)?.intValue ?? 0)
                    + ((usage["cache_read_input_tokens"] as? NSNumber)?.intValue ?? 0)
                result.input = input.intValue + cached
            }
            if let output = usage["output_tokens"] as? NSNumber { result.output = output.intValue }
            return result
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
