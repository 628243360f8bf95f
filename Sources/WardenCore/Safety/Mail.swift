import Foundation

/// An SMTP submission server: STARTTLS is required, the login's password is the channel's sealed secret.
public struct SMTPServer: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    /// PEM roots to trust instead of the system's (a relay with an internal CA).
    public var caFile: String?

    public init(host: String, port: Int, username: String, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.caFile = caFile
    }
}

/// One plain-text email.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var to: [String]
    public var subject: String
    /// Lines separated by CRLF, each already free of control characters.
    public var body: String
    public var messageID: String

    /// A value for a header or a body line: no control character (no CR or LF can start a new header),
    /// ASCII only, at most `limit` characters.
    public static func headerSafe(_ text: String, limit: Int) -> String {
        String(
            String.UnicodeScalarView(text.unicodeScalars.prefix(limit).map { $0.isASCII && $0.value >= 32 && $0.value != 127 ? $0 : "?" }))
    }

    /// The message as the DATA command sends it: headers, a blank line, the body, dot-stuffed, CRLF lines.
    public func rendered(date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let headers = [
            "From: \(from)", "To: \(to.joined(separator: ", "))", "Subject: \(subject)", "Date: \(formatter.string(from: date))",
            "Message-ID: <\(messageID)>", "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii",
            "Content-Transfer-Encoding: 7bit",
        ]
        let lines = headers + [""] + body.components(separatedBy: "\r\n").map { $0.hasPrefix(".") ? "." + $0 : $0 }
        return lines.joined(separator: "\r\n")
    }

    /// An address as a mailbox in a command or header: `local@domain`, with nothing that could end a line or a command.
    public static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && text.utf8.count <= 254
            && text.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") && $0 != UInt8(ascii: ",") }
    }
}

/// Sends mail for the alarms' email channels; the server implements it over SwiftNIO.
public protocol MailSender: Sendable {
    func send(_ message: MailMessage, via server: SMTPServer, password: String) async throws
}
