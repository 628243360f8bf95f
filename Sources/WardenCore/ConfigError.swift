/// A problem in the configuration file, the command line or the environment, naming the key at fault.
public enum ConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case syntax(String)
    case unknownKey(String)
    case invalidValue(key: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read config file \(path): \(reason)"
        case .syntax(let reason): "config file is not valid TOML: \(reason)"
        case .unknownKey(let key): "unknown config key `\(key)`"
        case .invalidValue(let key, let reason): "invalid value for `\(key)`: \(reason)"
        }
    }
}
