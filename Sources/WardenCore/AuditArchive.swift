import Crypto
import Foundation
import SQLKit
import WardenCrypto
import WardenStore

/// The audit log handed to an auditor, and kept to a size: exports as JSON lines that verify offline with
/// the vault's key, and pruning of old rows behind a signed checkpoint.
///
/// An export is a header line (the vault's id, what its key is derived with, its sentinel, the older
/// epochs' audit keys sealed under the KEK, and the MAC of the row before the first exported one), one
/// line per row with its MAC and epoch, and an end line whose MAC under the current epoch's key covers the
/// count, the range and both ends of the chain, so a file cut short or stitched together does not verify.
public enum AuditArchive {
    public struct Header: Codable, Sendable {
        public var type = "header"
        public var format = 1
        public var vaultId: String
        public var kekSource: String
        public var kekVersion: Int
        public var kdfSalt: String
        public var kdfMemoryKib: Int64
        public var kdfIterations: Int64
        public var kdfParallelism: Int64
        public var verifier: String
        public var epochKeys: [EpochKey]
        public var since: Int64?
        public var until: Int64?
        public var exportedAt: Int64
        public var previousMac: String
        public var checkpoint: Checkpoint?
    }

    public struct EpochKey: Codable, Sendable {
        public var epoch: Int
        public var nonce: String
        public var ciphertext: String
        public var wrappedDek: String
        public var kekVersion: Int
    }

    /// What pruning had removed when the export was made.
    public struct Checkpoint: Codable, Sendable {
        public var seq: Int64
        public var prunedRows: Int64
        public var lastPrunedAt: Int64
        public var prunes: Int64
    }

    public struct Row: Codable, Sendable {
        public var type = "row"
        public var seq: Int64
        public var at: Int64
        public var actor: String?
        public var owner: String?
        public var action: String
        public var target: String?
        public var outcome: String
        public var detail: String?
        public var epoch: Int
        public var mac: String

        init(_ r: AuditRecord) {
            (seq, at, actor, owner, action, target, outcome, detail, epoch, mac) =
                (r.seq, r.at, r.actorID, r.ownerID, r.action, r.target, r.outcome, r.detail, r.epoch, Hex.encode(r.mac))
        }

        var record: AuditRecord? {
            guard let mac = Hex.decode(mac) else { return nil }
            return AuditRecord(
                seq: seq, at: at, actorID: actor, ownerID: owner, action: action, target: target, outcome: outcome, detail: detail,
                mac: mac, epoch: epoch)
        }
    }

    public struct End: Codable, Sendable {
        public var type = "end"
        public var rows: Int64
        public var firstSeq: Int64?
        public var lastSeq: Int64?
        public var lastMac: String
        public var epoch: Int
        public var mac: String
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }()

    static func line(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
    }

    /// Covers the header line as written (its SHA-256), the count, the range and both ends of the chain.
    static func endMAC(
        header: some DataProtocol, vaultID: String, rows: Int64, first: Int64?, last: Int64?, previous: [UInt8], lastMAC: [UInt8],
        keyed: HMAC<SHA256>
    ) -> [UInt8] {
        var input = Array("warden.audit.export.v1".utf8)
        input += SHA256.hash(data: header)
        for field in [vaultID, String(rows), first.map(String.init) ?? "-", last.map(String.init) ?? "-"] {
            AuditLog.append(field, to: &input)
        }
        input += previous
        input += [0]
        input += lastMAC
        return AuditLog.authenticate(input, keyed: keyed)
    }

    // MARK: export

