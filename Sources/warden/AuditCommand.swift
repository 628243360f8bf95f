import ArgumentParser
import Foundation
import WardenCore

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Inspect the audit log.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the audit chain: exit 0 if intact, 1 naming the first bad row.")
        @OptionGroup var store: StoreOptions

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                switch try await opened.services.audit.verify() {
                case .intact(let rows):
                    print("audit chain intact: \(rows) rows")
                case .broken(let seq, let reason):
                    throw CLIFailure(message: "audit chain broken at row \(seq): \(reason)")
                }
            }
        }
    }
}
