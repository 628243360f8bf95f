import Foundation
import WardenStore

/// How grave an alarm is; a channel takes the events at or above its `min_severity`.
public enum AlarmSeverity: String, Sendable, CaseIterable, Comparable {
    case info, warning, critical

    var rank: Int {
        switch self {
        case .info: 0
        case .warning: 1
        case .critical: 2
        }
    }

    public static func < (a: AlarmSeverity, b: AlarmSeverity) -> Bool { a.rank < b.rank }
}

/// What an alarm says happened. An audit row raises one when its detail names it (`"alarm": "<event>"`):
/// the log is the outbox's source, so an alarm is never raised for something that was not recorded.
public enum AlarmEvent: String, Sendable, CaseIterable {
    /// A decoy key or credential was presented: it leaked, or something is probing.
    case honeyTokenUsed = "honey_token_used"
    /// The kill switch stopped keys, or a person lifted it.
    case killSwitch = "kill_switch"
    case killSwitchLifted = "kill_switch_lifted"
    /// A circuit breaker froze a key family.
    case breakerTripped = "breaker_tripped"
    /// An order waits for its owner's approval.
    case approvalWaiting = "approval_waiting"
    /// A key's LLM budget or an owner's daily order cap refused a call (first time per day and key).
    case budgetReached = "budget_reached"
    case capReached = "cap_reached"
    /// A call that would move funds (withdraw, transfer) was refused.
    case fundMovementAttempted = "fund_movement_attempted"
    /// The audit store could not keep up: calls were refused until it did.
    case auditStoreRecovered = "audit_store_recovered"
    /// The vault was unsealed from recovery shares.
    case recoveryBoot = "recovery_boot"
    /// An account's logins were throttled after repeated failures.
    case failedLogins = "failed_logins"
    case goLivePassed = "go_live_passed"
    case credentialRotated = "credential_rotated"
    case credentialDeleted = "credential_deleted"
    /// Sent by `warden notify test`.
    case test

    public var severity: AlarmSeverity {
        switch self {
        case .honeyTokenUsed, .killSwitch, .breakerTripped, .fundMovementAttempted, .auditStoreRecovered, .recoveryBoot: .critical
        case .budgetReached, .capReached, .failedLogins, .killSwitchLifted, .credentialDeleted, .approvalWaiting: .warning
        case .goLivePassed, .credentialRotated, .test: .info
        }
    }

    /// Events that fire once per day and key (or owner): later rows of that day raise nothing new.
    var oncePerDay: Bool { self == .budgetReached || self == .capReached || self == .failedLogins }

    var title: String {
        switch self {
        case .honeyTokenUsed: "Honey token used"
        case .killSwitch: "Kill switch on"
        case .killSwitchLifted: "Kill switch lifted"
        case .breakerTripped: "Circuit breaker tripped"
        case .approvalWaiting: "An order waits for approval"
        case .budgetReached: "LLM budget reached"
        case .capReached: "Daily order cap reached"
        case .fundMovementAttempted: "Fund movement attempted"
        case .auditStoreRecovered: "Audit store failed and recovered"
        case .recoveryBoot: "Vault unsealed from recovery shares"
        case .failedLogins: "Repeated failed logins"
        case .goLivePassed: "Go-live checks passed"
        case .credentialRotated: "Credential rotated"
        case .credentialDeleted: "Credential deleted"
        case .test: "Test alarm"
        }
    }

    /// The detail fields an alarm may carry: what the audit row says that is never a secret (the log holds
    /// no secret, no agent key and no query string; these are its descriptive fields only).
    static let sentFields: Set<String> = [
        "venue", "method", "path", "reason", "status", "client", "honey_token", "honey_label", "scope", "address",
        "credential", "request", "frozen", "from", "to", "refused_unrecorded", "rows_dropped", "channel", "approval", "notional_usd",
        "link", "instrument", "side",
    ]

    /// The alarm an audit row raises, if its detail names one Warden knows.
    static func raised(by row: AuditRecord, ownerEmail: String?) -> AlarmRecord? {
        guard let text = row.detail, let detail = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)),
            let name = detail["alarm"], let event = AlarmEvent(rawValue: name)
        else { return nil }
        var sent = detail.filter { sentFields.contains($0.key) }
        if let target = row.target, row.action.hasPrefix("gateway.") { sent["venue"] = target }
        if let actor = row.actorID { sent["actor"] = actor }
        if let ownerEmail { sent["owner"] = ownerEmail }
        sent["action"] = row.action
        let day = SpendRepository.day(of: Date(timeIntervalSince1970: TimeInterval(row.at) / 1000))
        let once = event.oncePerDay ? "\(event.rawValue)|\(row.actorID ?? row.ownerID ?? detail["address"] ?? "-")|\(day)" : nil
        return AlarmRecord(
            id: UUID().uuidString.lowercased(), auditSeq: row.seq, event: event.rawValue, severity: event.severity.rawValue,
            ownerID: row.ownerID, summary: summary(event, sent), detail: sent, onceKey: once, createdAt: row.at)
    }

    static func summary(_ event: AlarmEvent, _ d: [String: String]) -> String {
        var parts = [event.title]
        if let owner = d["owner"] { parts.append("owner \(owner)") }
        if let venue = d["venue"] { parts.append("venue \(venue)") }
        if let method = d["method"], let path = d["path"] { parts.append("\(method) \(path)") }
        if let client = d["client"] { parts.append("from \(client)") }
        if let scope = d["scope"] { parts.append("scope \(scope)") }
        if let notional = d["notional_usd"] { parts.append("\(notional) USD") }
        if let reason = d["reason"] { parts.append(reason) }
        return String(parts.joined(separator: " · ").prefix(1000))
    }
}
