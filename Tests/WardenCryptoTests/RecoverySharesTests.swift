import Foundation
import Testing
@testable import WardenCrypto

@Suite struct RecoverySharesTests {
    let key = MasterKey.generate()
    let vaultID = "vault-1"

    @Test func anyThresholdSubsetRebuildsTheKey() throws {
        let shares = try RecoveryShares.split(key, count: 5, threshold: 3, vaultID: vaultID)
        #expect(shares.map(\.index) == [1, 2, 3, 4, 5])
        for a in 0..<5 {
            for b in (a + 1)..<5 {
                for c in (b + 1)..<5 {
                    let rebuilt = try RecoveryShares.combine([shares[c], shares[a], shares[b]], version: 1)
                    #expect(rebuilt.sameKey(as: key))
                }
            }
        }
    }

    @Test func sharesSurviveTheirTextForm() throws {
        let shares = try RecoveryShares.split(key, count: 3, threshold: 2, vaultID: vaultID)
        let typed = shares.map { $0.text.uppercased().replacingOccurrences(of: "-", with: " - ") }
        let parsed = try typed.map { try RecoveryShare.parse($0, vaultID: vaultID) }
        #expect(parsed == shares)
        #expect(try RecoveryShares.combine(Array(parsed.suffix(2)), version: 4).sameKey(as: key))
        #expect(try RecoveryShares.combine(Array(parsed.suffix(2)), version: 4).version == 4)
    }

    @Test func fewerThanTheThresholdAreRefused() throws {
        let shares = try RecoveryShares.split(key, count: 5, threshold: 3, vaultID: vaultID)
        #expect(throws: RecoveryError.tooFew(needed: 3, given: 2)) { try RecoveryShares.combine(Array(shares.prefix(2)), version: 1) }
        #expect(throws: RecoveryError.repeated) { try RecoveryShares.combine([shares[0], shares[0], shares[1]], version: 1) }
    }

    /// Two shares of a 3-of-5 split leave every key byte possible: as a third share's value runs over all 256
    /// bytes, the rebuilt key's first byte does too, each once.
    @Test func belowTheThresholdEveryKeyIsEquallyPossible() throws {
        let shares = try RecoveryShares.split(key, count: 5, threshold: 3, vaultID: vaultID)
        var seen = Set<UInt8>()
        for y in 0...255 {
            let third = RecoveryShare(
                splitID: shares[0].splitID, threshold: 3, index: 3, values: [UInt8](repeating: UInt8(y), count: 32), checksum: [])
            try RecoveryShares.combine([shares[0], shares[1], third], version: 1).withUnsafeKeyBytes { seen.insert($0[0]) }
        }
        #expect(seen.count == 256)
    }

    @Test func aMistypedShareIsNamed() throws {
        let share = try RecoveryShares.split(key, count: 3, threshold: 2, vaultID: vaultID)[1]
        var text = Array(share.text)
        let position = try #require(text.indices.last { text[$0] != "-" && $0 < text.count - 10 })
        text[position] = text[position] == "0" ? "1" : "0"
        #expect(throws: RecoveryError.badChecksum(index: 2)) { try RecoveryShare.parse(String(text), vaultID: vaultID) }
        #expect(throws: RecoveryError.badChecksum(index: 2)) { try RecoveryShare.parse(share.text, vaultID: "another-vault") }
        #expect(throws: RecoveryError.malformed) { try RecoveryShare.parse("ws1-2-2-abcd", vaultID: vaultID) }
        #expect(throws: RecoveryError.malformed) { try RecoveryShare.parse("hello", vaultID: vaultID) }
    }

    @Test func sharesOfTwoSplitsDoNotCombine() throws {
        let a = try RecoveryShares.split(key, count: 3, threshold: 2, vaultID: vaultID)
        let b = try RecoveryShares.split(key, count: 3, threshold: 2, vaultID: vaultID)
        #expect(throws: RecoveryError.mixedSplits) { try RecoveryShares.combine([a[0], b[1]], version: 1) }
        #expect(throws: RecoveryError.badSplit(count: 3, threshold: 1)) {
            try RecoveryShares.split(key, count: 3, threshold: 1, vaultID: vaultID)
        }
        #expect(throws: RecoveryError.badSplit(count: 2, threshold: 3)) {
            try RecoveryShares.split(key, count: 2, threshold: 3, vaultID: vaultID)
        }
    }

    @Test func fieldArithmetic() {
        #expect(GF256.mul(0x57, 0x83) == 0xc1)  // FIPS-197's worked example
        for a in 1...255 { #expect(GF256.mul(UInt8(a), GF256.inverse(UInt8(a))) == 1) }
    }

    @Test func rewrapMovesTheDEKOnly() throws {
        let identity = SecretIdentity(kind: "credential", id: "c1", owner: "u1", venue: "openai")
        let sealed = try Envelope.seal(SecretBytes(copying: Array("sk-test".utf8)), identity: identity, kek: key)
        let next = MasterKey.generate().versioned(2)
        let moved = try Envelope.rewrap(sealed, identity: identity, from: key, to: next)
        #expect(moved.ciphertext == sealed.ciphertext && moved.nonce == sealed.nonce && moved.kekVersion == 2)
        #expect(try Envelope.open(moved, identity: identity, kek: next).withUnsafeBytes { Array($0) } == Array("sk-test".utf8))
        #expect(throws: CryptoError.unknownKEKVersion(2)) { try Envelope.open(moved, identity: identity, kek: key) }
        #expect(throws: CryptoError.openFailed) { try Envelope.open(moved, identity: identity, kek: key.versioned(2)) }
    }
}

@Suite struct ProcessHardeningTests {
    #if os(Linux)
        @Test func theProcessBecomesUndumpableWithNoCoreLimit() {
            ProcessHardening.apply()
            #expect(ProcessHardening.isUndumpable)
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_CORE.rawValue), &limit)
            #expect(limit.rlim_cur == 0 && limit.rlim_max == 0)
        }
    #endif
}
