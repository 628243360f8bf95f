import Foundation
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import WardenCore

/// Sends the alarms' email over SMTP submission: EHLO, STARTTLS (required: a server that does not offer it
/// gets nothing, not even the login), the certificate checked against the host (or the channel's own CA
/// file), EHLO again, AUTH PLAIN, one message, QUIT. Each step has a deadline.
struct SMTPMailer: MailSender {
    struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    static let deadline = Duration.seconds(20)

    func send(_ message: MailMessage, via server: SMTPServer, password: String) async throws {
        guard message.to.allSatisfy(MailMessage.isAddress), MailMessage.isAddress(message.from) else {
            throw Refused(description: "an address is not a plain mailbox")
        }
        let tls = try Self.tlsContext(caFile: server.caFile)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: server.host, port: server.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineBasedFrameDecoder()))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var session = Session(lines: inbound.makeAsyncIterator(), outbound: outbound)
                    try await session.expect(220)
                    try await session.command("EHLO warden", expect: 250)
                    guard session.lastReply.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                        throw Refused(description: "the server does not offer STARTTLS; nothing was sent")
                    }
                    try await session.command("STARTTLS", expect: 220)
                    let hostname = Self.isIPAddress(server.host) ? nil : server.host
                    try await channel.channel.pipeline.addHandler(
                        try NIOSSLClientHandler(context: tls, serverHostname: hostname), position: .first)
                    try await session.command("EHLO warden", expect: 250)
                    let plain = Data(([0] + Array(server.username.utf8) + [0] + Array(password.utf8))).base64EncodedString()
                    try await session.command("AUTH PLAIN \(plain)", expect: 235, shown: "AUTH PLAIN ***")
                    try await session.command("MAIL FROM:<\(message.from)>", expect: 250)
                    for recipient in message.to { try await session.command("RCPT TO:<\(recipient)>", expect: 250) }
                    try await session.command("DATA", expect: 354)
                    try await session.command(message.rendered() + "\r\n.", expect: 250, shown: "the message")
                    try? await session.command("QUIT", expect: 221)
                }
            }
            group.addTask {
                try await Task.sleep(for: Self.deadline)
                throw Refused(description: "the mail server did not finish within \(Self.deadline)")
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// One SMTP conversation: commands out, replies (possibly of several lines) in.
    struct Session {
        var lines: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
        var lastReply: [String] = []

        mutating func command(_ line: String, expect code: Int, shown: String? = nil) async throws {
            try await outbound.write(ByteBuffer(string: line + "\r\n"))
            try await expect(code, after: shown ?? line)
        }

        mutating func expect(_ code: Int, after command: String = "connecting") async throws {
            var texts: [String] = []
            while true {
                guard let buffer = try await lines.next() else {
                    throw Refused(description: "the server closed the connection after \(command)")
                }
                let line = String(buffer: buffer).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                guard line.utf8.count >= 3, let got = Int(line.prefix(3)) else {
                    throw Refused(description: "a malformed reply after \(command)")
                }
                texts.append(String(line.dropFirst(4)))
                if line.utf8.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " {
                    lastReply = texts
                    guard got == code else {
                        throw Refused(
                            description:
                                "the server answered \(got) to \(command): \(MailMessage.headerSafe(texts.joined(separator: " "), limit: 120))"
                        )
                    }
                    return
                }
            }
        }
    }

    static func tlsContext(caFile: String?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .file(caFile) }
        return try NIOSSLContext(configuration: configuration)
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: 0)) != nil
    }
}
