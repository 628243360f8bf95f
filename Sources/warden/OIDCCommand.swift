import ArgumentParser
import Foundation
import WardenCore

/// `warden oidc set-secret`: the single sign-on client secret, sealed in the vault (never in the TOML file).
struct OIDCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oidc", abstract: "Single sign-on with an OpenID Connect provider ([oidc] in the configuration).",
        subcommands: [SetSecret.self])

    struct SetSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-secret", abstract: "Seal the provider's client secret in the vault.",
            discussion: "The secret is read from the terminal with echo off, or from standard input when it is not a terminal.")
        @OptionGroup var store: StoreOptions

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                guard let oidc = opened.settings.config.oidc else { throw CLIFailure(message: "no [oidc] in the configuration") }
                let secret = try NotifyCommand.Set.readSecret(prompt: "client secret for \(oidc.clientID): ")
                let services = opened.services
                try await OIDCSecret(ServerSecrets(database: services.database, vault: services.vault, audit: services.audit)).set(secret)
                print("sealed the client secret for \(oidc.issuer)")
            }
        }
    }
}
