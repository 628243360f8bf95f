import ArgumentParser
import Foundation

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in to a running Warden and save the session for `warden run`.",
        discussion: """
            The password is asked on the terminal, or read from standard input with --password-stdin. With             --device, no password: a code is printed to approve in the dashboard, from any browser where you are logged in.
            """)

    @Argument(help: "Your email address (not with --device).") var email: String?
    @Option(help: "Warden's URL. Env: WARDEN_URL. Default: http://127.0.0.1:8472") var url: String?
    @Flag(help: "Read the password from standard input.") var passwordStdin = false
    @Flag(help: "Log in by approving a code in the dashboard instead of typing a password here.") var device = false

    func validate() throws {
        if device, email != nil || passwordStdin { throw ValidationError("--device takes no email and no --password-stdin") }
        if !device, email == nil { throw ValidationError("give your email address, or use --device") }
    }

    func run() async {
        let base = SessionFile.url(flag: url)
        if device { return await deviceLogin(base) }
        let email = email ?? ""
        let password: String
        if passwordStdin {
            password = (readLine(strippingNewline: true) ?? "")
        } else if let typed = Terminal.readSecret(prompt: "Password: ") {
            password = typed.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        } else {
            CLIFailure.exit(CLIFailure(message: "no terminal to ask for the password: use --password-stdin"))
        }
        do {
            let reply = try await APIClient(baseURL: base).call(.POST, "/api/v1/auth/login", json: ["email": email, "password": password])
            guard let token = reply["access_token"] as? String else { throw CLIFailure(message: "unexpected login answer") }
            try SessionFile(url: base, token: token).save()
            print("logged in to \(base) as \(email)")
            if reply["must_change_password"] as? Bool == true {
                print("you must change your password before using Warden (POST /api/v1/auth/password)")
            }
        } catch {
            CLIFailure.exit(error)
        }
    }
}

extension Login {
    /// RFC 8628 against Warden: print the code, poll until the person approves, denies or the code expires.
    func deviceLogin(_ base: String) async {
        let client = APIClient(baseURL: base)
        do {
            let started = try await client.call(.POST, "/api/v1/auth/device")
            guard let deviceCode = started["device_code"] as? String, let userCode = started["user_code"] as? String,
                let page = started["verification_uri"] as? String
            else { throw CLIFailure(message: "unexpected answer to a device login") }
            var interval = (started["interval"] as? Int) ?? 5
            // Written at once (print would wait in a buffer when the output is a pipe).
            FileHandle.standardOutput.write(
                Data("To log in, open \(page) where you are logged in to Warden and enter the code \(userCode)\n".utf8))
            let deadline = Date().addingTimeInterval(TimeInterval((started["expires_in"] as? Int) ?? 600))
            while Date() < deadline {
                try await Task.sleep(for: .seconds(interval))
                let answer = try await client.poll("/api/v1/auth/device/token", json: ["device_code": deviceCode])
                if let token = answer["access_token"] as? String {
                    try SessionFile(url: base, token: token).save()
                    print("logged in to \(base)")
                    return
                }
                switch answer["error"] as? String {
                case "authorization_pending": continue
                case "slow_down": interval += 5
                case "access_denied": throw CLIFailure(message: "the login was denied in the dashboard")
                default: throw CLIFailure(message: "the code expired before it was approved: run warden login --device again")
                }
            }
            throw CLIFailure(message: "the code expired before it was approved: run warden login --device again")
        } catch {
            CLIFailure.exit(error)
        }
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "End the saved session (revoked on the server) and delete it.")

    func run() async {
        guard let session = SessionFile.load() else {
            print("not logged in")
            return
        }
        do {
            _ = try await APIClient(baseURL: session.url).call(.POST, "/api/v1/auth/logout", bearer: session.token)
        } catch {
            FileHandle.standardError.write(
                Data("warden: the server did not confirm the logout (\(error)); the local session is removed\n".utf8))
        }
        SessionFile.remove()
        print("logged out")
    }
}
