import Foundation
import HTTPTypes
import Crypto
import WardenVenues

/// A channel alarms go to (`[notify.NAME]` in the config). Its secret (the webhook's signing key, the
/// Slack or Discord webhook URL, the Telegram bot token) is sealed in the vault (`warden notify set`),
/// never in the config file.
public struct NotifyChannel: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case webhook, slack, discord, telegram, email

        /// What the sealed secret is, for the CLI's prompt and errors.
        public var secretName: String {
            switch self {
            case .webhook: "signing secret"
            case .slack, .discord: "webhook URL"
            case .telegram: "bot token"
            case .email: "SMTP password"
            }
        }
    }

    public var name: String
    public var kind: Kind
    /// A generic webhook's endpoint.
    public var url: String?
    /// Telegram: the chat alarms are posted to, and the Bot API's base URL.
    public var chatID: String?
    public var baseURL: String?
    /// Email: the submission server (STARTTLS required), its login, the sender and the recipients.
    public var smtp: SMTPServer?
    public var from: String?
    public var to: [String] = []
    /// Events at or above this severity are sent (default `warning`), unless `events` lists them by name.
    public var minSeverity: AlarmSeverity = .warning
    public var events: Set<AlarmEvent>?

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    public func routes(_ event: AlarmEvent) -> Bool {
        if let events { return events.contains(event) }
        return event.severity >= minSeverity
    }

    /// The sealed secret's name in the store.
    public static func secretName(_ channel: String) -> String { "notify:\(channel)" }

    static let telegramDefaultBase = "https://api.telegram.org"

    /// An address alarms may go to: HTTPS, or plain HTTP to this host only (a local relay, a test receiver).
    public static func checkURL(_ text: String) -> String? {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            return "must be an absolute http(s) URL"
        }
        if scheme == "https" { return nil }
        guard scheme == "http" else { return "must be an https URL" }
        let loopback = ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host.lowercased())
        return loopback ? nil : "must be https (plain http only to this host)"
    }

    /// The request that delivers `alarm` to this channel, signed or addressed with `secret`.
    func request(for alarm: AlarmMessage, secret: String, now: Date) throws(NotifyError) -> (origin: String, request: UpstreamRequest) {
        switch kind {
        case .webhook:
            guard let url else { throw .misconfigured("no url") }
            let body = alarm.json
            let timestamp = String(Int(now.timeIntervalSince1970))
            var signed = Data("\(timestamp).".utf8)
            signed.append(body)
            let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
            let signature = "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
            return try Self.post(
                url, body: body,
                headers: [
                    HTTPField.Name("X-Warden-Timestamp")!: timestamp, HTTPField.Name("X-Warden-Signature")!: signature,
                    HTTPField.Name("X-Warden-Alarm-Id")!: alarm.id,
                ])
        case .slack:
            // Slack reads `<…>` as links and mentions (`<!channel>`) and `*`/`_` as formatting in what an agent
            // may have written (a path, a reason): escaped, and formatting off.
            return try Self.post(secret, body: Self.encode(SlackBody(text: Self.slackEscaped(alarm.text), mrkdwn: false)), headers: [:])
        case .discord:
            // Discord reads markdown, masked links and mentions: the text goes in a code block and mentions are off.
            let text = "```\n" + String(alarm.text.replacingOccurrences(of: "`", with: "'").prefix(1900)) + "\n```"
            return try Self.post(secret, body: Self.encode(DiscordBody(content: text, allowedMentions: .init(parse: []))), headers: [:])
        case .email:
            throw .misconfigured("an email channel is not sent over HTTP")
        case .telegram:
            guard let chatID else { throw .misconfigured("no chat_id") }
            guard secret.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != 47 && $0 != 63 && $0 != 35 }) else {
                throw .misconfigured("the bot token holds characters a token cannot")
            }
            let base = baseURL ?? Self.telegramDefaultBase
            return try Self.post(
                base + "/bot\(secret)/sendMessage", body: Self.encode(["chat_id": chatID, "text": String(alarm.text.prefix(4000))]),
                headers: [:])
        }
    }

    static func encode<T: Encodable>(_ object: T) -> Data {
        (try? JSONEncoder().encode(object)) ?? Data("{}".utf8)
    }

    struct SlackBody: Encodable {
        let text: String
        let mrkdwn: Bool
    }

    struct DiscordBody: Encodable {
        struct Mentions: Encodable { let parse: [String] }
        let content: String
        let allowedMentions: Mentions
        enum CodingKeys: String, CodingKey { case content, allowedMentions = "allowed_mentions" }
    }

    /// Slack's three control characters, escaped as Slack asks.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
            of: ">", with: "&gt;")
    }

    static func post(_ url: String, body: Data, headers: HTTPFields) throws(NotifyError) -> (origin: String, request: UpstreamRequest) {
        guard checkURL(url) == nil, let parts = URLComponents(string: url), let scheme = parts.scheme, let host = parts.host else {
            throw .misconfigured("the channel's URL is not an https URL")
        }
        let origin = "\(scheme)://\(host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host)" + (parts.port.map { ":\($0)" } ?? "")
        var fields = headers
        fields[.contentType] = "application/json"
        let path = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        return (origin, UpstreamRequest(method: "POST", path: path, query: parts.percentEncodedQuery ?? "", headers: fields, body: body))
    }
}

public enum NotifyError: Error, Sendable, Equatable, CustomStringConvertible {
    case misconfigured(String)
    public var description: String {
        switch self {
        case .misconfigured(let reason): "channel misconfigured: \(reason)"
        }
    }
}

/// An alarm as a channel receives it.
struct AlarmMessage: Sendable {
    let id: String
    let event: String
    let severity: String
    let summary: String
    let at: Int64
    let detail: [String: String]
    /// Where a person acts on it (an approval's page on the dashboard), absolute.
    let link: String?

    /// The generic webhook's body.
    var json: Data {
        struct Body: Encodable {
            let id, event, severity, summary, at: String
            let detail: [String: String]
            let link: String?
        }
        let iso = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(at) / 1000))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(Body(id: id, event: event, severity: severity, summary: summary, at: iso, detail: detail, link: link)))
            ?? Data("{}".utf8)
    }

    /// An email of the alarm: its summary as the subject (one line, ASCII), its fields in the body.
    func mail(from: String, to: [String]) -> MailMessage {
        var lines = [summary, ""]
        if let link { lines += ["Approve or reject: \(link)", ""] }
        lines += ["event: \(event)", "severity: \(severity)", "alarm: \(id)"]
        lines += detail.keys.sorted().map { "\($0): \(detail[$0]!)" }
        return MailMessage(
            from: from, to: to, subject: MailMessage.headerSafe("[Warden \(severity)] \(summary)", limit: 200),
            body: lines.map { MailMessage.headerSafe($0, limit: 2000) }.joined(separator: "\r\n"), messageID: "\(id)@warden")
    }

    /// The chat channels' text.
    var text: String { "[Warden \(severity)] \(summary)" + (link.map { " · approve or reject: \($0)" } ?? "") }
}
