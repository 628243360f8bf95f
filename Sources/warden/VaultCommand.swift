import ArgumentParser
import Foundation
import Logging
import WardenCore
import WardenCrypto
import WardenStore

struct VaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault", abstract: "Rotate the vault's key, split it into recovery shares, recover it from them.",
        subcommands: [Rotate.self, Split.self, Recover.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the vault to a new key: every secret's data key is re-wrapped, the old key opens nothing afterwards.",
            discussion: """
                The current key comes from WARDEN_MASTER_KEY or WARDEN_PASSPHRASE (or a terminal prompt), the new one from \
                WARDEN_NEW_MASTER_KEY or WARDEN_NEW_PASSPHRASE (or a prompt, asked twice). The rotation is one transaction: \
                interrupted, it leaves the vault on the old key, and running it again finishes it. Servers still running \
                on the old key refuse every call from then on: restart them with the new key.
                """)
        @OptionGroup var store: StoreOptions

        func run() async {
            ProcessHardening.apply()
            let logger = LogSetup.cli()
            do {
                let (_, db) = try await MigratedStore.open(store, logger: logger)
                let message: String
                do { message = try await rotate(db, logger: logger) } catch {
                    try? await db.close()
                    throw error
                }
                try await db.close()
                print(message)
            } catch {
                CLIFailure.exit(error)
            }
        }

        /// Rotates, or finds the job done by a run cut short after its commit; returns what to tell the operator.
        private func rotate(_ db: Database, logger: Logger) async throws -> String {
            let environment = ProcessInfo.processInfo.environment
            let current = try KeySource.resolve(
                environment: environment, prompt: { Terminal.readSecret(prompt: "Current vault passphrase: ") })
            let next = try NewKey.resolve(environment)
            let vault: Vault
            do {
                vault = try await VaultKey.unsealExisting(db, source: current, logger: logger)
            } catch let error as VaultError {
                guard let done = try? await VaultKey.unsealExisting(db, source: next, logger: logger) else { throw error }
                return "the vault already opens with the new key (version \(done.kek.version)): the rotation is complete"
            }
            let result = try await VaultRotation.rotate(
                database: db, from: vault, to: next, kdf: try KDFSettings.newVaultParameters(environment: environment), logger: logger)
            return """
                vault key rotated: version \(result.fromVersion) → \(result.toVersion), \(result.rewrapped) sealed values re-wrapped.
                The old key opens nothing now. Restart every server with the new key; recovery shares of the old key no
                longer work: run `warden vault split` again.
                """
        }
    }

    struct Split: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print N recovery shares of the vault's key, any K of which rebuild it. Shares are never stored.")
        @OptionGroup var store: StoreOptions
        @Option(help: "How many shares to make (2–255).") var shares: Int
        @Option(help: "How many shares rebuild the key (2–shares).") var threshold: Int

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let vault = opened.services.vault
                let made = try RecoveryShares.split(vault.kek, count: shares, threshold: threshold, vaultID: vault.vaultID)
                try await opened.services.audit.append(
                    AuditEntry(
                        actor: nil, owner: nil, action: "vault.split", target: vault.vaultID,
                        detail: ["shares": "\(shares)", "threshold": "\(threshold)", "kek_version": "\(vault.kek.version)"]))
                print("\(shares) recovery shares of key version \(vault.kek.version); any \(threshold) of them rebuild it.")
                print("Give each to a different person; store none of them with the server.\n")
                for share in made { print(share.text) }
            }
        }
    }

    struct Recover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild the vault's key from recovery shares and rotate straight to a new key.",
            discussion: """
                The shares are asked for on the terminal, or read from the files given with --share-file (one share per \
                line). The new key comes from WARDEN_NEW_MASTER_KEY or WARDEN_NEW_PASSPHRASE, or a prompt.
                """)
        @OptionGroup var store: StoreOptions
        @Option(name: .customLong("share-file"), help: "A file holding recovery shares (repeatable).") var shareFiles: [String] = []

        func run() async {
            let logger = LogSetup.cli()
            do {
                let next = try NewKey.resolve(ProcessInfo.processInfo.environment)
                let opened = try await OpenedStore.open(
                    store, source: ShareReader.source(files: shareFiles), rotating: true, logger: logger)
                do {
                    let result = try await VaultRotation.rotate(
                        database: opened.services.database, from: opened.services.vault, to: next,
                        kdf: try KDFSettings.newVaultParameters(environment: ProcessInfo.processInfo.environment), logger: logger)
                    print("vault recovered and its key rotated to version \(result.toVersion): start the servers with the new key")
                } catch {
                    await opened.close()
                    throw error
                }
                await opened.close()
            } catch {
                CLIFailure.exit(error)
            }
        }
    }
}

