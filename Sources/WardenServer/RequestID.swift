import HTTPTypes
import Synchronization

/// Names each request for its log line and its `X-Warden-Request-Id` answer header: a prefix drawn once per
/// process, then a counter, so ids are unique across restarts without a random draw per request.
enum RequestID {
    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        let bits = generator.next() as UInt64
        return String(bits & 0xFFFF_FFFF_FFFF, radix: 16).leftPadded(to: 12)
    }()
    private static let counter = Atomic<UInt64>(0)
    /// The answer header that carries it.
    static let header = HTTPField.Name("X-Warden-Request-Id")!

    static func next() -> String {
        let n = counter.add(1, ordering: .relaxed).newValue
        return "\(prefix)-\(String(n, radix: 16))"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
