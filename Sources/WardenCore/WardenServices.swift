import WardenCrypto
import WardenStore
import WardenVenues

/// Everything the management side does, built once the vault is unsealed.
public struct WardenServices: Sendable {
    public let database: Database
    public let vault: Vault
    public let audit: AuditLog
    public let accounts: Accounts
    /// `warden login --device`: a login approved in the dashboard.
    public let deviceLogins: DeviceLogins
    /// Personal access tokens for the management API.
    public let accessTokens: AccessTokens
    public let profiles: Profiles
    public let credentials: Credentials
    public let agentKeys: AgentKeys
    public let killSwitch: KillSwitch
    public let honeyTokens: HoneyTokens
    public let alarms: Alarms
    /// The venues the gateway serves: the built-in ones and the config's REST services.
    public let venues: VenueRegistry

    public static func make(
        database: Database, vault: Vault, config: WardenConfig, environment: [String: String],
        passwordParameters: Argon2Parameters = PasswordHasher.defaultParameters
    ) async throws -> WardenServices {
        let audit = AuditLog(database: database, vault: vault)
        let lifetime = SessionLifetime(idleSeconds: config.server.sessionHours * 3600, maxSeconds: config.server.sessionMaxDays * 86_400)
        let tokens = try await TokenService.make(
            environment: environment, vault: vault, database: database, lifetimeSeconds: lifetime.maxSeconds)
        let accounts = Accounts(
            database: database, hasher: try PasswordHasher(parameters: passwordParameters),
            tokens: tokens, audit: audit, throttle: LoginThrottle(database: database), lifetime: lifetime)
        let venues = VenueRegistry.make(config: config)
        let credentials = Credentials(database: database, vault: vault, audit: audit, venues: venues)
        let agentKeys = AgentKeys(database: database, vault: vault, audit: audit, credentials: credentials)
        let killSwitch = KillSwitch(database: database, audit: audit)
        return WardenServices(
            database: database, vault: vault, audit: audit, accounts: accounts,
            deviceLogins: DeviceLogins(accounts: accounts, audit: audit),
            accessTokens: AccessTokens(database: database, audit: audit),
            profiles: Profiles(database: database, audit: audit), credentials: credentials,
            agentKeys: agentKeys, killSwitch: killSwitch,
            honeyTokens: HoneyTokens(database: database, audit: audit, agentKeys: agentKeys, killSwitch: killSwitch),
            alarms: Alarms(database: database, vault: vault, audit: audit, channels: config.notify), venues: venues)
    }
}
