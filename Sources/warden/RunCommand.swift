import ArgumentParser
import Foundation
import WardenVenues

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command wired to the gateway with a short-lived agent key, holding no real credential.",
        discussion: """
            Authenticates with WARDEN_TOKEN (an agent key) or the session saved by `warden login`, mints a child key \
            (the venues named, or all the caller may use; never wider), sets the SDK variables (OPENAI_BASE_URL/\
            OPENAI_API_KEY, ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY, WARDEN_<VENUE>_BASE_URL/WARDEN_<VENUE>_API_KEY, \
            WARDEN_URL), runs COMMAND, forwards SIGINT/SIGTERM/SIGHUP, revokes the key when it exits and returns \
            its exit code. Should `warden run` die, the key still expires after --ttl.
            """)

    @Option(help: "Warden's URL. Env: WARDEN_URL. Default: the saved session's, else http://127.0.0.1:8472") var url: String?
    @Option(name: .customLong("venue"), help: "A venue to delegate (repeatable). Default: every venue the caller may use.")
    var venues: [String] = []
    @Option(help: "Lifetime of the child key: 90s, 30m, 12h, 7d (max 30d).") var ttl: String = "12h"
    @Flag(help: "Print the environment the command would get (keys masked) and start nothing.") var printEnv = false
    @Flag(
        help: """
            Also give the command decoys (honey tokens) under names an attacker would try: WARDEN_ADMIN_KEY, OPENAI_ADMIN_KEY, \
            ANTHROPIC_ADMIN_KEY, BINANCE_API_KEY/BINANCE_API_SECRET. Any use of one through Warden raises an alarm and freezes \
            your keys. Needs the session of `warden login`.
            """)
    var honey = false
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.") var command: [String] = []

    /// Variables that may hold a real credential; the child never inherits them.
    static let scrubbed: Set<String> = [
        "WARDEN_TOKEN", "WARDEN_MASTER_KEY", "WARDEN_PASSPHRASE", "WARDEN_JWT_SECRET", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN", "BINANCE_API_KEY", "BINANCE_API_SECRET", "KALSHI_API_KEY", "KALSHI_PRIVATE_KEY",
        "POLY_API_KEY", "POLY_API_SECRET", "POLY_PASSPHRASE", "POLY_PRIVATE_KEY", "OPENAI_ADMIN_KEY", "ANTHROPIC_ADMIN_KEY",
    ]

    func validate() throws {
        // Everything after the options is the command's, so `--help` arrives here; before any `--`, it is ours.
        if let first = command.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
    }

    func run() async throws {
        let words = command.first == "--" ? Array(command.dropFirst()) : command
        guard printEnv || !words.isEmpty else {
            CLIFailure.exit(CLIFailure(message: "no command given: warden run [options] -- COMMAND [ARGS…]"))
        }
        let environment = ProcessInfo.processInfo.environment
        let ttlSeconds: Int
        do { ttlSeconds = try Self.parseDuration(ttl) } catch { CLIFailure.exit(error) }
        // Fail like a shell before minting anything when the command cannot run.
        var executable = ""
        if !printEnv {
            do { executable = try ChildProcess.resolve(words[0], path: environment["PATH"]) } catch {
                FileHandle.standardError.write(Data("warden: \(error)\n".utf8))
                throw ExitCode(error.exitCode)
            }
        }
        let base = SessionFile.url(flag: url)
        let client = APIClient(baseURL: base)
        let token = environment["WARDEN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let session = token == nil ? SessionFile.load() : nil
        guard token != nil || session != nil else {
            CLIFailure.exit(CLIFailure(message: "not authenticated: run `warden login EMAIL` or set WARDEN_TOKEN to an agent key"))
        }
        var request: [String: Any] = ["ttl_seconds": printEnv ? 60 : ttlSeconds, "name": "warden run: \(words.first ?? "print-env")"]
        if !venues.isEmpty { request["venues"] = venues }
        let minted: [String: Any]
        do {
            minted = try await client.call(.POST, "/api/v1/agent-keys/child", bearer: session?.token, agentKey: token, json: request)
        } catch { CLIFailure.exit(error) }
        guard let childKey = minted["key"] as? String, let scope = minted["venues"] as? [String] else {
            CLIFailure.exit(CLIFailure(message: "unexpected answer from Warden"))
        }
        var childEnvironment = Self.environment(base: environment, url: base, venues: scope, key: childKey)
        if honey, printEnv {
            for name in Self.decoys.map(\.variable) + ["BINANCE_API_SECRET"] { childEnvironment[name] = "(decoy)" }
        } else if honey {
            guard let session else {
                _ = try? await client.call(.DELETE, "/api/v1/agent-keys/self", agentKey: childKey)
                CLIFailure.exit(CLIFailure(message: "--honey needs the session of `warden login` (an agent key cannot make decoys)"))
            }
            do {
                for (variable, kind) in Self.decoys {
                    let made = try await client.call(
                        .POST, "/api/v1/honey-tokens", bearer: session.token,
                        json: ["label": "warden run \(variable): \(words.first ?? "print-env")", "kind": kind])
                    guard let token = made["token"] as? String else { throw CLIFailure(message: "unexpected answer from Warden") }
                    childEnvironment[variable] = token
                }
                childEnvironment["BINANCE_API_SECRET"] = String(
                    (0..<64).map { _ in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".randomElement()! })
            } catch {
                _ = try? await client.call(.DELETE, "/api/v1/agent-keys/self", agentKey: childKey)
                CLIFailure.exit(error)
            }
        }
        if printEnv {
            _ = try? await client.call(.DELETE, "/api/v1/agent-keys/self", agentKey: childKey)
            let masked = "wdn_****"
            let decoyNames = Set(Self.decoys.map(\.variable) + ["BINANCE_API_SECRET"])
            for name in childEnvironment.keys.sorted() where childEnvironment[name] != environment[name] {
                let value = childEnvironment[name]! == childKey ? masked : decoyNames.contains(name) ? "(decoy)" : childEnvironment[name]!
                print("\(name)=\(value)")
            }
            for name in Self.scrubbed.sorted() where environment[name] != nil && childEnvironment[name] == nil { print("unset \(name)") }
            return
        }
        let code: Int32
        do {
            code = try await ChildProcess.run(executable, arguments: Array(words.dropFirst()), environment: childEnvironment)
        } catch {
            _ = try? await client.call(.DELETE, "/api/v1/agent-keys/self", agentKey: childKey)
            FileHandle.standardError.write(Data("warden: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
        do {
            _ = try await client.call(.DELETE, "/api/v1/agent-keys/self", agentKey: childKey)
        } catch {
            FileHandle.standardError.write(Data("warden: could not revoke the run's key (\(error)); it expires in \(ttl)\n".utf8))
        }
        throw ExitCode(code)
    }

    /// `--honey`: the variables that get a decoy, and the decoy's kind.
    static let decoys: [(variable: String, kind: String)] = [
        ("WARDEN_ADMIN_KEY", "agent_key"), ("OPENAI_ADMIN_KEY", "openai"), ("ANTHROPIC_ADMIN_KEY", "anthropic"),
        ("BINANCE_API_KEY", "binance"),
    ]

    /// The child's environment: the SDK variables for each delegated venue, no inherited credentials.
    static func environment(base: [String: String], url: String, venues: [String], key: String) -> [String: String] {
        var out = base.filter { !scrubbed.contains($0.key) && !($0.key.hasPrefix("WARDEN_") && $0.key.hasSuffix("_API_KEY")) }
        out["WARDEN_URL"] = url
        for venue in venues {
            out.merge(VenueRegistry.runEnvironment(venue: venue, gatewayURL: url, key: key)) { $1 }
        }
        return out
    }

    static func parseDuration(_ text: String) throws -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let (number, unit): (Substring, Int) =
            trimmed.last.flatMap { units[$0] }.map { (trimmed.dropLast(), $0) } ?? (Substring(trimmed), 1)
        guard let value = Int(number), value > 0 else {
            throw CLIFailure(message: "--ttl must look like 90s, 30m, 12h or 7d, got \"\(text)\"")
        }
        let seconds = value.multipliedReportingOverflow(by: unit)
        guard !seconds.overflow, (5...(30 * 86_400)).contains(seconds.partialValue) else {
            throw CLIFailure(message: "--ttl must be between 5 seconds and 30 days")
        }
        return seconds.partialValue
    }
}
