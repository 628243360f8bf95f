import ArgumentParser
import Foundation
import Logging
import WardenCore
import WardenCrypto
import WardenServer
import WardenStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unseal the vault and start the server.",
        discussion: """
            The key comes from WARDEN_MASTER_KEY (64 hex or 44 base64 characters) or WARDEN_PASSPHRASE; \
            without either, a terminal is asked for the passphrase. The port opens only after the vault is unsealed.
            """)

    @Option(help: "Data directory (created 0700). Env: WARDEN_DATA_DIR. Default: ./warden-data")
    var dataDir: String?

    @Option(help: "sqlite:///path/warden.db or postgres://user:pass@host:5432/db. Env: WARDEN_DATABASE_URL. Default: SQLite in the data directory")
    var database: String?

    @Option(help: "HOST:PORT to listen on. Env: WARDEN_LISTEN. Default: 127.0.0.1:8472")
    var listen: String?

    @Option(help: "TOML configuration file. Env: WARDEN_CONFIG")
    var config: String?

    func run() async throws {
        umask(0o077)  // every file Warden creates (database, WAL, journal) is private to its user
        let environment = ProcessInfo.processInfo.environment
        let logger = LogSetup.bootstrap(environment: environment)
        do {
            let settings = try ServeSettings.resolve(
                flags: ServeFlags(dataDir: dataDir, database: database, listen: listen, config: config),
                environment: environment)
            try settings.prepareDataDir()
            let source = try KeySource.resolve(environment: environment, prompt: { Terminal.readSecret(prompt: "Vault passphrase: ") })
            let kdf = try KDFSettings.newVaultParameters(environment: environment)
            let db = try Database.open(settings.database, logger: logger)
            let vault: Vault
            do {
                try await Migrator.migrate(db, logger: logger)
                vault = try await Vault.unseal(database: db, source: source, newVaultKDF: kdf, logger: logger)
            } catch {
                try? await db.close()
                throw error
            }
            logger.info("vault unsealed", metadata: ["store": "\(settings.database)", "listen": "\(settings.listen)"])
            let app = buildApplication(
                ServerEnvironment(settings: settings, database: db, vault: vault, logger: logger),
                onServerRunning: { port in logger.info("listening", metadata: ["address": "\(settings.listen.host):\(port)"]) })
            try await app.runService()
            logger.info("stopped")
        } catch {
            CLIFailure.exit(error)
        }
    }
}

/// Argon2id cost for a vault created by this boot (a later boot reads the stored parameters).
enum KDFSettings {
    static func newVaultParameters(environment: [String: String]) throws -> Argon2Parameters {
        var parameters = Argon2Parameters.default
        func read(_ name: String) throws -> UInt32? {
            guard let text = environment[name], !text.isEmpty else { return nil }
            guard let value = UInt32(text) else {
                throw ConfigError.invalidValue(key: name, reason: "must be a positive integer")
            }
            return value
        }
        if let m = try read("WARDEN_KDF_MEMORY_KIB") { parameters.memoryKiB = m }
        if let t = try read("WARDEN_KDF_ITERATIONS") { parameters.iterations = t }
        if let p = try read("WARDEN_KDF_PARALLELISM") { parameters.parallelism = p }
        do { try parameters.validate() } catch {
            throw ConfigError.invalidValue(key: "WARDEN_KDF_*", reason: error.description)
        }
        return parameters
    }
}
