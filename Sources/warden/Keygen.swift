import ArgumentParser
import WardenCrypto

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a fresh random master key (64 hex characters) for WARDEN_MASTER_KEY.",
        discussion: "Keep it somewhere safe: without it the vault cannot be opened, and nobody can recover it.")

    func run() {
        print(MasterKey.generate().hexEncoded())
    }
}
