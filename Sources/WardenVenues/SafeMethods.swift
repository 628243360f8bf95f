import HTTPTypes

extension HTTPRequest.Method {
    /// Safe in HTTP's sense (RFC 9110, section 9.2.1): the method asks for an answer and nothing else.
    /// Warden's one definition, wherever a method decides: what a read-only key may call, which calls can
    /// be an exchange's reads, what is recorded before it is sent, what an upstream call may send again.
    public var isSafe: Bool { Self.isSafe(rawValue) }

    /// The same for a method given by name (upper case, as on the wire).
    public static func isSafe(_ name: String) -> Bool { name == "GET" || name == "HEAD" || name == "OPTIONS" }
}

extension ExchangeCall {
    /// Whether the call's method is safe: only such a call can be one of the venue's reads.
    public var isSafe: Bool { HTTPRequest.Method.isSafe(method) }
}
