import WardenStore

/// How a user holds a credential: as its owner, or through a share at some access.
public enum Holding: Sendable, Equatable {
    case owner
    case shared(Access)

    /// As the API and the dashboard name it: `owner`, `read` or `trade`.
    public var name: String {
        switch self {
        case .owner: "owner"
        case .shared(let access): access.rawValue
        }
    }
}

extension Access {
    /// An access level as a request gives it, or a refusal naming the field.
    static func parse(_ text: String) throws(WardenError) -> Access {
        guard let access = Access(rawValue: text) else { throw WardenError.invalid("access", "must be \"read\" or \"trade\"") }
        return access
    }
}
