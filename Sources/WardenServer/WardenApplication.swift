import Foundation
import Hummingbird
import Logging
import Mustache
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import WardenCore
import WardenHTTP
import WardenStore

/// What the HTTP application is built from.
public struct ServerEnvironment: Sendable {
    public var settings: ServeSettings
    public var services: WardenServices
    public var gateway: Gateway
    /// What users read of what was done (audit rows, usage, paper trading).
    public let activity: Activity
    /// Upstream clients, one per event loop (see `UpstreamClients`); shut them down after use.
    public let upstreams: UpstreamClients
    let metrics = GatewayMetrics()
    public var logger: Logger
    /// The dashboard's pages and its stylesheet and script.
    let templates: MustacheLibrary
    let staticFiles: [String: (contentType: String, body: String)]
    /// TLS on the listen address (`[server] tls_cert`, `tls_key`, `tls_client_ca`); nil: plain HTTP.
    public let tls: FrontTLS?
    /// Peers whose forwarded client address and scheme are believed (`[server] trusted_proxies`).
    public let proxies: TrustedProxies
    /// Single sign-on (`[oidc]`); nil when not configured.
    public let singleSignOn: SingleSignOn?

    public var database: Database { services.database }

    public init(settings: ServeSettings, services: WardenServices, logger: Logger) throws {
        (templates, staticFiles) = try Self.loadWebResources()
        self.settings = settings
        self.services = services
        self.logger = logger
        (tls, proxies) = try Self.front(settings.config.server)
        let pooling = settings.config.gateway
        upstreams = UpstreamClients(
            settings: .init(
                idleTimeout: .seconds(Int64(pooling.upstreamIdleSeconds)),
                maxConnectionsPerOrigin: pooling.upstreamMaxConnectionsPerOrigin))
        gateway = Gateway(services: services, config: settings.config, caller: HTTPUpstreamCaller(clients: upstreams))
        activity = Activity(gateway: gateway, profiles: services.profiles, log: services.audit)
        let caller = HTTPUpstreamCaller(clients: upstreams)
        singleSignOn = settings.config.oidc.map { SingleSignOn(settings: $0, caller: caller, services: services) }
    }

    /// Where the identity provider sends the browser back: `[oidc] redirect_url`, else this server's URL.
    var oidcRedirectURL: String { settings.config.oidc?.redirectURL ?? gatewayURL + "/oidc/callback" }

