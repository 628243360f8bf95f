import Crypto
import Foundation
import SQLKit
import WardenCrypto
import WardenStore

/// What happened, to be appended to the audit chain. No field may hold a secret or a signature.
public struct AuditEntry: Sendable {
    public var actorID: String?
    public var ownerID: String?
    public var action: String
    public var target: String?
    public var outcome: Outcome
    public var detail: [String: String]
    /// When it happened (ms since the epoch); the time of the append when nil.
    public var at: Int64?

    public init(
        actor: String?, owner: String?, action: String, target: String? = nil, outcome: Outcome = .ok,
        detail: [String: String] = [:]
    ) {
        self.actorID = actor
        self.ownerID = owner
        self.action = action
        self.target = target
        self.outcome = outcome
        self.detail = detail
    }
}

/// The tamper-evident log: each row's MAC covers its own fields and the previous row's MAC, under a
/// key derived from the KEK, so editing, deleting or reordering rows breaks the chain.
///
/// Each KEK version is a key epoch: rows carry the epoch whose key made their MAC, epochs never go
/// backwards along the chain, and a rotation keeps the older epochs' keys sealed under the new KEK, so the
/// whole chain still verifies while an old KEK can no longer add rows. A server still holding a rotated-out
/// KEK has its appends refused (`VaultError.rotated`).
public struct AuditLog: Sendable {
    let database: Database
    let vault: Vault
    /// The key epoch this process appends under: its KEK's version.
    public let epoch: Int
    /// An HMAC already keyed, copied for each MAC (keying it costs as much as a short row).
    let keyed: HMAC<SHA256>
    let repository: AuditRepository

    public init(database: Database, vault: Vault) {
        self.database = database
        self.vault = vault
        self.epoch = vault.kek.version
        self.keyed = HMAC<SHA256>(key: Self.chainKey(vault.kek))
        self.repository = AuditRepository(database)
    }

    static func chainKey(_ kek: MasterKey) -> SymmetricKey { kek.derivedKey(label: "audit-chain") }

    /// Where an older epoch's key is kept, sealed under the current KEK.
    static func epochKeyName(_ epoch: Int) -> String { "audit-key-\(epoch)" }

    /// Appends inside the caller's transaction, so an action and its record commit together.
    public func append(_ entry: AuditEntry, on db: any SQLDatabase) async throws {
        try await append([entry], on: db)
    }

    /// Appends several rows with one read and one write of the head (the gateway's group commit).
    public func append(_ entries: [AuditEntry], on db: any SQLDatabase) async throws {
        guard !entries.isEmpty else { return }
        let head = try await repository.lockHead(on: db, dialect: database.dialect)
        if let head, head.epoch > epoch { throw VaultError.rotated(to: head.epoch) }
        var previous = head?.mac ?? []
        var seq = head?.seq ?? 0
        let now = Clock.nowMillis()
        var records: [AuditRecord] = []
        records.reserveCapacity(entries.count)
        for entry in entries {
            seq += 1
            var record = AuditRecord(
                seq: seq, at: entry.at ?? now, actorID: entry.actorID, ownerID: entry.ownerID, action: entry.action, target: entry.target,
                outcome: entry.outcome.rawValue, detail: entry.detail.isEmpty ? nil : Self.encode(entry.detail), mac: [], epoch: epoch)
            record.mac = Self.mac(record, previous: previous, keyed: keyed)
            previous = record.mac
            records.append(record)
        }
        let newHead = AuditHead(seq: seq, mac: previous, headMAC: Self.headMAC(seq: seq, mac: previous, keyed: keyed), epoch: epoch)
        try await repository.append(records, head: newHead, on: db)
    }

    /// Appends in its own transaction.
    public func append(_ entry: AuditEntry) async throws {
        try await database.transaction { db in try await append(entry, on: db) }
    }

    public enum Verification: Equatable, Sendable {
        case intact(rows: Int64)
        case broken(seq: Int64, reason: String)
    }

    /// Each epoch's keyed HMAC: the current one, and older ones opened from their sealed copies.
    final class EpochKeys: @unchecked Sendable {
        private var keys: [Int: HMAC<SHA256>]
        private let current: Int
        private let vault: Vault
        private let sealed: (String) async throws -> SealedColumns?

