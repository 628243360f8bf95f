import ArgumentParser
import Foundation

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Log in to a running Warden and save the session for `warden run`.",
        discussion: "The password is asked on the terminal, or read from standard input with --password-stdin.")

    @Argument(help: "Your email address.") var email: String
    @Option(help: "Warden's URL. Env: WARDEN_URL. Default: http://127.0.0.1:8472") var url: String?
    @Flag(help: "Read the password from standard input.") var passwordStdin = false

    func run() async {
        let base = SessionFile.url(flag: url)
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
