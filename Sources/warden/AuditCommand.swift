import ArgumentParser
import Foundation
import WardenCore
import WardenCrypto
import WardenStore

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Verify, export and prune the audit log.", subcommands: [Verify.self, Export.self, Prune.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Walk the audit chain (or an export, offline): exit 0 if intact, 1 naming the first bad row.")
        @OptionGroup var store: StoreOptions
        @Option(help: "Verify this export (from `warden audit export`) with the vault's key, without the store.")
        var file: String?

        func run() async {
            if let file { return await verifyExport(file) }
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                switch try await opened.services.audit.verify() {
                case .intact(let rows):
                    print("audit chain intact: \(rows) rows")
                    if let checkpoint = try await AuditRepository(opened.services.database).checkpoint() {
                        print(
                            Self.pruned(
                                rows: checkpoint.prunedRows, through: checkpoint.seq, at: checkpoint.lastPrunedAt, prunes: checkpoint.prunes
                            ))
                    }
                case .broken(let seq, let reason):
                    throw CLIFailure(message: "audit chain broken at row \(seq): \(reason)")
                }
            }
        }

        func verifyExport(_ path: String) async {
            ProcessHardening.apply()
            do {
                guard let data = FileManager.default.contents(atPath: path) else { throw CLIFailure(message: "cannot read \(path)") }
                let source = try KeySource.resolve(
                    environment: ProcessInfo.processInfo.environment, prompt: { Terminal.readSecret(prompt: "Vault passphrase: ") })
                let report = try await AuditArchive.verify(export: data, source: source)
                if let first = report.firstSeq {
                    let epochs = report.epochs.map(String.init).joined(separator: ", ")
                    print("export intact: \(report.rows) rows (rows \(first)–\(report.lastSeq ?? first)), key epochs \(epochs)")
                } else {
                    print("export intact: no rows in its range")
                }
                let from = report.since.map { Dates.text(millis: $0) } ?? "the start"
                let to = report.until.map { Dates.text(millis: $0) } ?? "the export"
                print("it holds the rows made from \(from) until \(to), exported \(Dates.text(millis: report.exportedAt))")
                if let pruned = report.pruned {
                    print(Self.pruned(rows: pruned.prunedRows, through: pruned.seq, at: pruned.lastPrunedAt, prunes: pruned.prunes))
                }
            } catch {
                CLIFailure.exit(error)
            }
        }

        static func pruned(rows: Int64, through seq: Int64, at: Int64, prunes: Int64) -> String {
            "pruned: \(rows) rows (1–\(seq)) in \(prunes) prune(s), the last on \(Dates.text(millis: at)); the chain verifies from the signed checkpoint"
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write audit rows as JSON lines with their MACs and chain links, for `audit verify --file`.")
        @OptionGroup var store: StoreOptions
        @Option(help: "First day or time to include (2026-12-01 or 2026-12-01T09:00:00Z, UTC).") var since: String?
        @Option(help: "Day or time to stop before (exclusive).") var until: String?
        @Option(help: "File to write (created 0600); standard output when omitted.") var out: String?

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                let (from, to) = (try since.map(Dates.parse), try until.map(Dates.parse))
                let handle: FileHandle
                if let out {
                    guard FileManager.default.createFile(atPath: out, contents: nil, attributes: [.posixPermissions: 0o600]),
                        let file = FileHandle(forWritingAtPath: out)
                    else { throw CLIFailure(message: "cannot create \(out)") }
                    handle = file
                } else {
                    handle = .standardOutput
                }
                try await AuditArchive.export(opened.services.audit, since: from, until: to) { line in handle.write(Data(line.utf8)) }
                if out != nil { try handle.close() }
            }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove audit rows older than N days behind a signed checkpoint (the rest still verifies).")
        @OptionGroup var store: StoreOptions
        @Option(help: "Keep this many days of rows, 1–36500 (default: [audit] retain_days in the configuration).") var olderThanDays: Int?

        func run() async {
            await OpenedStore.with(store, logger: LogSetup.cli()) { opened in
                guard let days = olderThanDays ?? opened.settings.config.audit.retainDays, (1...36_500).contains(days) else {
                    throw CLIFailure(message: "say how many days to keep: --older-than-days N (1 to 36500), or [audit] retain_days")
                }
                let cutoff = Clock.nowMillis() - Int64(days) * 86_400_000
                if let pruned = try await AuditArchive.prune(opened.services.audit, before: cutoff) {
                    print("pruned \(pruned.rows) rows (through row \(pruned.throughSeq)) made before \(Dates.text(millis: cutoff))")
                } else {
                    print("no row is older than \(days) days: nothing pruned")
                }
            }
        }
    }
}

/// Dates on the command line: a UTC day or an ISO 8601 time.
enum Dates {
    static func parse(_ text: String) throws -> Int64 {
        let full = ISO8601DateFormatter()
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        guard let date = full.date(from: text) ?? day.date(from: text) else {
            throw CLIFailure(message: "\(text) is not a date: write 2026-12-01 or 2026-12-01T09:00:00Z")
        }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    static func text(millis: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(millis) / 1000))
    }
}
