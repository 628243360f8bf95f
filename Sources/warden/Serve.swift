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

    @Flag(help: "Unseal with recovery shares (asked on the terminal, or read from --share-file) instead of the key.")
    var recover = false

    @Option(name: .customLong("share-file"), help: "With --recover: a file holding recovery shares (repeatable).")
    var shareFiles: [String] = []

    func run() async throws {
        umask(0o077)  // every file Warden creates (database, WAL, journal) is private to its user
        signal(SIGHUP, SIG_IGN)  // as `Warden.main` does, for a serve started another way
        let logger = LogSetup.bootstrap(environment: ProcessInfo.processInfo.environment)
        if !runTasksOnEventLoops() { logger.warning("tasks run on Swift's own thread pool: the event loops could not take them") }
        do {
            let opened = try await OpenedStore.open(
                store, listen: listen, source: recover ? ShareReader.source(files: shareFiles) : nil, logger: logger)
            let settings = opened.settings
            logger.info("vault unsealed", metadata: ["store": "\(settings.database)", "listen": "\(settings.listen)"])
            let database = opened.services.database
            let app = buildApplication(
                try ServerEnvironment(settings: settings, services: opened.services, logger: logger),
                onServerRunning: { port in
                    logger.info("listening", metadata: ["address": "\(settings.listen.host):\(port)"])
                    SystemdNotify.send("READY=1")
                })
            // The store closes only once every service has stopped (after a clean stop, and when one
            // failed, such as a port in use): none of them is still opening a connection to it then.
            do { try await app.runService() } catch let unwritten as UsageFlushService.RowsUnwritten {
                // The store is stuck with a write under way: closing it would wait on that write. SQLite and
                // PostgreSQL both keep what was committed; the rows named here are the ones lost.
                logger.critical("\(unwritten)")
                CLIFailure.exit(unwritten)
            } catch {
                try? await database.close()
                throw error
            }
            try await database.close()
            logger.info("store closed")
            logger.info("stopped")
        } catch {
            CLIFailure.exit(error)
        }
    }
}
