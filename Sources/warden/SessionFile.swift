import Foundation

/// The login session saved by `warden login`: `$XDG_CONFIG_HOME/warden/session.json` (or
/// `~/.config/warden/session.json`), mode 0600 in a 0700 directory.
struct SessionFile: Codable {
    var url: String
    var token: String

    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        let base =
            environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".config")
        return (base as NSString).appendingPathComponent("warden/session.json")
    }

    static func load() -> SessionFile? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(SessionFile.self, from: data)
    }

    func save() throws {
        let directory = (Self.path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let data = try JSONEncoder().encode(self)
        let previous = umask(0o077)
        defer { umask(previous) }
        guard FileManager.default.createFile(atPath: Self.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw CLIFailure(message: "cannot write \(Self.path)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: Self.path)
    }

    static func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Where the server is: the flag, then WARDEN_URL, then the saved session's, then the default.
    static func url(flag: String?) -> String {
        let chosen =
            flag ?? ProcessInfo.processInfo.environment["WARDEN_URL"].flatMap { $0.isEmpty ? nil : $0 }
            ?? load()?.url ?? "http://127.0.0.1:8472"
        return chosen.hasSuffix("/") ? String(chosen.dropLast()) : chosen
    }
}