    /// Writes the rows made in [since, until) (ms; either may be nil) to `sink`, a line at a time.
    public static func export(_ log: AuditLog, since: Int64?, until: Int64?, to sink: (String) async throws -> Void) async throws {
        guard let record = try await VaultRepository(log.database).load() else { throw StoreError.unavailable("no vault record") }
        let repository = log.repository
        let checkpoint = try await repository.checkpoint()
        let first = try await repository.rows(after: checkpoint?.seq ?? 0, since: since, until: until, limit: 1).first
        var previous: [UInt8] = []
        if let first, first.seq > 1 {
            if let row = try await repository.row(seq: first.seq - 1) {
                previous = row.mac
            } else if let checkpoint, checkpoint.seq == first.seq - 1 {
                previous = checkpoint.mac
            }
        }
        let sealedKeys = try await ServerSecretRepository(log.database).all(prefix: "audit-key-")
        let header = Header(
            vaultId: record.vaultID, kekSource: record.kekSource, kekVersion: record.kekVersion, kdfSalt: Hex.encode(record.kdfSalt),
            kdfMemoryKib: record.kdfMemoryKiB, kdfIterations: record.kdfIterations, kdfParallelism: record.kdfParallelism,
            verifier: Hex.encode(record.verifier),
            epochKeys: sealedKeys.compactMap { name, sealed in
                Int(name.dropFirst("audit-key-".count)).map {
                    EpochKey(
                        epoch: $0, nonce: Hex.encode(sealed.nonce), ciphertext: Hex.encode(sealed.ciphertext),
                        wrappedDek: Hex.encode(sealed.wrappedDEK), kekVersion: sealed.kekVersion)
                }
            },
            since: since, until: until, exportedAt: Clock.nowMillis(), previousMac: Hex.encode(previous),
            checkpoint: checkpoint.map {
                Checkpoint(seq: $0.seq, prunedRows: $0.prunedRows, lastPrunedAt: $0.lastPrunedAt, prunes: $0.prunes)
            })
        let headerLine = try line(header)
        try await sink(headerLine)
        var count: Int64 = 0
        var last: AuditRecord?
        var after = (first?.seq ?? 1) - 1
        while first != nil {
            let rows = try await repository.rows(after: after, since: since, until: until, limit: 1000)
            for row in rows { try await sink(try line(Row(row))) }
            count += Int64(rows.count)
            last = rows.last ?? last
            after = rows.last?.seq ?? after
            if rows.count < 1000 { break }
        }
        let lastMAC = last?.mac ?? previous
        let mac = endMAC(
            header: Array(headerLine.utf8.dropLast()), vaultID: record.vaultID, rows: count, first: first?.seq, last: last?.seq,
            previous: previous, lastMAC: lastMAC, keyed: log.keyed
        )
        try await sink(
            try line(
                End(
                    rows: count, firstSeq: first?.seq, lastSeq: last?.seq, lastMac: Hex.encode(lastMAC), epoch: log.epoch,
                    mac: Hex.encode(mac))))
    }

    // MARK: offline verification

    public struct Report: Sendable, Equatable {
        public let rows: Int64
        public let firstSeq: Int64?
        public let lastSeq: Int64?
        public let epochs: [Int]
        public let pruned: Checkpoint?
        /// The rows' time range the export was asked for (ms; nil: open) and when it was made.
        public let since: Int64?
        public let until: Int64?
        public let exportedAt: Int64

        public static func == (a: Report, b: Report) -> Bool {
            a.rows == b.rows && a.firstSeq == b.firstSeq && a.lastSeq == b.lastSeq && a.epochs == b.epochs
        }
    }

