import ArgumentParser
import WardenCrypto
import Foundation
import Logging
import WardenCore
import WardenStore

/// Where the store is: shared by every command that opens it.
struct StoreOptions: ParsableArguments {
    @Option(help: "Data directory (created 0700). Env: WARDEN_DATA_DIR. Default: ./warden-data")
    var dataDir: String?

    @Option(
        help:
            "sqlite:///path/warden.db or postgres://user:pass@host:5432/db. Env: WARDEN_DATABASE_URL. Default: SQLite in the data directory"
    )
    var database: String?

    @Option(help: "TOML configuration file. Env: WARDEN_CONFIG")
    var config: String?
}

/// An open, migrated store with its vault unsealed, and the services built on it.
struct OpenedStore {
    let settings: ServeSettings
    let services: WardenServices

    /// Resolves settings, unseals (asking a terminal for the passphrase when needed, or with `source`), migrates.
    /// `rotating`: the caller rotates the key at once (`vault recover`), so a recovery is not told to.
    static func open(
        _ options: StoreOptions, listen: String? = nil, source: KeySource? = nil, rotating: Bool = false, logger: Logger
    ) async throws -> OpenedStore {
        ProcessHardening.apply()
        let environment = ProcessInfo.processInfo.environment
        let (settings, db) = try await MigratedStore.open(options, listen: listen, logger: logger)
        do {
            let keySource =
                try source ?? KeySource.resolve(environment: environment, prompt: { Terminal.readSecret(prompt: "Vault passphrase: ") })
            let kdf = try KDFSettings.newVaultParameters(environment: environment)
            let vault = try await Vault.unseal(database: db, source: keySource, newVaultKDF: kdf, logger: logger)
            do { try await db.probeWrite() } catch {
                throw StoreError.unusable(
                    "the store does not take writes (read-only, full, or locked by another process): \(Self.oneLine(error))")
            }
            let services = try await WardenServices.make(database: db, vault: vault, config: settings.config, environment: environment)
            if case .recoveryShares = keySource { try await Self.recordRecovery(services, rotating: rotating, logger: logger) }
            return OpenedStore(settings: settings, services: services)
        } catch {
            try? await db.close()
            throw error
        }
    }

    /// A recovery boot is an alarm: the key was lost or is out of reach, and whoever holds enough shares has it.
    static func recordRecovery(_ services: WardenServices, rotating: Bool, logger: Logger) async throws {
        try await services.audit.append(
            AuditEntry(
                actor: nil, owner: nil, action: "vault.recovery_boot", outcome: .recorded,
                detail: ["alarm": AlarmEvent.recoveryBoot.rawValue]))
        if !rotating {
            logger.critical("the vault was unsealed from recovery shares: rotate its key now (`warden vault rotate`) and split the new one")
        }
    }

    /// A driver's error on one line, for the boot's one-line refusal.
    static func oneLine(_ error: any Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ").prefix(300).description
    }

    func close() async {
        try? await services.database.close()
    }

    /// Runs `body` with an opened store, closing it afterwards; any error becomes `warden: …` and exit 1.
    static func with(_ options: StoreOptions, logger: Logger, _ body: (OpenedStore) async throws -> Void) async {
        do {
            let store = try await open(options, logger: logger)
            do { try await body(store) } catch {
                await store.close()
                CLIFailure.exit(error)
            }
            await store.close()
        } catch {
            CLIFailure.exit(error)
        }
    }
}

/// The store opened and migrated, its vault still sealed (the vault commands unseal it themselves).
enum MigratedStore {
    static func open(_ options: StoreOptions, listen: String? = nil, logger: Logger) async throws -> (ServeSettings, Database) {
        let settings = try ServeSettings.resolve(
            flags: ServeFlags(dataDir: options.dataDir, database: options.database, listen: listen, config: options.config),
            environment: ProcessInfo.processInfo.environment)
        try settings.prepareDataDir()
        let db = try Database.open(settings.database, logger: logger)
        do {
            try await Migrator.migrate(db, logger: logger)
        } catch {
            try? await db.close()
            throw error
        }
        return (settings, db)
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