    /// The templates and static files compiled into the server (`Resources/`, see the EmbedResources plugin).
    static func loadWebResources() throws -> (MustacheLibrary, [String: (contentType: String, body: String)]) {
        let read = { (folder: String) -> [(String, String)] in
            EmbeddedResources.files.compactMap { path, data in
                guard path.hasPrefix(folder + "/") else { return nil }
                return (String(path.dropFirst(folder.count + 1)), String(decoding: data, as: UTF8.self))
            }.sorted { $0.0 < $1.0 }
        }
        var templates: [String: MustacheTemplate] = [:]
        for (file, text) in try read("templates") where file.hasSuffix(".mustache") {
            templates[String(file.dropLast(".mustache".count))] = try MustacheTemplate(string: text)
        }
        var files: [String: (contentType: String, body: String)] = [:]
        for (file, text) in try read("static") {
            files[file] = (file.hasSuffix(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8", text)
        }
        return (MustacheLibrary(templates: templates), files)
    }

    /// The front's TLS and trusted proxies, read from `[server]`; a file or network that cannot be used is
    /// a configuration error naming its setting, before the port opens.
    static func front(_ server: WardenConfig.ServerSection) throws -> (FrontTLS?, TrustedProxies) {
        var tls: FrontTLS?
        if let certificate = server.tlsCert, let key = server.tlsKey {
            do { tls = try FrontTLS(files: .init(certificate: certificate, key: key, clientCA: server.tlsClientCA)) } catch {
                throw ConfigError.invalidValue(key: "server.\(error.setting)", reason: "\(error.path) \(error.problem)")
            }
        }
        let header = TrustedProxies.Header(rawValue: server.forwardedHeader) ?? .xForwardedFor
        do { return (tls, try TrustedProxies(parsing: server.trustedProxies, header: header)) } catch {
            throw ConfigError.invalidValue(key: "server.trusted_proxies", reason: error.description)
        }
    }

    /// Every stream's limits (`[gateway] stream_*`): a frame may be as long as a message, so no message is split.
    var streamLimits: WebSocketLimits {
        let gateway = settings.config.gateway
        return WebSocketLimits(
            maxFrameBytes: gateway.streamMaxMessageBytes, maxMessageBytes: gateway.streamMaxMessageBytes,
            pingInterval: .seconds(gateway.streamPingSeconds))
    }

    /// `http` or `https`, as the listen address is served.
    var scheme: String { tls == nil ? "http" : "https" }

    /// Hosts the gateway answers to: its listen address (and the loopback names when it listens on
    /// loopback), and each of `public_hosts` (a name without a port also with the listen port).
    var allowedHosts: Set<String> {
        let listen = settings.listen
        let port = listen.port
        var hosts: Set<String> =
            ["127.0.0.1", "::1", "localhost"].contains(listen.host)
            ? ["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)"] : [listen.description.lowercased()]
        for host in settings.config.server.publicHosts {
            hosts.insert(host)
            if !Self.hasPort(host) { hosts.insert("\(host):\(port)") }
        }
        return hosts
    }

    /// The gateway's address as agents reach it: the first public host (with the listen port when it
    /// names none), or the listen address.
    var gatewayURL: String {
        guard let host = settings.config.server.publicHosts.first else { return "\(scheme)://\(settings.listen)" }
        return "\(scheme)://\(Self.hasPort(host) ? host : "\(host):\(settings.listen.port)")"
    }

    static func hasPort(_ host: String) -> Bool { host.hasPrefix("[") ? host.contains("]:") : host.contains(":") }
}

/// The router: health, metrics, the management API under `/api/v1`, and the gateway under `/proxy`.
public func buildRouter(_ env: ServerEnvironment) -> Router<WardenContext> {
    let limit = env.settings.maxBodyBytes
    // A HEAD on a route that only answers GET is answered as the GET would be, without its body.
    let router = Router(context: WardenContext.self, options: .autoGenerateHeadEndpoints)
    router.add(middleware: AccessLogMiddleware())
    HealthController(
        probe: StoreProbe(database: env.database, kekVersion: env.services.vault.kek.version), audit: env.gateway.audit,
        vault: env.services.vault
    ).addRoutes(to: router)
    MetricsController(metrics: env.metrics, gateway: env.gateway).addRoutes(to: router)
    GatewayController(
        calls: GatewayCalls(
            gateway: env.gateway, observer: env.metrics, allowedHosts: env.allowedHosts,
            requiresClientCertificate: env.tls?.requiresClientCertificates ?? false),
        clients: env.upstreams, sendWithin: .seconds(env.settings.config.gateway.sendDeadlineSeconds),
        streamLimits: env.streamLimits, handshakeWithin: .seconds(env.settings.config.gateway.upstreamTimeoutSeconds)
    )
    .addRoutes(to: router)

    let api = router.group("api/v1").add(middleware: ProblemMiddleware()).add(middleware: BodyLimitMiddleware(limit: limit))
        .add(middleware: KeyCacheSyncMiddleware(keys: env.gateway.keys))
    OpenAPIController().addRoutes(to: api)
    let auth = AuthController(accounts: env.services.accounts, bodyLimit: limit)
    auth.addPublicRoutes(to: api)
    DeviceLoginController(logins: env.services.deviceLogins, base: env.gatewayURL, bodyLimit: limit).addPublicRoutes(to: api)
    AgentKeyController(agentKeys: env.services.agentKeys, honeyTokens: env.services.honeyTokens, bodyLimit: limit)
        .addDelegationRoutes(to: api, accounts: env.services.accounts)

    let approvals = ApprovalController(
        approvals: env.gateway.approvals, agentKeys: env.services.agentKeys, honeyTokens: env.services.honeyTokens,
        accounts: env.services.accounts)
    approvals.addPublicRoutes(to: api)

    let authenticated = api.group().add(
        middleware: AuthMiddleware(accounts: env.services.accounts, accessTokens: env.services.accessTokens))
    AccessTokenController(tokens: env.services.accessTokens, bodyLimit: limit).addRoutes(to: authenticated)
    auth.addRoutes(to: authenticated)
    ProfileController(profiles: env.services.profiles, goLive: env.gateway.goLive, bodyLimit: limit).addRoutes(to: authenticated)
    PaperController(activity: env.activity).addRoutes(to: authenticated)
    CredentialController(credentials: env.services.credentials, bodyLimit: limit).addRoutes(to: authenticated)
    AgentKeyController(agentKeys: env.services.agentKeys, honeyTokens: env.services.honeyTokens, bodyLimit: limit).addRoutes(
        to: authenticated)
    AuditController(activity: env.activity).addRoutes(to: authenticated)
    UsageController(activity: env.activity).addRoutes(to: authenticated)
    FreezeController(killSwitch: env.services.killSwitch, bodyLimit: limit).addRoutes(to: authenticated)
    HoneyTokenController(honeyTokens: env.services.honeyTokens, bodyLimit: limit).addRoutes(to: authenticated)
    AlarmController(alarms: env.services.alarms).addRoutes(to: authenticated)
    approvals.addRoutes(to: authenticated)
    addDashboard(to: router, env)
    return router
}

/// The web dashboard at `/`: server-rendered pages behind a cookie session.
func addDashboard(to router: Router<WardenContext>, _ env: ServerEnvironment) {
    let web = router.group().add(middleware: WebHeadersMiddleware()).add(middleware: KeyCacheSyncMiddleware(keys: env.gateway.keys))
    let session = WebSession(
        accounts: env.services.accounts, vault: env.services.vault,
        secureCookies: ProcessInfo.processInfo.environment["WARDEN_SECURE_COOKIES"] == "1")
    let app = WebApp(templates: env.templates, session: session, services: env.services, gateway: env.gateway, activity: env.activity)
    for (name, file) in env.staticFiles {
        web.get(RouterPath("/static/\(name)")) { _, _ in
            Response(
                status: .ok, headers: [.contentType: file.contentType, .cacheControl: "max-age=3600"],
                body: .init(byteBuffer: ByteBuffer(string: file.body)))
        }
    }
    WebAuthPages(app: app, singleSignOn: env.singleSignOn.map { ($0, env.oidcRedirectURL) }).addRoutes(to: web)
    WebDevicePages(app: app).addRoutes(to: web)
    WebCredentialPages(app: app).addRoutes(to: web)
    let keyPages = WebKeyPages(app: app, gatewayURL: env.gatewayURL)
    keyPages.addRoutes(to: web)
    WebSafetyPages(app: app, keys: keyPages).addRoutes(to: web)
    WebApprovalPages(app: app).addRoutes(to: web)
    WebSettingsPages(app: app).addRoutes(to: web)
    WebActivityPages(app: app).addRoutes(to: web)
    WebAdminPages(app: app).addRoutes(to: web)
}

/// The runnable application: the HTTP server, then (stopped after it) the batched `last_used_at`
/// writer, the upstream client and the store.
public func buildApplication(
    _ env: ServerEnvironment, onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let responder = buildRouter(env).buildResponder()
    let front = FrontResponder(responder, serverName: "warden", requestIDHeader: RequestID.header, logger: env.logger)
    let bodyCap = max(env.settings.maxBodyBytes, env.settings.config.gateway.maxRequestBytes)
    return Application(
        responder: responder,
        server: .front(
            front, bodyCap: bodyCap, clientTimeout: .seconds(Int64(env.settings.config.server.clientTimeoutSeconds)),
            shutdownGrace: .seconds(Int64(env.settings.config.server.shutdownGraceSeconds)), tls: env.tls, proxies: env.proxies),
        configuration: .init(
            address: .hostname(env.settings.listen.host, port: env.settings.listen.port),
            serverName: "warden"),
        services: [
            UpstreamClientService(clients: env.upstreams),
            UsageFlushService(
                touches: env.gateway.touches, spend: env.gateway.spendBatch, audit: env.gateway.audit,
                finalFlush: .seconds(env.settings.config.server.shutdownGraceSeconds)),
            KeyCacheSyncService(keys: env.gateway.keys, listener: RevisionListener(env.database, logger: env.logger)),
            AuditRetentionService(log: env.services.audit, retainDays: env.settings.config.audit.retainDays, logger: env.logger),
            AlarmService(
                alarms: env.services.alarms, approvals: env.gateway.approvals, caller: HTTPUpstreamCaller(clients: env.upstreams),
                linkBase: env.gatewayURL, logger: env.logger),
            TLSReloadService(tls: env.tls, logger: env.logger),
        ],
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) },
        logger: env.logger)
}

