import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOConcurrencyHelpers
import WSClient

/// The stream scenario's two ends (bench/run): `warden-bench ws-echo PORT`, a WebSocket server echoing every
/// message, and `warden-bench ws-load URL CONNECTIONS SECONDS [NAME=VALUE…]`, which keeps CONNECTIONS
/// sockets each sending a 128-byte text message and waiting for its echo, and prints one JSON line:
/// round trips per second and their latency percentiles.
enum StreamLoad {
    static func echo(port: Int) async throws {
        let app = Application(
            router: Router(),
            server: .http1WebSocketUpgrade(configuration: .init(maxFrameSize: 1 << 20)) { _, _, _ in
                .upgrade([:]) { inbound, outbound, _ in
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        switch message {
                        case .text(let text): try await outbound.write(.text(text))
                        case .binary(let bytes): try await outbound.write(.binary(bytes))
                        }
                    }
                }
            },
            configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: Logger(label: "ws-echo"))
        try await app.runService()
    }

    static func load(url: String, connections: Int, seconds: Int, headers: [String]) async throws {
        var fields = HTTPFields()
        for header in headers {
            let parts = header.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let name = HTTPField.Name(String(parts[0])) { fields[name] = String(parts[1]) }
        }
        let payload = #"{"type":"bench","data":""# + String(repeating: "x", count: 100) + #""}"#
        let end = ContinuousClock.now + .seconds(seconds)
        let samples = NIOLockedValueBox<[Double]>([])
        let logger = { () -> Logger in
            var logger = Logger(label: "ws-load")
            logger.logLevel = .error
            return logger
        }()
        let headers = fields
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await WebSocketClient.connect(
                        url: url, configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers), logger: logger
                    ) { inbound, outbound, _ in
                        var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
                        var mine: [Double] = []
                        while ContinuousClock.now < end {
                            let sent = ContinuousClock.now
                            try await outbound.write(.text(payload))
                            guard try await messages.next() != nil else { break }
                            let took = ContinuousClock.now - sent
                            mine.append(Double(took.components.attoseconds) / 1e15 + Double(took.components.seconds) * 1000)
                        }
                        samples.withLockedValue { $0 += mine }
                    }
                }
            }
            try await group.waitForAll()
        }
        let sorted = samples.withLockedValue { $0 }.sorted()
        let at = { (q: Double) in sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        let line: [String: Any] = [
            "round_trips": sorted.count, "round_trips_per_second": Double(sorted.count) / Double(seconds),
            "p50_ms": at(0.5), "p99_ms": at(0.99),
        ]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
