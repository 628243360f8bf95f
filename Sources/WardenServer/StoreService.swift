import Logging
import ServiceLifecycle
import WardenStore

/// Keeps the store open while the server runs and closes it cleanly on shutdown. Registered before
/// the HTTP server, so it is shut down after the server has drained its in-flight requests.
struct StoreService: Service {
    let database: Database
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        try await database.close()
        logger.info("store closed")
    }
}
