import Foundation
import Logging
import Synchronization
import SQLKit
import WardenCrypto
import WardenStore
import WardenVenues

/// The alarms' outbox. An audit row whose detail names an alarm raises it (`raisePending`, run by the
/// server every second after the rows it has already looked at): the log is read without a write lock, then
/// one `alarms` row and one pending delivery per channel the event is routed to are written in one short
/// transaction with the cursor's move (only if no other server moved it first), so a restart neither loses
/// nor repeats one. `deliverDue` sends what is due: each delivery is leased by one server, retried with
/// backoff on failure, and given up after `maxAttempts`; a dead channel delays no other. A gateway call never
/// waits on any of it: its row is all it writes, and it writes that row anyway.
public final class Alarms: Sendable {
    let database: Database
    let vault: Vault
    let audit: AuditLog
    public let channels: [String: NotifyChannel]
    let repository: AlarmRepository
    /// Channels with a delivery under way on this server: `dispatchDue` leaves them to it.
    let busy = Mutex<Set<String>>([])
    /// Whether the deliveries to channels this configuration no longer has were given up.
    let abandoned = Mutex(false)

    public init(database: Database, vault: Vault, audit: AuditLog, channels: [String: NotifyChannel]) {
        self.database = database
        self.vault = vault
        self.audit = audit
        self.channels = channels
        repository = AlarmRepository(database)
    }

    static let batchRows = 5_000
    static let maxAttempts = 12
    static let lease: Int64 = 60_000

    /// The wait before attempt `attempts + 1`: 5 s, tripling, at most an hour (12 attempts span about 8 hours).
    static func retryDelay(afterAttempts attempts: Int) -> Int64 {
        let seconds = min(3_600.0, 5 * pow(3.0, Double(max(0, attempts - 1))))
        return Int64(seconds * 1000)
    }

    /// Raises the alarms of one batch of audit rows after the cursor; returns how many were raised and
    /// whether rows remain past the batch.
    public func raisePending() async throws -> (raised: Int, more: Bool) {
        let (rows, through, from) = try await repository.rowsToRaise(limit: Self.batchRows)
        guard through != from else { return (0, false) }
        return try await database.transaction { [self] db in
            // Only the server that moves the cursor raises these rows' alarms.
            guard try await repository.moveCursor(from: from, to: through, on: db) else { return (0, true) }
            var raised = 0
            for row in rows {
                var email: String?
                if let id = row.ownerID {
                    email = try await db.raw("SELECT email FROM users WHERE id = \(bind: id)").first(
                        decodingColumn: "email", as: String.self)
                }
                guard let alarm = AlarmEvent.raised(by: row, ownerEmail: email), let event = AlarmEvent(rawValue: alarm.event) else {
                    continue
                }
                let routed = channels.values.filter { channel in
                    if event == .test, let only = alarm.detail["channel"] { return channel.name == only }
                    return event == .test || channel.routes(event)
                }.map(\.name).sorted()
                if try await repository.insert(alarm, channels: routed, on: db) { raised += 1 }
            }
            return (raised, through - from >= Int64(Self.batchRows))
        }
    }

    /// Sends every delivery due now (a few at a time); returns how many were delivered.
    public func deliverDue(
        caller: any UpstreamCaller, mailer: (any MailSender)? = nil, logger: Logger, linkBase: String = "", now: Int64 = Clock.nowMillis()
    ) async -> Int {
        // Each channel's deliveries in order, the channels side by side: a slow or dead one holds up no other.
        let byChannel = await dueByChannel(now: now)
        return await withTaskGroup(of: Int.self) { group in
            for queue in byChannel.values {
                group.addTask { await self.deliver(queue, caller: caller, mailer: mailer, logger: logger, linkBase: linkBase, now: now) }
            }
            return await group.reduce(0, +)
        }
    }

    /// Starts delivering what is due on each channel that has nothing under way here, and returns at once:
    /// a channel that hangs (a receiver that never answers) holds up only itself.
    public func dispatchDue(
        caller: any UpstreamCaller, mailer: (any MailSender)? = nil, logger: Logger, linkBase: String = "", now: Int64 = Clock.nowMillis()
    ) async {
        for (channel, queue) in await dueByChannel(now: now, skipping: busy.withLock { $0 }) {
            guard busy.withLock({ $0.insert(channel).inserted }) else { continue }
            Task { [self] in
                _ = await deliver(queue, caller: caller, mailer: mailer, logger: logger, linkBase: linkBase, now: now)
                busy.withLock { _ = $0.remove(channel) }
            }
        }
    }

    /// What is due, channel by channel (at most `perChannel` each). The first time, deliveries to channels no
    /// longer configured are given up.
    func dueByChannel(now: Int64, skipping busy: Set<String> = [], perChannel: Int = 20) async -> [String: [(AlarmDelivery, AlarmRecord)]] {
        if abandoned.withLock({ done in
            defer { done = true }; return !done
        }) {
            try? await repository.abandon(keeping: Array(channels.keys))
        }
        var due: [String: [(AlarmDelivery, AlarmRecord)]] = [:]
        for name in channels.keys.sorted() where !busy.contains(name) {
            if let queue = try? await repository.due(channel: name, now: now, limit: perChannel), !queue.isEmpty { due[name] = queue }
        }
        return due
    }

