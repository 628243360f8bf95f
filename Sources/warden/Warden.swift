import ArgumentParser

@main
struct Warden: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "warden",
        abstract: "A credential vault and policy-enforcing gateway for trading bots and AI agents.",
        version: "0.1.0",
        subcommands: [
            Serve.self, Keygen.self, UserCommand.self, VaultCommand.self, AuditCommand.self, Login.self, Logout.self, Run.self,
            Freeze.self, Unfreeze.self, NotifyCommand.self,
        ])
}
