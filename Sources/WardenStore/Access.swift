/// What an agent key, or a share of a credential, allows: reading only, or trading too.
public enum Access: String, Sendable, Codable, CaseIterable {
    case read, trade

    /// As stored: anything but `trade` reads only (the schema allows nothing else).
    init(stored: String) { self = stored == Access.trade.rawValue ? .trade : .read }

    /// Whether a key with this access may act through a credential shared at `grant`: a read key
    /// through any share, a trading key only through a trading share.
    public func fits(_ grant: Access) -> Bool { self == .read || grant == .trade }
}