    func deliver(
        _ queue: [(AlarmDelivery, AlarmRecord)], caller: any UpstreamCaller, mailer: (any MailSender)?, logger: Logger, linkBase: String,
        now: Int64
    ) async -> Int {
        var delivered = 0
        for (delivery, alarm) in queue {
            guard
                (try? await repository.lease(alarmID: delivery.alarmID, channel: delivery.channel, now: now, until: now + Self.lease))
                    == true
            else { continue }
            let attempts = delivery.attempts + 1
            let result = await send(alarm, to: delivery.channel, caller: caller, mailer: mailer, linkBase: linkBase)
            let retryAt: Int64? =
                result.retry && attempts < Self.maxAttempts ? Clock.nowMillis() + Self.retryDelay(afterAttempts: attempts) : nil
            if let error = result.error {
                logger.warning(
                    "alarm not delivered",
                    metadata: ["channel": "\(delivery.channel)", "event": "\(alarm.event)", "error": "\(error)", "attempt": "\(attempts)"])
            } else {
                delivered += 1
            }
            try? await repository.finish(
                alarmID: delivery.alarmID, channel: delivery.channel, delivered: result.error == nil, error: result.error,
                retryAt: result.error == nil ? nil : retryAt, now: Clock.nowMillis())
        }
        return delivered
    }

    /// One attempt; `retry` false for what another attempt cannot fix (a channel no longer configured).
    func send(
        _ alarm: AlarmRecord, to name: String, caller: any UpstreamCaller, mailer: (any MailSender)?, linkBase: String
    ) async -> (error: String?, retry: Bool) {
        guard let channel = channels[name] else { return ("the channel is no longer configured", false) }
        guard let secret = try? await secret(of: name) else {
            return ("no \(channel.kind.secretName) set: warden notify set \(name)", true)
        }
        let message = AlarmMessage(
            id: alarm.id, event: alarm.event, severity: alarm.severity, summary: alarm.summary, at: alarm.createdAt, detail: alarm.detail,
            link: alarm.detail["link"].map { linkBase + $0 })
        if channel.kind == .email {
            guard let mailer, let smtp = channel.smtp, let from = channel.from else { return ("email cannot be sent from here", true) }
            do { try await mailer.send(message.mail(from: from, to: channel.to), via: smtp, password: secret) } catch {
                return ("the mail server refused or could not be reached: \(MailMessage.headerSafe("\(error)", limit: 200))", true)
            }
            return (nil, false)
        }
        do {
            let (origin, request) = try channel.request(for: message, secret: secret, now: Date())
            let answer = try await caller.send(request, origin: origin)
            // The answer's body is not kept: a receiver may echo what it was sent.
            guard (200..<300).contains(answer.status) else { return ("the channel answered HTTP \(answer.status)", true) }
            return (nil, false)
        } catch let error as NotifyError {
            return (error.description, true)
        } catch {
            return ("the channel could not be reached", true)
        }
    }

    /// The channel's opened secret, or nil when none is set.
    func secret(of channel: String) async throws -> String? {
        try await ServerSecrets(database: database, vault: vault, audit: audit).open(NotifyChannel.secretName(channel))
    }

    /// Seals `secret` as the channel's (replacing any); checks it as the channel's kind needs it.
    public func setSecret(channel name: String, secret: String, actor: String?) async throws {
        guard let channel = channels[name] else {
            throw WardenError.invalid("channel", "no [notify.\(name)] in the configuration")
        }
        let secret = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty, secret.utf8.count <= 2048 else { throw WardenError.invalid("secret", "must be 1 to 2048 bytes") }
        switch channel.kind {
        case .slack, .discord:
            if let problem = NotifyChannel.checkURL(secret) { throw WardenError.invalid("secret", "the webhook URL \(problem)") }
        case .webhook:
            guard secret.utf8.count >= 16 else { throw WardenError.invalid("secret", "a signing secret must be at least 16 bytes") }
        case .telegram:
            guard secret.contains(":"), !secret.contains("/") else {
                throw WardenError.invalid("secret", "a bot token looks like 123456:ABC…")
            }
        case .email:
            break
        }
        try await ServerSecrets(database: database, vault: vault, audit: audit).seal(
            secret, as: NotifyChannel.secretName(name),
            recording: AuditEntry(actor: actor, owner: nil, action: "notify.secret_set", target: channel.name))
    }

    /// Raises a test alarm (through the log, like any other) for one channel or all.
    public func test(channel: String?, actor: String?) async throws {
        if let channel, channels[channel] == nil { throw WardenError.invalid("channel", "no [notify.\(channel)] in the configuration") }
        var detail = ["alarm": AlarmEvent.test.rawValue]
        if let channel { detail["channel"] = channel }
        try await audit.append(AuditEntry(actor: actor, owner: nil, action: "notify.test", target: channel, detail: detail))
    }

    /// The newest alarms and their deliveries (administrators).
    public func recent(_ p: Principal, limit: Int = 100) async throws -> [(AlarmRecord, [AlarmDelivery])] {
        guard p.user.isAdmin else { throw WardenError(.forbidden, code: "not_admin", "only administrators see alarms") }
        return try await repository.recent(limit: max(1, min(limit, 500)))
    }
}
