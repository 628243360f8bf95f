import Hummingbird
import Logging
import WardenCore
import WardenStore

/// What the HTTP application is built from.
public struct ServerEnvironment: Sendable {
    public var settings: ServeSettings
    public var services: WardenServices
    public var logger: Logger

    public var database: Database { services.database }

    public init(settings: ServeSettings, services: WardenServices, logger: Logger) {
        self.settings = settings
        self.services = services
        self.logger = logger
    }
}

/// The router: health, the OpenAPI document and the management API under `/api/v1`.
public func buildRouter(_ env: ServerEnvironment) -> Router<WardenContext> {
    let limit = env.settings.maxBodyBytes
    let router = Router(context: WardenContext.self)
    router.add(middleware: AccessLogMiddleware())
    router.add(middleware: BodyLimitMiddleware(limit: limit))
    HealthController(database: env.database, vault: env.services.vault).addRoutes(to: router)

    let api = router.group("api/v1").add(middleware: ProblemMiddleware())
    OpenAPIController().addRoutes(to: api)
    let auth = AuthController(accounts: env.services.accounts, bodyLimit: limit)
    auth.addPublicRoutes(to: api)

    let authenticated = api.group().add(middleware: AuthMiddleware(accounts: env.services.accounts))
    auth.addRoutes(to: authenticated)
    ProfileController(profiles: env.services.profiles, bodyLimit: limit).addRoutes(to: authenticated)
    CredentialController(credentials: env.services.credentials, bodyLimit: limit).addRoutes(to: authenticated)
    AgentKeyController(agentKeys: env.services.agentKeys, bodyLimit: limit).addRoutes(to: authenticated)
    AuditController(database: env.database).addRoutes(to: authenticated)
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
