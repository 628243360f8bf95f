import ArgumentParser
import Foundation

@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "A credential vault and policy-enforcing gateway for trading bots and AI agents.",
        version: "0.1.0",
        subcommands: [
            Serve.self, Keygen.self, UserCommand.self, VaultCommand.self, AuditCommand.self, Login.self, Logout.self, Run.self,
            Freeze.self, Unfreeze.self, NotifyCommand.self, TokenCommand.self,
            OIDCCommand.self,
        ])

    static func main() async {
        // `warden serve`: a SIGHUP (`systemctl reload`) before the server traps it must not end it. Only there:
        // an ignored signal stays ignored in the programs `warden run` starts.
        if CommandLine.arguments.dropFirst().first == "serve" { signal(SIGHUP, SIG_IGN) }
        await main(nil)
    }
}
