import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging

/// The stream scenario's echo server (bench/run): `warden-bench ws-echo PORT`, a WebSocket server echoing every
/// message (its client is bench/ws_load.py).
enum StreamEcho {
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
}
