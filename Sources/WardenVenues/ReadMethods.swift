import HTTPTypes

extension HTTPRequest.Method {
    /// Whether a call with this method is a read: `GET` or `HEAD`. Warden's one definition, wherever a
    /// method decides: what a read-only key may call, which exchange calls can be reads, what is recorded
    /// only once it ends, what an upstream call may send again. `OPTIONS`, safe in HTTP's sense, is not a
    /// read here: no SDK sends one, and a venue may route it as it likes.
    public var isRead: Bool { Self.isRead(rawValue) }

    /// The same for a method given by name (upper case, as on the wire).
    public static func isRead(_ name: String) -> Bool { name == "GET" || name == "HEAD" }
}

extension ExchangeCall {
    /// Whether the call's method is a read: only such a call can be one of the venue's reads.
    public var isRead: Bool { HTTPRequest.Method.isRead(method) }
}