    /// Verifies an export with the vault's key (`source`), without the store: every row's MAC under its epoch's
    /// key, the rows' numbers without gaps, and the end line's MAC over the whole.
    public static func verify(export data: Data, source: KeySource) async throws -> Report {
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).makeIterator()
        func bad(_ reason: String) -> WardenError {
            WardenError(.badRequest, code: "export_broken", "the export does not verify: \(reason)")
        }
        guard let first = lines.next(), let header = try? decoder.decode(Header.self, from: Data(first)), header.type == "header",
            let salt = Hex.decode(header.kdfSalt), let verifier = Hex.decode(header.verifier), let previous = Hex.decode(header.previousMac)
        else { throw bad("its first line is not an export header") }
        let record = VaultRecord(
            vaultID: header.vaultId, kekSource: header.kekSource, kekVersion: header.kekVersion, kdfSalt: salt,
            kdfMemoryKiB: header.kdfMemoryKib, kdfIterations: header.kdfIterations, kdfParallelism: header.kdfParallelism,
            verifier: verifier, createdAt: 0)
        do {
            try Argon2Parameters(
                memoryKiB: UInt32(clamping: header.kdfMemoryKib), iterations: UInt32(clamping: header.kdfIterations),
                parallelism: UInt32(clamping: header.kdfParallelism)
            ).validate()
        } catch { throw bad("its key derivation parameters are out of range") }
        let vault: Vault
        do { vault = try await Vault.open(record, source: source) } catch is VaultError {
            throw bad("the key does not open the vault this export came from, or its header was altered")
        }
        let sealed = Dictionary(
            header.epochKeys.compactMap { key -> (String, SealedColumns)? in
                guard let nonce = Hex.decode(key.nonce), let ciphertext = Hex.decode(key.ciphertext),
                    let wrapped = Hex.decode(key.wrappedDek)
                else { return nil }
                return (
                    AuditLog.epochKeyName(key.epoch),
                    SealedColumns(nonce: nonce, ciphertext: ciphertext, wrappedDEK: wrapped, kekVersion: key.kekVersion)
                )
            }, uniquingKeysWith: { a, _ in a })
        let current = HMAC<SHA256>(key: AuditLog.chainKey(vault.kek))
        let keys = AuditLog.EpochKeys(current: vault.kek.version, keyed: current, vault: vault) { sealed[$0] }
        var walk: AuditLog.ChainWalk?
        var firstSeq: Int64?
        var epochs: [Int] = []
        while let next = lines.next() {
            let text = Data(next)
            if let row = try? decoder.decode(Row.self, from: text), row.type == "row" {
                // Exactly as written: a repeated or extra field would show other tools another row than the one checked.
                guard let record = row.record, try line(row).utf8.dropLast().elementsEqual(next) else {
                    throw bad("row \(row.seq) is not written as an export writes it (a field repeated, added or malformed)")
                }
                if walk == nil {
                    walk = AuditLog.ChainWalk(previous: previous, next: record.seq, epoch: record.epoch)
                    firstSeq = record.seq
                }
                if case .broken(_, let reason) = await walk!.check(record, keys: keys) { throw bad(reason) }
                if epochs.last != record.epoch { epochs.append(record.epoch) }
                continue
            }
            guard let end = try? decoder.decode(End.self, from: text), end.type == "end", try line(end).utf8.dropLast().elementsEqual(next)
            else { throw bad("a line is neither a row nor the end, as an export writes them") }
            guard lines.next() == nil else { throw bad("lines follow the end line") }
            let checked = walk?.checked ?? 0
            let lastMAC = walk?.previous ?? previous
            let lastSeq = walk.map { $0.expected - 1 }
            guard end.rows == checked, end.firstSeq == firstSeq, end.lastSeq == lastSeq, Hex.decode(end.lastMac) == lastMAC else {
                throw bad("the end line does not match the rows (rows were removed or added)")
            }
            // Signed with the key the vault had when it was exported, whatever epochs its rows are of.
            guard end.epoch == header.kekVersion, let mac = Hex.decode(end.mac),
                ConstantTime.equals(
                    mac,
                    endMAC(
                        header: first, vaultID: header.vaultId, rows: checked, first: firstSeq, last: lastSeq, previous: previous,
                        lastMAC: lastMAC, keyed: current))
            else { throw bad("the end line's MAC does not match") }
            return Report(
                rows: checked, firstSeq: firstSeq, lastSeq: lastSeq, epochs: epochs, pruned: header.checkpoint, since: header.since,
                until: header.until, exportedAt: header.exportedAt)
        }
        throw bad("it is cut short: there is no end line")
    }

    // MARK: pruning

    /// A rotation signs the pruning checkpoint again under the new epoch's key, as verification asks of it.
    static func resign(checkpointUnder log: AuditLog, on db: any SQLDatabase) async throws {
        guard var checkpoint = try await AuditRepository.checkpoint(on: db) else { return }
        checkpoint.signedEpoch = log.epoch
        checkpoint.checkpointMAC = AuditLog.checkpointMAC(checkpoint, keyed: log.keyed)
        try await AuditRepository.save(checkpoint, on: db)
    }

    public struct Pruned: Sendable, Equatable {
        public let rows: Int64
        public let throughSeq: Int64
    }

    /// Removes the rows made before `cutoff` (ms) behind a checkpoint signed with the current epoch's key, and
    /// records the prune as a row of the chain. Nil when no row is that old. A chain that does not verify is not
    /// pruned: a row's time is covered by nothing but its MAC, and pruning rows that were altered (backdated,
    /// say) would hide the alteration behind a new checkpoint.
    public static func prune(_ log: AuditLog, before cutoff: Int64, actor: String? = nil) async throws -> Pruned? {
        if case .broken(let seq, let reason) = try await log.verify() {
            throw WardenError(
                .conflict, code: "audit_broken", "the audit chain does not verify (row \(seq): \(reason)): nothing was pruned")
        }
        let dialect = log.database.dialect
        return try await log.database.transaction(deadline: .seconds(600)) { db -> Pruned? in
            if let head = try await log.repository.lockHead(on: db, dialect: dialect), head.epoch > log.epoch {
                throw VaultError.rotated(to: head.epoch)
            }
            guard let boundary = try await log.repository.pruneBoundary(before: cutoff, on: db) else { return nil }
            let previous = try await AuditRepository.checkpoint(on: db)
            var checkpoint = AuditCheckpoint(
                seq: boundary.seq, mac: boundary.mac, epoch: boundary.epoch, prunedRows: previous?.prunedRows ?? 0,
                lastPrunedAt: Clock.nowMillis(), prunes: (previous?.prunes ?? 0) + 1, signedEpoch: log.epoch, checkpointMAC: [])
            let kept =
                try await db.raw("SELECT COUNT(*) AS n FROM audit WHERE seq <= \(bind: boundary.seq)").first()
                .map { try $0.decode(column: "n", as: Int64.self) } ?? 0
            checkpoint.prunedRows += kept
            checkpoint.checkpointMAC = AuditLog.checkpointMAC(checkpoint, keyed: log.keyed)
            try await log.append(
                AuditEntry(
                    actor: actor, owner: nil, action: "audit.pruned", outcome: .recorded,
                    detail: ["rows": "\(kept)", "through_seq": "\(boundary.seq)", "before": "\(cutoff)"]),
                on: db)
            _ = try await log.repository.prune(through: checkpoint, on: db)
            return Pruned(rows: kept, throughSeq: boundary.seq)
        }
    }
}
