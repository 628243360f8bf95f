import Foundation
import WardenStore

/// Options of `warden serve` as given on the command line (nil when not given).
public struct ServeFlags: Sendable {
    public var dataDir: String?
    public var database: String?
    public var listen: String?
    public var config: String?

    public init(dataDir: String? = nil, database: String? = nil, listen: String? = nil, config: String? = nil) {
        self.dataDir = dataDir
        self.database = database
        self.listen = listen
        self.config = config
    }
}

/// Everything `warden serve` needs to start, resolved as: flag, then environment, then config file, then default.
public struct ServeSettings: Sendable {
    public var listen: ListenAddress
    public var dataDir: String
    public var database: DatabaseLocation
    public var maxBodyBytes: Int
    public var config: WardenConfig

    public static let defaultDataDir = "./warden-data"
    public static let defaultMaxBodyBytes = 1024 * 1024

    public init(listen: ListenAddress, dataDir: String, database: DatabaseLocation, maxBodyBytes: Int, config: WardenConfig) {
        self.listen = listen
        self.dataDir = dataDir
        self.database = database
        self.maxBodyBytes = maxBodyBytes
        self.config = config
    }

    public static func resolve(flags: ServeFlags, environment: [String: String]) throws -> ServeSettings {
        func pick(_ flag: String?, _ variable: String) -> String? {
            flag ?? environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        }
        let config =
            try pick(flags.config, "WARDEN_CONFIG").map { path throws(ConfigError) in try ConfigLoader.load(path: path) }
            ?? WardenConfig()
        let listen =
            try pick(flags.listen, "WARDEN_LISTEN").map { text throws(ConfigError) in try ListenAddress(parsing: text) }
            ?? config.server.listen ?? .default
        let dataDir = pick(flags.dataDir, "WARDEN_DATA_DIR") ?? config.server.dataDir ?? defaultDataDir
        let database: DatabaseLocation
        if let url = pick(flags.database, "WARDEN_DATABASE_URL") ?? config.server.database {
            do { database = try DatabaseLocation(url: url) } catch {
                throw ConfigError.invalidValue(key: "database", reason: error.description)
            }
        } else {
            database = .sqlite(path: (dataDir as NSString).appendingPathComponent("warden.db"))
        }
        return ServeSettings(
            listen: listen, dataDir: dataDir, database: database,
            maxBodyBytes: config.server.maxBodyBytes ?? defaultMaxBodyBytes, config: config)
    }

    /// Creates the data directory (mode 0700) or tightens an existing one to 0700.
    public func prepareDataDir() throws {
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: dataDir, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ConfigError.invalidValue(key: "data_dir", reason: "\(dataDir) exists and is not a directory")
            }
            guard access(dataDir, R_OK | W_OK | X_OK) == 0 else {
                throw ConfigError.invalidValue(
                    key: "data_dir", reason: "cannot read and write \(dataDir) (\(String(cString: strerror(errno))))")
            }
            do { try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dataDir) } catch {
                throw ConfigError.invalidValue(
                    key: "data_dir", reason: "cannot make \(dataDir) private (mode 0700): it belongs to another user")
            }
        } else {
            do {
                try manager.createDirectory(atPath: dataDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ConfigError.invalidValue(
                    key: "data_dir", reason: "cannot create \(dataDir): permission denied or a parent is not a directory")
            }
        }
    }
}
