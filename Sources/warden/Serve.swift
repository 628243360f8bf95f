import ArgumentParser
import Foundation
import Logging
import WardenCore
import WardenServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unseal the vault and start the server.",
        discussion: """
            The key comes from WARDEN_MASTER_KEY (64 hex or 44 base64 characters) or WARDEN_PASSPHRASE; \
            without either, a terminal is asked for the passphrase. The port opens only after the vault is unsealed.
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "HOST:PORT to listen on. Env: WARDEN_LISTEN. Default: 127.0.0.1:8472")
    var listen: String?

    func run() async throws {
        umask(0o077)  // every file Warden creates (database, WAL, journal) is private to its user
        let logger = LogSetup.bootstrap(environment: ProcessInfo.processInfo.environment)
        if !runTasksOnEventLoops() { logger.warning("tasks run on Swift's own thread pool: the event loops could not take them") }
        do {
            let opened = try await OpenedStore.open(store, listen: listen, logger: logger)
            let settings = opened.settings
            logger.info("vault unsealed", metadata: ["store": "\(settings.database)", "listen": "\(settings.listen)"])
            let app = buildApplication(
                try ServerEnvironment(settings: settings, services: opened.services, logger: logger),
                onServerRunning: { port in logger.info("listening", metadata: ["address": "\(settings.listen.host):\(port)"]) })
            try await app.runService()
            logger.info("stopped")
        } catch {
            CLIFailure.exit(error)
        }
    }
}
