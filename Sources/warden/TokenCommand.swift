import ArgumentParser
import Foundation

/// `warden token`: personal access tokens for scripts and CI, made with the session `warden login` saved.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Personal access tokens for the management API (for scripts and CI; not agent keys).",
        discussion: """
            Made with the session saved by `warden login`; a script sends one as `Authorization: Bearer wdp_…`. \
            Scopes: read (GET and HEAD), manage-keys (reads and agent keys), admin (administrators: everything \
            the API lets them do). No token makes tokens, changes a password, approves an order or goes live.
            """,
        subcommands: [Create.self, List.self, Revoke.self])

    /// The saved login session, or the command ends saying how to get one.
    static func session() -> SessionFile {
        guard let session = SessionFile.load() else {
            CLIFailure.exit(CLIFailure(message: "not logged in: run `warden login EMAIL` first"))
        }
        return session
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a token and print it (it is shown only once).")
        @Argument(help: "A name saying what uses it, e.g. \"nightly report\".") var name: String
        @Option(help: "read, manage-keys or admin.") var scope = "read"
        @Option(help: "Days until it expires (1 to 365).") var days = 30

        func run() async {
            let session = TokenCommand.session()
            do {
                let made = try await APIClient(baseURL: session.url).call(
                    .POST, "/api/v1/tokens", bearer: session.token,
                    json: ["name": name, "scope": scope, "expires_in_days": days])
                guard let token = made["token"] as? String else { throw CLIFailure(message: "unexpected answer") }
                FileHandle.standardError.write(
                    Data("token \(made["id"] ?? "") (\(scope), expires \(made["expires_at"] ?? "")); it is not shown again:\n".utf8))
                print(token)
            } catch {
                CLIFailure.exit(error)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your tokens (never the tokens themselves).")

        func run() async {
            let session = TokenCommand.session()
            do {
                let listed = try await APIClient(baseURL: session.url).call(.GET, "/api/v1/tokens", bearer: session.token)
                for token in listed["tokens"] as? [[String: Any]] ?? [] {
                    let state = (token["revoked_at"] as? String).map { "revoked \($0)" } ?? "expires \(token["expires_at"] ?? "")"
                    let used = (token["last_used_at"] as? String).map { "last used \($0)" } ?? "never used"
                    print("\(token["id"] ?? "")  \(token["scope"] ?? "")  \(token["name"] ?? "")  \(state)  \(used)")
                }
            } catch {
                CLIFailure.exit(error)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token at once.")
        @Argument(help: "The token's id (from `warden token list`).") var id: String

        func validate() throws {
            guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0 == "-") }) else {
                throw ValidationError("a token id is hex digits and dashes, as `warden token list` prints it")
            }
        }

        func run() async {
            let session = TokenCommand.session()
            do {
                _ = try await APIClient(baseURL: session.url).call(.DELETE, "/api/v1/tokens/\(id)", bearer: session.token)
                print("revoked \(id)")
            } catch {
                CLIFailure.exit(error)
            }
        }
    }
}
