import ArgumentParser
import Foundation
import WardenCore

/// Account administration from the server's host (registration is closed). Works while the server runs.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Create and manage user accounts.",
        subcommands: [Create.self, List.self, Disable.self, Enable.self, ResetPassword.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user. Without PASSWORD a strong one is generated and printed once.")
        @OptionGroup var store: StoreOptions
        @Argument(help: "The user's email address.") var email: String
        @Argument(help: "Initial password (at least 12 characters). Omit it to have one generated.") var password: String?
        @Flag(help: "Do not require a password change at first login.") var noReset = false
        @Flag(help: "Make the user an administrator.") var admin = false

        func run() async {
            umask(0o077)
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let (user, generated) = try await opened.services.accounts.createUser(
                    email: email, password: password, mustReset: !noReset, admin: admin)
                print("created \(user.email)\(admin ? " (admin)" : "")")
                if let generated { print("password: \(generated)") }
                if !noReset { print("the password must be changed at first login") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var store: StoreOptions

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                for user in try await opened.services.accounts.listUsers() {
                    var flags: [String] = []
                    if user.isAdmin { flags.append("admin") }
                    if user.disabled { flags.append("disabled") }
                    if user.mustChangePassword { flags.append("must-change-password") }
                    print("\(user.email)\t\(user.id)\t\(flags.joined(separator: ","))")
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user; their sessions end at once.")
        @OptionGroup var store: StoreOptions
        @Argument var email: String

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let user = try await opened.services.accounts.setDisabled(email: email, true)
                print("disabled \(user.email)")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @OptionGroup var store: StoreOptions
        @Argument var email: String

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let user = try await opened.services.accounts.setDisabled(email: email, false)
                print("enabled \(user.email)")
            }
        }
    }

    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a new generated password (printed once) that must be changed at next login; sessions end.")
        @OptionGroup var store: StoreOptions
        @Argument var email: String

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let password = try await opened.services.accounts.resetPassword(email: email)
                print("password: \(password)")
            }
        }
    }
}