        init(current: Int, keyed: HMAC<SHA256>, vault: Vault, sealed: @escaping (String) async throws -> SealedColumns?) {
            self.current = current
            self.keys = [current: keyed]
            self.vault = vault
            self.sealed = sealed
        }

        convenience init(_ log: AuditLog) {
            let repository = ServerSecretRepository(log.database)
            self.init(current: log.epoch, keyed: log.keyed, vault: log.vault) { try await repository.find(name: $0) }
        }

        func keyed(_ epoch: Int) async throws -> HMAC<SHA256>? {
            if let known = keys[epoch] { return known }
            guard epoch >= 1, epoch < current else { return nil }
            let name = AuditLog.epochKeyName(epoch)
            guard let columns = try await sealed(name),
                let opened = try? vault.open(SealedSecret(columns), identity: Vault.serverIdentity(name))
            else { return nil }
            let key = opened.withUnsafeBytes { HMAC<SHA256>(key: SymmetricKey(data: $0)) }
            keys[epoch] = key
            return key
        }
    }

    /// Walks the whole chain from its start, or from the checkpoint pruning left.
    public func verify() async throws -> Verification {
        let keys = EpochKeys(self)
        var walk = ChainWalk()
        if let checkpoint = try await repository.checkpoint() {
            // Signed under the current epoch's key (a rotation signs it again): an older key cannot move it.
            guard checkpoint.signedEpoch == epoch,
                ConstantTime.equals(checkpoint.checkpointMAC, Self.checkpointMAC(checkpoint, keyed: keyed))
            else { return .broken(seq: checkpoint.seq, reason: "the pruning checkpoint was altered") }
            walk = ChainWalk(after: checkpoint)
        }
        let start = walk.expected - 1
        guard try await repository.count(atOrBelow: start) == 0 else {
            return .broken(seq: start, reason: "rows numbered \(start) or lower, or not numbered, lie outside the chain (added)")
        }
        while true {
            let rows: [AuditRecord]
            do { rows = try await repository.rows(after: walk.expected - 1, limit: 1000) } catch is DecodingError {
                return .broken(seq: walk.expected, reason: "a row from \(walk.expected) on holds a field of the wrong type: it was altered")
            }
            for row in rows {
                if let failure = await walk.check(row, keys: keys) { return failure }
            }
            if rows.count < 1000 { break }
        }
        let last = walk.expected - 1
        guard let head = try await repository.head() else {
            guard last == 0 else { return .broken(seq: last, reason: "the chain head is missing") }
            // Accounts are made with their rows: a store that holds accounts and no chain lost it.
            guard try await VaultRepository(database).holdsAccounts() else { return .intact(rows: 0) }
            return .broken(seq: 1, reason: "the audit chain is empty though the store holds accounts: its rows were deleted")
        }
        // The chain ends in the current epoch, under whose key the head is: rows an older key made cannot
        // be passed off as its end.
        guard head.epoch == epoch, ConstantTime.equals(head.headMAC, Self.headMAC(seq: head.seq, mac: head.mac, keyed: keyed)) else {
            return .broken(seq: head.seq, reason: "the chain head was altered")
        }
        guard walk.epoch == epoch else {
            return .broken(
                seq: last, reason: "row \(last), the chain's last, is of key epoch \(walk.epoch), not the vault's current \(epoch)")
        }
        guard head.seq == last, ConstantTime.equals(head.mac, walk.previous) else {
            return .broken(seq: last + 1, reason: "rows after \(last) were deleted (the head records \(head.seq))")
        }
        return .intact(rows: walk.checked)
    }

    /// Rows checked one after another: numbers without gaps, epochs never going back, each MAC under its epoch's key.
    struct ChainWalk {
        var previous: [UInt8] = []
        var expected: Int64 = 1
        var epoch = 1
        var checked: Int64 = 0

        init() {}

        init(after checkpoint: AuditCheckpoint) {
            self.init(previous: checkpoint.mac, next: checkpoint.seq + 1, epoch: checkpoint.epoch)
        }

