import Foundation
import Testing
import WardenStore
@testable import WardenCore

@Suite struct ServeSettingsTests {
    @Test func defaultsAreLocalAndOnSQLite() throws {
        let settings = try ServeSettings.resolve(flags: ServeFlags(), environment: [:])
        #expect(settings.listen == .default)
        #expect(settings.dataDir == "./warden-data")
        #expect(settings.database == .sqlite(path: "./warden-data/warden.db"))
    }

    @Test func flagBeatsEnvironmentBeatsConfigFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("warden-\(UUID()).toml")
        try "[server]\nlisten = \"127.0.0.1:1000\"\ndata_dir = \"/tmp/from-file\"\n".write(to: file, atomically: true, encoding: .utf8)
        let env = ["WARDEN_CONFIG": file.path, "WARDEN_LISTEN": "127.0.0.1:2000"]
        var settings = try ServeSettings.resolve(flags: ServeFlags(), environment: env)
        #expect(settings.listen.port == 2000)
        #expect(settings.dataDir == "/tmp/from-file")
        settings = try ServeSettings.resolve(flags: ServeFlags(listen: "127.0.0.1:3000"), environment: env)
        #expect(settings.listen.port == 3000)
        settings = try ServeSettings.resolve(flags: ServeFlags(), environment: ["WARDEN_CONFIG": file.path])
        #expect(settings.listen.port == 1000)
    }

    @Test func databaseURLsAreParsed() throws {
        let pg = try ServeSettings.resolve(flags: ServeFlags(database: "postgres://u:p@127.0.0.1:5432/w"), environment: [:])
        #expect(pg.database == .postgres(url: "postgres://u:p@127.0.0.1:5432/w"))
        #expect(pg.database.description == "postgres://u:****@127.0.0.1:5432/w")
        let lite = try ServeSettings.resolve(flags: ServeFlags(), environment: ["WARDEN_DATABASE_URL": "sqlite:///var/w.db"])
        #expect(lite.database == .sqlite(path: "/var/w.db"))
        #expect(throws: ConfigError.self) { try ServeSettings.resolve(flags: ServeFlags(database: "mysql://x"), environment: [:]) }
        #expect(throws: ConfigError.self) { try ServeSettings.resolve(flags: ServeFlags(database: "sqlite://"), environment: [:]) }
    }

    @Test func missingConfigFileIsAnError() {
        #expect(throws: ConfigError.self) {
            try ServeSettings.resolve(flags: ServeFlags(config: "/nonexistent/warden.toml"), environment: [:])
        }
    }

    @Test func dataDirIsCreatedPrivate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("warden-dd-\(UUID())/nested").path
        let settings = try ServeSettings.resolve(flags: ServeFlags(dataDir: dir), environment: [:])
        try settings.prepareDataDir()
        let mode = try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int
        #expect(mode == 0o700)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir)
        try settings.prepareDataDir()
        #expect(try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int == 0o700)
    }
}