/// A rotation's new key: from WARDEN_NEW_MASTER_KEY or WARDEN_NEW_PASSPHRASE, or asked twice on the terminal.
enum NewKey {
    static func resolve(_ environment: [String: String]) throws -> KeySource {
        do { return try ask(environment) } catch .noKey {
            throw CLIFailure(
                message:
                    "no new key: set WARDEN_NEW_MASTER_KEY (`warden keygen` makes one) or WARDEN_NEW_PASSPHRASE, or run in a terminal to be asked"
            )
        }
    }

    private static func ask(_ environment: [String: String]) throws(VaultError) -> KeySource {
        try KeySource.resolve(environment: environment, prefix: "WARDEN_NEW_") {
            guard let first = Terminal.readSecret(prompt: "New vault passphrase: ") else { return nil }
            guard let again = Terminal.readSecret(prompt: "New vault passphrase again: "), again.constantTimeEquals(first) else {
                CLIFailure.exit(CLIFailure(message: "the two new passphrases differ"))
            }
            return first
        }
    }
}

enum VaultKey {
    /// Unseals a vault that exists (a rotation never creates one).
    static func unsealExisting(_ db: Database, source: KeySource, logger: Logger) async throws -> Vault {
        guard try await VaultRepository(db).load() != nil else {
            throw CLIFailure(message: "this store holds no vault yet: start `warden serve` once to create it")
        }
        return try await Vault.unseal(database: db, source: source, logger: logger)
    }
}

/// Recovery shares, from files or the terminal, checked against the vault as they come.
enum ShareReader {
    static func source(files: [String]) -> KeySource {
        .recoveryShares { vaultID in files.isEmpty ? try ask(vaultID: vaultID) : try read(files, vaultID: vaultID) }
    }

    static func read(_ files: [String], vaultID: String) throws -> [RecoveryShare] {
        try files.flatMap { path -> [RecoveryShare] in
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CLIFailure(message: "cannot read the share file \(path)")
            }
            return try text.split(whereSeparator: \.isNewline).filter { !$0.allSatisfy(\.isWhitespace) }.map { line in
                do { return try RecoveryShare.parse(String(line), vaultID: vaultID) } catch {
                    throw CLIFailure(message: "\(path): \(error)")
                }
            }
        }
    }

    /// Asks until the first share's threshold is reached; a share that does not check out is named and asked again.
    static func ask(vaultID: String) throws -> [RecoveryShare] {
        var shares: [RecoveryShare] = []
        var failures = 0
        while shares.count < (shares.first?.threshold ?? 2) {
            let needed = shares.first.map { " of \($0.threshold)" } ?? ""
            guard let typed = Terminal.readSecret(prompt: "Recovery share \(shares.count + 1)\(needed): ") else {
                throw CLIFailure(message: "no terminal to ask for recovery shares on: name share files with --share-file")
            }
            let text = typed.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
            do {
                let share = try RecoveryShare.parse(text, vaultID: vaultID)
                if let first = shares.first, first.splitID != share.splitID { throw RecoveryError.mixedSplits }
                if shares.contains(where: { $0.index == share.index }) { throw RecoveryError.repeated }
                shares.append(share)
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                if failures >= 5 { throw CLIFailure(message: "too many shares did not check out") }
            }
        }
        return shares
    }
}
