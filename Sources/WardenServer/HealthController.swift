import Hummingbird
import Synchronization
import WardenCore
import WardenStore

/// `GET /healthz`, for a person or a load balancer: 200 only when the vault is unsealed, the store takes
/// a write, and the audit rows keep up (the gateway is admitting calls); else 503. It answers within
/// `StoreProbe.deadline` whatever the store does.
struct HealthController {
    let probe: StoreProbe
    let audit: AuditWriter?
    let vault: Vault?

    struct Status: ResponseEncodable {
        let status: String
        let vault: String
        /// `ok`, `not_writable` (it answered with an error) or `no_answer` (not within the deadline).
        let store: String
        let audit: Audit?
    }

    struct Audit: Codable {
        /// Whether the gateway admits calls: every row is committed within `AuditWriter.maxLag`.
        let keepingUp: Bool
        let queued: Int
        let lagMs: Int

        enum CodingKeys: String, CodingKey {
            case keepingUp = "keeping_up", queued, lagMs = "lag_ms"
        }
    }

    func addRoutes(to router: Router<WardenContext>) {
        router.get("/healthz") { _, _ -> EditedResponse<Status> in
            let store = await probe.check()
            let writer = audit?.status
            let healthy = store == .ok && vault != nil && writer?.healthy != false
            return EditedResponse(
                status: healthy ? .ok : .serviceUnavailable,
                response: Status(
                    status: healthy ? "ok" : "unavailable",
                    vault: vault == nil ? "sealed" : store == .keyRotated ? "rotated" : "unsealed",
                    store: store == .keyRotated ? StoreProbe.Result.ok.rawValue : store.rawValue,
                    audit: writer.map { Audit(keepingUp: $0.healthy, queued: $0.queued, lagMs: $0.lagMillis) }))
        }
    }
}

/// One write probe of the store at a time, shared by every health check that comes while it runs, so a
/// flood of checks during a stall costs one waiting probe, not one each. It holds the store itself, on
/// purpose: a health check asks the store directly, not through anything that could hide its state.
final class StoreProbe: Sendable {
    enum Result: String, Sendable {
        case ok
        case notWritable = "not_writable"
        case noAnswer = "no_answer"
        /// The store answers, but the vault's key was rotated since this server unsealed it.
        case keyRotated = "key_rotated"
    }

    static let deadline = Duration.seconds(2)
    private let database: Database
    /// The KEK version this server holds.
    private let kekVersion: Int?
    private let running = Mutex<Task<Result, Never>?>(nil)

    init(database: Database, kekVersion: Int? = nil) {
        self.database = database
        self.kekVersion = kekVersion
    }

    func check() async -> Result {
        let probe = running.withLock { current in
            if let current { return current }
            let task = Task { [database, kekVersion] () -> Result in
                do { try await database.probeWrite() } catch { return .notWritable }
                if let kekVersion, let record = try? await VaultRepository(database).load(), record.kekVersion != kekVersion {
                    return .keyRotated
                }
                return .ok
            }
            current = task
            return task
        }
        // The probe ends within the store's own deadline; the check answers within its shorter one.
        return await withCheckedContinuation { waiter in
            let answer = FirstAnswer(waiter)
            let timer = Task {
                try? await Task.sleep(for: Self.deadline)
                answer.give(.noAnswer)
            }
            Task {
                let result = await probe.value
                self.running.withLock { if $0 == probe { $0 = nil } }
                timer.cancel()
                answer.give(result)
            }
        }
    }

    /// Resumes its waiter with the first result given.
    private final class FirstAnswer: Sendable {
        private let waiter: Mutex<CheckedContinuation<Result, Never>?>
        init(_ waiter: CheckedContinuation<Result, Never>) { self.waiter = Mutex(waiter) }
        func give(_ result: Result) { waiter.withLock { $0.take() }?.resume(returning: result) }
    }
}
