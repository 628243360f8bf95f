import ArgumentParser
import Foundation
import WardenCore
import WardenCrypto
import WardenStore

/// `warden freeze`: the kill switch from the server's host. Works while servers run: each one's key cache
/// sees the freeze within its poll.
struct Freeze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop every agent key of a user (--user) or of everyone (--all) at once, on every server sharing the store.")
    @OptionGroup var store: StoreOptions
    @Option(help: "Freeze this user's keys.") var user: String?
    @Flag(help: "Freeze every agent key.") var all = false
    @Option(help: "Why (recorded in the audit log and the alarm).") var reason: String = "frozen by the operator"
    @Flag(help: "List the freezes in force and change nothing.") var list = false

    func run() async {
        await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
            let killSwitch = opened.services.killSwitch
            if list {
                let freezes = try await killSwitch.list()
                if freezes.isEmpty { print("no freeze in force") }
                for freeze in freezes {
                    print("\(freeze.scope)\t\(Dates.text(millis: freeze.frozenAt))\t\(freeze.frozenBy)\t\(freeze.reason)")
                }
                return
            }
            let scope = try await killSwitch.scope(all: all, email: user, caller: nil)
            let changed = try await killSwitch.freeze(scope, reason: reason, by: .operatorCLI)
            print(changed ? "frozen: \(scope)" : "already frozen: \(scope)")
        }
    }
}

/// `warden unfreeze`: lifts a freeze; the host's operator is a person holding the vault key.
struct Unfreeze: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Lift the freeze of a user's keys (--user) or of every key (--all).")
    @OptionGroup var store: StoreOptions
    @Option(help: "Lift the freeze of this user's keys.") var user: String?
    @Flag(help: "Lift the freeze of every key.") var all = false

    func run() async {
        await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
            let killSwitch = opened.services.killSwitch
            let scope = try await killSwitch.scope(all: all, email: user, caller: nil)
            let changed = try await killSwitch.unfreeze(scope, by: .operatorCLI)
            print(changed ? "lifted: \(scope)" : "not frozen: \(scope)")
        }
    }
}

/// `warden notify`: the alarm channels' secrets and a test message.
struct NotifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify", abstract: "Set alarm channels' secrets and send test alarms.", subcommands: [Set.self, Test.self, List.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Seal a channel's secret in the vault: a webhook's signing secret, a Slack or Discord webhook URL, a Telegram bot token.",
            discussion: "The secret is read from the terminal with echo off, or from standard input when it is not a terminal.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The channel's name, as in [notify.NAME].") var channel: String

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                guard let kind = opened.services.alarms.channels[channel]?.kind else {
                    throw CLIFailure(message: "no [notify.\(channel)] in the configuration")
                }
                let secret = try Self.readSecret(prompt: "\(kind.secretName) for \(channel): ")
                try await opened.services.alarms.setSecret(channel: channel, secret: secret, actor: nil)
                print("sealed the \(kind.secretName) of \(channel)")
            }
        }

        static func readSecret(prompt: String) throws -> String {
            if let typed = Terminal.readSecret(prompt: prompt) { return typed.withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard data.count <= 4096 else { throw CLIFailure(message: "the secret on standard input is longer than 4096 bytes") }
            return String(decoding: data, as: UTF8.self)
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Raise a test alarm for one channel (or every channel); a running server delivers it.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The channel's name; every channel when omitted.") var channel: String?

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                try await opened.services.alarms.test(channel: channel, actor: nil)
                print("test alarm raised for \(channel ?? "every channel"); a running server delivers it within seconds")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the configured channels and whether each has its secret.")
        @OptionGroup var store: StoreOptions

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let alarms = opened.services.alarms
                for channel in alarms.channels.values.sorted(by: { $0.name < $1.name }) {
                    let set =
                        try await ServerSecretRepository(opened.services.database).find(name: NotifyChannel.secretName(channel.name)) != nil
                    let routing =
                        channel.events.map { $0.map(\.rawValue).sorted().joined(separator: ",") } ?? "\(channel.minSeverity.rawValue)+"
                    print(
                        "\(channel.name)\t\(channel.kind.rawValue)\t\(routing)\t\(set ? "secret set" : "NO SECRET: warden notify set \(channel.name)")"
                    )
                }
            }
        }
    }
}
