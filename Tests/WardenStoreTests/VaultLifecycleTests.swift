import Foundation
import Logging
import SQLKit
import Testing
import WardenCore
import WardenCrypto
import WardenStore

/// KEK rotation, the audit chain across key epochs, exports and pruning, on every engine.
@Suite struct VaultLifecycleTests {
    let logger = Logger(label: "test")

    struct Fixture {
        let store: TestStore
        let vault: Vault
        let key: MasterKey
    }

    private func fixture(_ backend: Backend, credentials: Int = 3) async throws -> Fixture {
        let store = try await TestStore.make(backend)
        try await Migrator.migrate(store.database, logger: logger)
        let key = MasterKey.generate()
        let vault = try await Vault.unseal(database: store.database, source: .masterKey(key), logger: logger)
        try await UserRepository(store.database).insert(
            UserRecord(
                id: "u1", email: "owner@example.com", passwordHash: "$argon2id$x", isAdmin: false, disabled: false,
                mustChangePassword: false, createdAt: 1, updatedAt: 1))
        for i in 0..<credentials {
            let identity = SecretIdentity(kind: "credential", id: "c\(i)", owner: "u1", venue: "openai")
            let sealed = try vault.seal(SecretBytes(copying: Array("sk-\(i)".utf8)), identity: identity)
            try await CredentialRepository(store.database).insert(
                CredentialRecord(
                    id: "c\(i)", ownerID: "u1", venue: "openai", label: "k\(i)", fingerprint: "00", nonce: sealed.nonce,
                    ciphertext: sealed.ciphertext, wrappedDEK: sealed.wrappedKey, kekVersion: sealed.kekVersion, createdAt: 1, updatedAt: 1)
            )
        }
        let log = AuditLog(database: store.database, vault: vault)
        for i in 0..<5 { try await log.append(AuditEntry(actor: "u1", owner: "u1", action: "test.before", target: "\(i)")) }
        return Fixture(store: store, vault: vault, key: key)
    }

    /// Rotates the fixture's store from the vault it was unsealed with to `key`.
    private func rotate(_ f: Fixture, to key: MasterKey = .generate()) async throws -> VaultRotation.Result {
        try await VaultRotation.rotate(database: f.store.database, from: f.vault, to: .masterKey(key), kdf: .default, logger: logger)
    }

    private func opened(_ id: String, _ vault: Vault, _ db: Database) async throws -> String {
        let row = try #require(try await CredentialRepository(db).find(id: id))
        let secret = try vault.open(
            SealedSecret(nonce: row.nonce, ciphertext: row.ciphertext, wrappedKey: row.wrappedDEK, kekVersion: row.kekVersion),
            identity: SecretIdentity(kind: "credential", id: id, owner: "u1", venue: "openai"))
        return secret.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    @Test(arguments: Backend.enabled)
    func rotationMovesEverySecretAndTheChainVerifiesAcrossEpochs(backend: Backend) async throws {
        let f = try await fixture(backend)
        let db = f.store.database
        let newKey = MasterKey.generate()
        let result = try await rotate(f, to: newKey)
        #expect(result.fromVersion == 1 && result.toVersion == 2)
        #expect(result.rewrapped == 3)  // the credentials; no server secret was made in this store
        for i in 0..<3 { #expect(try await opened("c\(i)", result.vault, db) == "sk-\(i)") }

        // The old key opens nothing: not the vault, not a secret.
        await #expect(throws: VaultError.notCurrentKey(version: 2)) {
            _ = try await Vault.unseal(database: db, source: .masterKey(f.key), logger: logger)
        }
        await #expect(throws: (any Error).self) { _ = try await opened("c0", f.vault, db) }
        let reopened = try await Vault.unseal(database: db, source: .masterKey(newKey), logger: logger)
        #expect(reopened.kek.version == 2)

        // New rows are of epoch 2; the chain of both epochs verifies; the rotation is a row.
        let log = AuditLog(database: db, vault: reopened)
        try await log.append(AuditEntry(actor: "u1", owner: "u1", action: "test.after"))
        #expect(try await log.verify() == .intact(rows: 7))
        let rows = try await AuditRepository(db).rows(after: 0, limit: 100)
        #expect(rows.map(\.epoch) == [1, 1, 1, 1, 1, 2, 2])
        #expect(rows[5].action == "vault.rotated")

        // A server still on the old key can append nothing more.
        await #expect(throws: VaultError.rotated(to: 2)) {
            try await AuditLog(database: db, vault: f.vault).append(AuditEntry(actor: nil, owner: nil, action: "test.stale"))
        }
        try await db.close()
    }

