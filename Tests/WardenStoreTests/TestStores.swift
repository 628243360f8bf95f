import Foundation
import Logging
import Synchronization
import Testing
import WardenStore

/// The engines the store suite runs on: SQLite always, PostgreSQL when WARDEN_TEST_POSTGRES_URL is set
/// (scripts/test starts a throwaway server and sets it).
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static var enabled: [Backend] {
        ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"] == nil ? [.sqlite] : [.sqlite, .postgres]
    }
}

/// A fresh, empty store for one test, and where it lives (for inspection of the raw bytes).
struct TestStore {
    let database: Database
    let sqlitePath: String?
    let postgresURL: String?

    static let logger = Logger(label: "test")

    static func make(_ backend: Backend) async throws -> TestStore {
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("warden-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let path = dir.appendingPathComponent("warden.db").path
            return TestStore(database: try Database.open(.sqlite(path: path), logger: logger), sqlitePath: path, postgresURL: nil)
        case .postgres:
            let url = try #require(ProcessInfo.processInfo.environment["WARDEN_TEST_POSTGRES_URL"])
            let name = "warden_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
            // CREATE DATABASE copies template1 and fails while another session is copying it: the tests of this
            // process create theirs one at a time, and a collision with anything else is retried.
            try await Self.oneAtATime {
                let admin = try Database.open(.postgres(url: url), logger: logger)
                for attempt in 1...50 {
                    do {
                        try await admin.withConnection { db in try await db.raw("CREATE DATABASE \(unsafeRaw: name)").run() }
                        break
                    } catch  where attempt < 50 {
                        try await Task.sleep(for: .milliseconds(20 * attempt))
                    } catch {
                        try await admin.close()
                        Issue.record("CREATE DATABASE failed: \(String(reflecting: error))")
                        throw error
                    }
                }
                try await admin.close()
            }
            var parts = try #require(URLComponents(string: url))
            parts.path = "/\(name)"
            let testURL = try #require(parts.string)
            return TestStore(database: try Database.open(.postgres(url: testURL), logger: logger), sqlitePath: nil, postgresURL: testURL)
        }
    }

    /// The last operation queued by `oneAtATime`; each waits for the one before.
    private static let queue = Mutex<Task<Void, Never>?>(nil)

    /// Runs `operation` after every one queued before it has ended.
    static func oneAtATime(_ operation: @escaping @Sendable () async throws -> Void) async throws {
        let mine = queue.withLock { last -> Task<Void, any Error> in
            let previous = last
            let mine = Task {
                await previous?.value
                try await operation()
            }
            last = Task { _ = try? await mine.value }
            return mine
        }
        try await mine.value
    }

    /// Every byte the store holds on disk (SQLite: the file and its WAL) or in a dump (PostgreSQL: pg_dump).
    func rawContents() throws -> Data {
        if let sqlitePath {
            var data = Data()
            for suffix in ["", "-wal", "-journal"] where FileManager.default.fileExists(atPath: sqlitePath + suffix) {
                data.append(try Data(contentsOf: URL(fileURLWithPath: sqlitePath + suffix)))
            }
            return data
        }
        let url = try #require(postgresURL)
        let bindir = ProcessInfo.processInfo.environment["WARDEN_TEST_PG_BINDIR"] ?? "/usr/bin"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: bindir + "/pg_dump")
        process.arguments = ["--data-only", "--inserts", url.replacingOccurrences(of: "?sslmode=disable", with: "")]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "pg_dump failed")
        return data
    }
}

@Suite struct BackendAvailability {
    @Test func postgresIsTestedWhenRequired() {
        let env = ProcessInfo.processInfo.environment
        if env["WARDEN_REQUIRE_POSTGRES"] == "1" {
            #expect(env["WARDEN_TEST_POSTGRES_URL"] != nil, "WARDEN_REQUIRE_POSTGRES=1 but no PostgreSQL URL was given")
        }
        #expect(Backend.enabled.contains(.sqlite))
    }
}