        init(previous: [UInt8], next: Int64, epoch: Int) {
            self.previous = previous
            self.expected = next
            self.epoch = epoch
        }

        mutating func check(_ row: AuditRecord, keys: EpochKeys) async -> Verification? {
            guard row.seq == expected else {
                return .broken(seq: expected, reason: "row \(expected) is missing (next is \(row.seq))")
            }
            guard row.epoch >= epoch else {
                return .broken(seq: row.seq, reason: "row \(row.seq) claims key epoch \(row.epoch), older than the row before it")
            }
            guard let key = try? await keys.keyed(row.epoch) else {
                return .broken(seq: row.seq, reason: "row \(row.seq) claims key epoch \(row.epoch), whose key this vault does not hold")
            }
            guard ConstantTime.equals(row.mac, AuditLog.mac(row, previous: previous, keyed: key)) else {
                return .broken(seq: row.seq, reason: "row \(row.seq) was altered, or a row before it was")
            }
            previous = row.mac
            epoch = row.epoch
            expected += 1
            checked += 1
            return nil
        }
    }

    // MARK: MAC inputs

    static func mac(_ r: AuditRecord, previous: [UInt8], keyed: HMAC<SHA256>) -> [UInt8] {
        // One update with every field laid out: each update call costs more than hashing a short field.
        var input = Self.rowLabel
        input.reserveCapacity(512)
        Self.append(String(r.seq), to: &input)
        Self.append(String(r.at), to: &input)
        for field in [r.actorID, r.ownerID, r.action, r.target, r.outcome, r.detail] { append(field, to: &input) }
        input += previous
        return authenticate(input, keyed: keyed)
    }

    static func headMAC(seq: Int64, mac: [UInt8], keyed: HMAC<SHA256>) -> [UInt8] {
        var input = Self.headLabel
        Self.append(String(seq), to: &input)
        input += mac
        return authenticate(input, keyed: keyed)
    }

    static func checkpointMAC(_ c: AuditCheckpoint, keyed: HMAC<SHA256>) -> [UInt8] {
        var input = Array("warden.audit.checkpoint.v1".utf8)
        for field in [c.seq, Int64(c.epoch), c.prunedRows, c.lastPrunedAt, c.prunes, Int64(c.signedEpoch)] {
            Self.append(String(field), to: &input)
        }
        input += c.mac
        return authenticate(input, keyed: keyed)
    }

    /// HMAC over the laid-out bytes; the code is copied out in one piece (as a sequence it goes byte by byte).
    static func authenticate(_ input: [UInt8], keyed: HMAC<SHA256>) -> [UInt8] {
        var hmac = keyed
        input.withUnsafeBytes { hmac.update(data: $0) }
        return hmac.finalize().withUnsafeBytes { Array($0) }
    }

    /// Length-prefixed, with nil distinct from the empty string.
    static func append(_ field: String?, to input: inout [UInt8]) {
        guard var field else { input += [0xff, 0xff, 0xff, 0xff]; return }
        field.withUTF8 { bytes in
            let count = UInt32(bytes.count)
            input += [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
            input.append(contentsOf: bytes)
        }
    }

    static let rowLabel = Array("warden.audit.v1".utf8)
    static let headLabel = Array("warden.audit.head.v1".utf8)

    /// A JSON object with sorted keys. Written here rather than with JSONEncoder, which costs more
    /// than the rest of an audit append together.
    static func encode(_ detail: [String: String]) -> String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(256)
        for (index, field) in detail.sorted(by: { $0.key < $1.key }).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            appendQuoted(field.key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendQuoted(field.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// JSON string escaping on the UTF-8 bytes: quotes, backslashes and control characters are escaped,
    /// everything else (multi-byte characters included) is copied as it is, in one piece when nothing
    /// needs escaping (the usual case).
    private static func appendQuoted(_ text: String, to out: inout [UInt8]) {
        var text = text
        out.append(UInt8(ascii: "\""))
        text.withUTF8 { bytes in
            guard bytes.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                out.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20: out.append(contentsOf: Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
}