/// Reads the TLS files again on SIGHUP: new connections get the renewed certificate, open ones keep theirs.
/// A file that cannot be read leaves the certificate in use and is logged. Without TLS, SIGHUP is logged and
/// ignored (it never stops the server: `systemctl reload` sends it).
struct TLSReloadService: Service {
    let tls: FrontTLS?
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        try? await cancelWhenGracefulShutdown {
            for await _ in hangups {
                guard let tls else {
                    logger.info("SIGHUP: nothing to reload (no [server] tls_cert)")
                    continue
                }
                do {
                    // Off the event loops: a file on a stalled disk must not stall connections.
                    try await NIOThreadPool.singleton.runIfActive { try tls.reload() }
                    logger.info("TLS certificate reloaded", metadata: ["tls_cert": "\(tls.files.certificate)"])
                } catch {
                    logger.error("TLS certificate not reloaded; the current one stays in use", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

/// Shuts the upstream clients down once the server has drained.
struct UpstreamClientService: Service {
    let clients: UpstreamClients

    func run() async throws {
        try? await gracefulShutdown()
        try await clients.shutdown()
    }
}

/// Writes the gateway's `last_used_at` updates and unbudgeted LLM usage every second instead of per
/// request; at shutdown, also the audit rows still queued, waiting up to `finalFlush` for a store that
/// does not take them at once. Rows still unwritten then make the stop fail loudly (exit status 1).
public struct UsageFlushService: Service {
    let touches: UsageTouches
    let spend: SpendBatch
    let audit: AuditWriter
    let finalFlush: Duration

    public struct RowsUnwritten: Error, CustomStringConvertible {
        public let count: Int
        public var description: String { "\(count) audit rows could not be written before the stop: the store did not take them" }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            await touches.flush()
            await spend.flush()
        }
        await touches.flush()
        await spend.flush()
        let left = await audit.flush(waitingAtMost: finalFlush)
        if left > 0 { throw RowsUnwritten(count: left) }
    }
}

/// Sees changes other processes (the CLI, a second server) make to keys, users, credentials, grants
/// and profiles: the key cache drops what they made stale as soon as PostgreSQL notifies them (`listener`),
/// and within `interval` by the poll, which stays as the fallback (and is all there is on SQLite).
struct KeyCacheSyncService: Service {
    let keys: KeyCache
    let listener: RevisionListener?
    static let interval = Duration.milliseconds(50)

    func run() async throws {
        await withDiscardingTaskGroup { group in
            if let listener {
                group.addTask { [keys] in await listener.run { await keys.sync() } }
            }
            await poll()
            group.cancelAll()
        }
    }

    private func poll() async {
        var rounds = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await keys.sync()
            rounds += 1
            if rounds % 20 == 0 { keys.dropIdle() }  // about once a second
            try? await Task.sleep(for: Self.interval)
        }
    }
}

/// With `[audit] retain_days`, prunes older rows at boot and then hourly (see `AuditArchive.prune`).
struct AuditRetentionService: Service {
    let log: AuditLog
    let retainDays: Int?
    let logger: Logger

    func run() async throws {
        // A service that returns ends the server: without a retention it only waits for the stop.
        guard let retainDays else { return try await gracefulShutdown() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if let pruned = try await AuditArchive.prune(log, before: Clock.nowMillis() - Int64(retainDays) * 86_400_000) {
                    logger.info("audit rows pruned", metadata: ["rows": "\(pruned.rows)", "through_seq": "\(pruned.throughSeq)"])
                }
            } catch {
                logger.error("audit rows could not be pruned", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}

/// Raises alarms from the audit rows that name one and delivers them, and expires approvals that waited
/// too long, every second; at a stop, what is undelivered stays in the outbox for the next start (or
/// another server).
struct AlarmService: Service {
    let alarms: Alarms
    /// Expired approvals are settled on the same beat.
    let approvals: Approvals
    let caller: any UpstreamCaller
    /// The dashboard's address, for the links in alarms.
    let linkBase: String
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                while try await alarms.raisePending().more {}
            } catch {
                logger.error("alarms could not be raised", metadata: ["error": "\(error)"])
            }
            await approvals.expireDue()
            await alarms.dispatchDue(caller: caller, mailer: SMTPMailer(), logger: logger, linkBase: linkBase)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}

/// After any request that may change something (not GET/HEAD), the key cache syncs before the answer
/// goes out: a key revoked, a user disabled or a credential rotated here is in force for the next call.
struct KeyCacheSyncMiddleware: RouterMiddleware {
    typealias Context = WardenContext
    let keys: KeyCache

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head else { return try await next(request, context) }
        do {
            let response = try await next(request, context)
            await keys.sync()
            return response
        } catch {
            await keys.sync()
            throw error
        }
    }
}

/// Runs Swift concurrency's tasks on the server's event loops instead of a separate thread pool, so a
/// call is read, decided, forwarded and answered on the thread that owns its connection, with no
/// thread switch between the steps. Blocking work never runs there: the store and password hashing
/// have thread pools of their own. Call once, at the start of `warden serve`.
public func runTasksOnEventLoops() -> Bool {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
