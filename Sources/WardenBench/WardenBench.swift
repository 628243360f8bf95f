import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import Logging
import WardenCore
import WardenCrypto
import WardenStore
import WardenServer
import WardenVenues

/// Micro-benchmarks of the costs the gateway pays per call, printed as JSON lines
/// (`{"name":…,"ops_per_second":…,"seconds_per_op":…}`). Run in release mode by bench/run.
@main
struct WardenBench {
    static func measure(_ name: String, iterations: Int, _ body: () throws -> Void) rethrows {
        for _ in 0..<min(iterations / 10, 1000) { try body() }  // warm up
        let start = ContinuousClock.now
        for _ in 0..<iterations { try body() }
        report(name, iterations: iterations, elapsed: ContinuousClock.now - start)
    }

    static func report(_ name: String, iterations: Int, elapsed: Duration) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let line: [String: Any] = [
            "name": name, "iterations": iterations, "ops_per_second": Double(iterations) / seconds,
            "seconds_per_op": seconds / Double(iterations),
        ]
        print(String(decoding: try! JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }

    static func main() async throws {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "ws-echo", let port = Int(arguments[2]) {
            return try await StreamEcho.echo(port: port)
        }
        if arguments.count == 4, arguments[1] == "floor-proxy", let port = Int(arguments[2]) {
            _ = runTasksOnEventLoops()  // as `warden serve` runs
            return try await FloorProxy.run(port: port, upstream: arguments[3])
        }
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let kek = MasterKey.generate()
        let identity = SecretIdentity(kind: "credential", id: "c1", owner: "u1", venue: "binance")
        let sealed = try Envelope.seal(SecretBytes(copying: Array(repeating: 0x61, count: 64)), identity: identity, kek: kek)
        try measure("envelope_open_64B", iterations: 200_000) { _ = try Envelope.open(sealed, identity: identity, kek: kek) }

        // Binance order signing as the gateway does it: parse the form body, drop the agent's signature, HMAC-SHA256.
        let binance = BinanceVenue()
        let orderBody = Data(
            "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=50000&recvWindow=5000&timestamp=1700000000000&signature=00"
                .utf8)
        let binanceSecret = ["api_key": "bench-key", "api_secret": "bench-secret-0123456789abcdef0123456789abcdef"]
        try measure("binance_order_hmac_signing", iterations: 200_000) {
            var request = UpstreamRequest(method: "POST", path: "/api/v3/order", query: "", headers: [:], body: orderBody)
            try binance.sign(&request, secret: binanceSecret, signed: true, now: Date())
        }

        // Kalshi signing as the gateway does it: read the stored PEM, RSA-PSS SHA-256 over timestamp+method+path.
        let kalshi = KalshiVenue()
        let kalshiSecret = ["key_id": "bench", "private_key_pem": try _RSA.Signing.PrivateKey(keySize: .bits2048).pemRepresentation]
        try measure("kalshi_rsa_pss_2048_signing", iterations: 2_000) {
            var request = UpstreamRequest(method: "POST", path: "/trade-api/v2/portfolio/orders", query: "", headers: [:], body: Data())
            try kalshi.sign(&request, secret: kalshiSecret, signed: true, now: Date())
        }

        // Argon2id at the default vault parameters (m=256 MiB, t=3, p=1).
        let passphrase = SecretBytes(copying: Array("correct horse battery staple".utf8))
        try measure("argon2id_default_derivation", iterations: 3) {
            _ = try Argon2id.deriveKey(passphrase: passphrase, salt: Argon2id.randomSalt(), parameters: .default)
        }

        // Store-backed costs on a fresh SQLite file (WAL, synchronous=FULL).
        let path = NSTemporaryDirectory() + "warden-bench-\(UUID().uuidString).db"
        let database = try Database.open(.sqlite(path: path), logger: logger)
        try await Migrator.migrate(database, logger: logger)
        let vault = try await Vault.unseal(database: database, source: .masterKey(kek), logger: logger)
        let services = try await WardenServices.make(
            database: database, vault: vault, config: WardenConfig(), environment: [:],
            passwordParameters: Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1))
        let (user, _) = try await services.accounts.createUser(
            email: "bench@example.com", password: "bench-password-1", mustReset: false, admin: false)
        let principal = Principal(user: user, sessionID: "bench")
        let credential = try await services.credentials.create(principal, venue: "openai", label: "b", secret: ["api_key": "sk-bench"])
        let (_, key) = try await services.agentKeys.create(
            principal, name: "b", credentialIDs: [credential.id], access: "trade", expiresInDays: nil)

        let lookups = 20_000
        let looked = try await Task.detached {
            let start = ContinuousClock.now
            for _ in 0..<lookups { _ = try await services.agentKeys.lookup(key) }
            return ContinuousClock.now - start
        }.value
        report("agent_key_lookup_sqlite", iterations: lookups, elapsed: looked)
        var start = ContinuousClock.now

        // What the gateway does per call: the key from the cache (its credential already opened) and the policy checks.
        let gateway = Gateway(services: services, config: WardenConfig(), caller: NoUpstream())
        await gateway.keys.sync()  // the server's poll does this at start
        let headers: HTTPFields = [.authorization: "Bearer \(key)"]
        let admissions = 200_000
        // Off the main actor, as the server's handlers are (a hop to it and back per call would dominate).
        let admitted = try await Task.detached {
            let start = ContinuousClock.now
            for _ in 0..<admissions {
                _ = try await gateway.admit(
                    venue: OpenAIVenue(), method: "POST", rawPath: "/v1/chat/completions", query: nil, headers: headers, requestID: "bench")
            }
            return ContinuousClock.now - start
        }.value
        report("gateway_admission_cached_key", iterations: admissions, elapsed: admitted)

        // A credential dropped after its idle time (`credential_idle_seconds`): the next call reads its key from the
        // store and opens the credential again. Every admission here misses.
        let misses = 5_000
        let missed = try await Task.detached {
            let start = ContinuousClock.now
            for _ in 0..<misses {
                gateway.keys.dropIdle(now: .max)
                _ = try await gateway.admit(
                    venue: OpenAIVenue(), method: "POST", rawPath: "/v1/chat/completions", query: nil, headers: headers, requestID: "bench")
            }
            return ContinuousClock.now - start
        }.value
        report("gateway_admission_credential_miss", iterations: misses, elapsed: missed)

        let writer = AuditWriter(log: services.audit, database: database)
        // The gateway's path: rows queued as calls end, group-committed behind them.
        let queued = 100_000
        start = ContinuousClock.now
        for i in 0..<queued {
            writer.record(gatewayResult(owner: user.id, n: i))
            if i % 1000 == 999 { await Task.yield() }
        }
        await writer.flush()
        report("audit_record_group_commit_sqlite_queued", iterations: queued, elapsed: ContinuousClock.now - start)

        // Calls that act on a venue account wait for their row.
        let rows = 20_000
        start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    for i in stride(from: worker, to: rows, by: 64) {
                        try await writer.append(gatewayResult(owner: user.id, n: i))
                    }
                }
            }
            try await group.waitForAll()
        }
        report("audit_append_durable_sqlite_64_writers", iterations: rows, elapsed: ContinuousClock.now - start)
        guard case .intact(let total) = try await services.audit.verify(), total >= Int64(queued + rows) else {
            fatalError("audit chain broken by the benchmark")
        }
        try await database.close()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }
}

/// A row shaped like the gateway's result row for an LLM call (ids as long as real ones, every detail field).
func gatewayResult(owner: String, n: Int) -> AuditEntry {
    AuditEntry(
        actor: "key:2f6c1f0e-6a7b-4d1e-9d7a-3a1b2c3d4e5f", owner: owner, action: GatewayStep.result.rawValue, target: "openai",
        outcome: .forwarded,
        detail: [
            "method": "POST", "path": "/v1/chat/completions", "credential": "9a8b7c6d-6a7b-4d1e-9d7a-3a1b2c3d4e5f",
            "status": "200", "ms": "0.4", "cost_usd": "0.000007", "input_tokens": "5", "output_tokens": String(n),
        ])
}

/// Warden's own venue calls are not part of these benchmarks.
struct NoUpstream: UpstreamCaller {
    struct Unreachable: Error {}
    func send(_ request: UpstreamRequest, origin: String) async throws -> (status: Int, body: Data) { throw Unreachable() }
}
