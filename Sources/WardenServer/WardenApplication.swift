import Hummingbird
import Logging
import WardenCore
import WardenStore

/// What the HTTP application is built from.
public struct ServerEnvironment: Sendable {
    public var settings: ServeSettings
    public var database: Database
    public var vault: Vault?
    public var logger: Logger

    public init(settings: ServeSettings, database: Database, vault: Vault?, logger: Logger) {
        self.settings = settings
        self.database = database
        self.vault = vault
        self.logger = logger
    }
}

/// The router: health, and (in later modules) the management API and the gateway.
public func buildRouter(_ env: ServerEnvironment) -> Router<WardenContext> {
    let router = Router(context: WardenContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: env.settings.maxBodyBytes))
    HealthController(database: env.database, vault: env.vault).addRoutes(to: router)
    return router
}

/// The runnable application: the HTTP server plus the store's lifecycle.
public func buildApplication(
    _ env: ServerEnvironment, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(env),
        configuration: .init(
            address: .hostname(env.settings.listen.host, port: env.settings.listen.port),
            serverName: "warden"),
        services: [StoreService(database: env.database, logger: env.logger)],
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: env.logger)
}