    @Test func anEpochCannotGoBackwardsNorBeForged() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        let next = try await rotate(f)
            .vault
        let log = AuditLog(database: db, vault: next)
        // A row relabelled to another epoch no longer verifies (its MAC is checked with that epoch's key).
        try await db.withConnection { try await $0.raw("UPDATE audit SET epoch = 1 WHERE seq = 6").run() }
        guard case .broken(let seq, _) = try await log.verify() else { Issue.record("a relabelled row was not found"); return }
        #expect(seq == 6)
        try await db.withConnection { try await $0.raw("UPDATE audit SET epoch = 3 WHERE seq = 6").run() }
        guard case .broken(6, let reason) = try await log.verify() else { Issue.record("an unknown epoch was not found"); return }
        #expect(reason.contains("epoch 3"))
        try await db.close()
    }

    @Test func rotationRefusesTheCurrentKeyAndAStaleVault() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        await #expect(throws: VaultError.rotationRefused("the new key is the current one")) {
            _ = try await rotate(f, to: f.key)
        }
        _ = try await rotate(f)
        // A second rotation from the vault as it was unsealed before the first is refused, changing nothing.
        await #expect(throws: VaultError.self) {
            _ = try await rotate(f)
        }
        try await db.close()
    }

    /// A damaged secret stops the rotation before anything changes: the old key still opens everything.
    @Test func aSecretThatDoesNotOpenLeavesTheVaultAsItWas() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        try await db.withConnection {
            try await $0.raw("UPDATE credentials SET owner_id = owner_id, venue = 'binance' WHERE id = 'c1'").run()
        }
        await #expect(throws: VaultError.self) {
            _ = try await rotate(f)
        }
        let again = try await Vault.unseal(database: db, source: .masterKey(f.key), logger: logger)
        #expect(again.kek.version == 1)
        #expect(try await opened("c0", again, db) == "sk-0")
        try await db.close()
    }

    @Test(arguments: Backend.enabled)
    func anExportVerifiesOfflineAndNoEditGoesUnseen(backend: Backend) async throws {
        let f = try await fixture(backend)
        let db = f.store.database
        let newKey = MasterKey.generate()
        let vault = try await rotate(f, to: newKey).vault
        let log = AuditLog(database: db, vault: vault)
        try await log.append(AuditEntry(actor: "u1", owner: "u1", action: "test.after", detail: ["k": "v"]))
        var lines: [String] = []
        try await AuditArchive.export(log, since: nil, until: nil) { lines.append($0) }
        let data = Data(lines.joined().utf8)
        let report = try await AuditArchive.verify(export: data, source: .masterKey(newKey))
        #expect(report.rows == 7 && report.firstSeq == 1 && report.lastSeq == 7 && report.epochs == [1, 2])
        await #expect(throws: (any Error).self) { _ = try await AuditArchive.verify(export: data, source: .masterKey(f.key)) }

        // Every kind of edit is refused: a field changed, a row removed, the end cut off, a line added.
        let rows = Array(lines.dropFirst().dropLast())
        let edits: [String: [String]] = [
            "field": [lines[0]] + [rows[2].replacingOccurrences(of: "test.before", with: "test.bafore")] + rows.dropFirst(3) + [lines.last!]
                + [],
            "removed": [lines[0]] + rows.prefix(3) + rows.dropFirst(4) + [lines.last!],
            "cut": Array(lines.dropLast()),
            "added": lines + [rows[0]],
        ]
        for (name, edited) in edits {
            await #expect(throws: (any Error).self, "\(name)") {
                _ = try await AuditArchive.verify(export: Data(edited.joined().utf8), source: .masterKey(newKey))
            }
        }

        // A range starts mid-chain and still verifies.
        var part: [String] = []
        let since = try #require(try await AuditRepository(db).rows(after: 0, limit: 10).first { $0.seq == 6 }).at
        try await AuditArchive.export(log, since: since, until: nil) { part.append($0) }
        let partial = try await AuditArchive.verify(export: Data(part.joined().utf8), source: .masterKey(newKey))
        #expect(partial.firstSeq ?? 0 >= 2 && partial.lastSeq == 7)
        try await db.close()
    }

    @Test(arguments: Backend.enabled)
    func pruningLeavesAChainThatVerifiesFromItsCheckpoint(backend: Backend) async throws {
        let f = try await fixture(backend)
        let db = f.store.database
        let log = AuditLog(database: db, vault: f.vault)
        // Rows 1–5 are made "old" by pruning everything before a time after them.
        let cutoff = Clock.nowMillis() + 1
        try await Task.sleep(for: .milliseconds(5))
        try await log.append(AuditEntry(actor: "u1", owner: "u1", action: "test.kept"))
        let pruned = try #require(try await AuditArchive.prune(log, before: cutoff))
        #expect(pruned.rows == 5 && pruned.throughSeq == 5)
        #expect(try await log.verify() == .intact(rows: 2))  // the kept row and the prune's own row
        let checkpoint = try #require(try await AuditRepository(db).checkpoint())
        #expect(checkpoint.prunedRows == 5 && checkpoint.prunes == 1)
        #expect(try await AuditArchive.prune(log, before: cutoff) == nil)

        // An export after pruning verifies; a forged checkpoint or a kept row deleted is found.
        var lines: [String] = []
        try await AuditArchive.export(log, since: nil, until: nil) { lines.append($0) }
        #expect(try await AuditArchive.verify(export: Data(lines.joined().utf8), source: .masterKey(f.key)).rows == 2)
        try await db.withConnection { try await $0.raw("UPDATE audit_checkpoint SET pruned_rows = 1").run() }
        guard case .broken = try await log.verify() else { Issue.record("a forged checkpoint was not found"); return }
        try await db.withConnection { try await $0.raw("UPDATE audit_checkpoint SET pruned_rows = 5").run() }
        #expect(try await log.verify() == .intact(rows: 2))
        try await db.withConnection { try await $0.raw("DELETE FROM audit WHERE seq = 6").run() }
        guard case .broken(6, _) = try await log.verify() else { Issue.record("a deleted kept row was not found"); return }
        try await db.close()
    }

    /// An attacker with the database and a rotated-out key (leaked) cannot pass rows off as the chain's end:
    /// cutting the chain back to the old epoch and appending under the old key is found.
    @Test(arguments: Backend.enabled)
    func aRotatedOutKeyCannotRewriteTheChain(backend: Backend) async throws {
        let f = try await fixture(backend)
        let db = f.store.database
        let newKey = MasterKey.generate()
        let vault = try await rotate(f, to: newKey).vault
        let current = AuditLog(database: db, vault: vault)
        #expect(try await current.verify() == .intact(rows: 6))
        let rows = try await AuditRepository(db).rows(after: 0, limit: 100)
        let lastOld = try #require(rows.last { $0.epoch == 1 })
        try await db.withConnection { db in
            try await db.raw("DELETE FROM audit WHERE epoch = 2").run()
            try await db.raw("UPDATE audit_head SET epoch = 1, seq = \(bind: lastOld.seq), mac = \(bind: Data(lastOld.mac))").run()
        }
        // The old key appends a forged row and a head of its own epoch.
        try await AuditLog(database: db, vault: f.vault).append(AuditEntry(actor: "u1", owner: "u1", action: "credential.delete"))
        guard case .broken(_, let reason) = try await current.verify() else {
            Issue.record("an old key's rows passed as the chain's end"); return
        }
        #expect(reason.contains("head"))
        try await db.close()
    }

    @Test func rowsDeletedWholesaleOrAddedBelowTheChainAreFound() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        let log = AuditLog(database: db, vault: f.vault)
        try await db.withConnection {
            try await $0.raw("INSERT INTO audit (seq, at, action, outcome, mac, epoch) VALUES (0, 1, 'user.create', 'ok', X'00', 1)").run()
        }
        guard case .broken(0, _) = try await log.verify() else { Issue.record("a row below the chain was not found"); return }
        try await db.withConnection { db in
            try await db.raw("DELETE FROM audit").run()
            try await db.raw("DELETE FROM audit_head").run()
        }
        guard case .broken(1, let reason) = try await log.verify() else { Issue.record("a wiped chain passed"); return }
        #expect(reason.contains("holds accounts"))
        try await db.close()
    }

    /// A checkpoint is trusted only under the current epoch's key; a rotation signs it again.
    @Test func aCheckpointSignedByARotatedOutKeyIsRefused() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        let cutoff = Clock.nowMillis() + 1
        try await Task.sleep(for: .milliseconds(5))
        let oldLog = AuditLog(database: db, vault: f.vault)
        _ = try await AuditArchive.prune(oldLog, before: cutoff)
        let forgedLater = try #require(try await AuditRepository(db).checkpoint())
        let vault = try await rotate(f)
            .vault
        let current = AuditLog(database: db, vault: vault)
        #expect(try await current.verify() == .intact(rows: 2))  // the prune's row and the rotation's
        // Put back the checkpoint as the old key signed it: refused.
        try await db.withConnection { try await AuditRepository.save(forgedLater, on: $0) }
        guard case .broken = try await current.verify() else { Issue.record("an old key's checkpoint was trusted"); return }
        try await db.close()
    }

    /// What is stored keyed (agent keys' hashes, credentials' fingerprints) still matches after a rotation, and
    /// the session-signing key is replaced, not carried over.
    @Test func agentKeysOutliveARotationAndSessionsDoNot() async throws {
        let store = try await TestStore.make(.sqlite)
        let db = store.database
        try await Migrator.migrate(db, logger: logger)
        let key = MasterKey.generate()
        let vault = try await Vault.unseal(database: db, source: .masterKey(key), logger: logger)
        let services = try await WardenServices.make(
            database: db, vault: vault, config: WardenConfig(), environment: [:],
            passwordParameters: Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1))
        let (user, _) = try await services.accounts.createUser(
            email: "a@example.com", password: "a-long-password-1", mustReset: false, admin: false)
        let principal = Principal(user: user, sessionID: "s")
        let credential = try await services.credentials.create(principal, venue: "openai", label: "l", secret: ["api_key": "sk-x"])
        let (_, agentKey) = try await services.agentKeys.create(
            principal, name: "k", credentialIDs: [credential.id], access: "trade", expiresInDays: nil)
        let sessionKey = try #require(try await ServerSecretRepository(db).find(name: "jwt-signing-key"))

        let newKey = MasterKey.generate()
        _ = try await VaultRotation.rotate(database: db, from: vault, to: .masterKey(newKey), kdf: .default, logger: logger)
        let reopened = try await Vault.unseal(database: db, source: .masterKey(newKey), logger: logger)
        let after = try await WardenServices.make(
            database: db, vault: reopened, config: WardenConfig(), environment: [:],
            passwordParameters: Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1))
        #expect(try await after.agentKeys.lookup(agentKey) != nil)
        let again = try await after.credentials.create(principal, venue: "openai", label: "m", secret: ["api_key": "sk-x"])
        #expect(again.fingerprint == credential.fingerprint)
        let replaced = try #require(try await ServerSecretRepository(db).find(name: "jwt-signing-key"))
        #expect(replaced.ciphertext != sessionKey.ciphertext)
        try await db.close()
    }

    @Test func anExportSignedByARotatedOutKeyOrWithAnEditedHeaderIsRefused() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        let newKey = MasterKey.generate()
        let vault = try await rotate(f, to: newKey).vault
        var lines: [String] = []
        try await AuditArchive.export(AuditLog(database: db, vault: vault), since: nil, until: nil) { lines.append($0) }
        _ = try await AuditArchive.verify(export: Data(lines.joined().utf8), source: .masterKey(newKey))
        // The header's pruning report edited without the key: refused.
        var edited = lines
        edited[0] = edited[0].replacingOccurrences(
            of: #""format":1"#, with: #""format":1,"checkpoint":{"seq":9,"pruned_rows":999,"last_pruned_at":0,"prunes":7}"#)
        #expect(edited[0] != lines[0])
        await #expect(throws: (any Error).self) {
            _ = try await AuditArchive.verify(export: Data(edited.joined().utf8), source: .masterKey(newKey))
        }
        // The old epoch's rows alone, the rotation left out, the whole signed by the old key: refused.
        let rotatedAt = try #require(try await AuditRepository(db).rows(after: 0, limit: 100).first { $0.action == "vault.rotated" }).at
        var old: [String] = []
        try await AuditArchive.export(AuditLog(database: db, vault: f.vault), since: nil, until: rotatedAt) { old.append($0) }
        #expect(old.count >= 3 && !old.joined().contains("vault.rotated"))  // header, rows of the old epoch only, end
        await #expect(throws: (any Error).self) {
            _ = try await AuditArchive.verify(export: Data(old.joined().utf8), source: .masterKey(newKey))
        }
        try await db.close()
    }

    /// Second attack pass: rows backdated without the key are not pruned away; a row without a number is found;
    /// an exported row with a field repeated (other tools read the last, Warden the first) does not verify.
    @Test func backdatedRowsUnnumberedRowsAndRepeatedFieldsAreRefused() async throws {
        let f = try await fixture(.sqlite)
        let db = f.store.database
        let log = AuditLog(database: db, vault: f.vault)
        var lines: [String] = []
        try await AuditArchive.export(log, since: nil, until: nil) { lines.append($0) }
        var repeated = lines
        repeated[2] = String(repeated[2].dropLast(2)) + #","action":"credential.read_plain"}"# + "\n"
        await #expect(throws: (any Error).self) {
            _ = try await AuditArchive.verify(export: Data(repeated.joined().utf8), source: .masterKey(f.key))
        }

        try await db.withConnection { try await $0.raw("UPDATE audit SET at = 1000 WHERE seq <= 3").run() }
        await #expect(throws: WardenError.self) { _ = try await AuditArchive.prune(log, before: Clock.nowMillis()) }
        #expect(try await AuditRepository(db).rows(after: 0, limit: 100).count == 5)  // nothing was pruned

        let other = try await fixture(.sqlite)
        let otherLog = AuditLog(database: other.store.database, vault: other.vault)
        try await other.store.database.withConnection {
            try await $0.raw(
                "INSERT INTO audit (seq, at, action, outcome, mac, epoch) VALUES (NULL, 1, 'credential.delete', 'ok', X'00', 1)"
            ).run()
        }
        guard case .broken = try await otherLog.verify() else { Issue.record("an unnumbered row passed"); return }
        try await other.store.database.close()
        try await db.close()
    }
}
