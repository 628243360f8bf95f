import Foundation
import Testing
@testable import WardenCrypto

@Suite struct EnvelopeTests {
    let kek = MasterKey.generate()
    let identity = SecretIdentity(kind: "credential", id: "c1", owner: "u1", venue: "binance")
    let secret = SecretBytes(copying: Array("sk-live-0123456789abcdef".utf8))

    private func plaintext(_ bytes: SecretBytes) -> String {
        bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }

    @Test func opensUnderTheSameKey() throws {
        let sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        #expect(plaintext(try Envelope.open(sealed, identity: identity, kek: kek)) == "sk-live-0123456789abcdef")
        #expect(sealed.nonce.count == 12)
        #expect(sealed.kekVersion == kek.version)
        #expect(!Data(sealed.ciphertext).contains(Data("sk-live".utf8)))
    }

    @Test func eachSealUsesAFreshKeyAndNonce() throws {
        let a = try Envelope.seal(secret, identity: identity, kek: kek)
        let b = try Envelope.seal(secret, identity: identity, kek: kek)
        #expect(a.nonce != b.nonce)
        #expect(a.ciphertext != b.ciphertext)
        #expect(a.wrappedKey != b.wrappedKey)
    }

    @Test func failsUnderAnotherKey() throws {
        let sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        #expect(throws: CryptoError.openFailed) { try Envelope.open(sealed, identity: identity, kek: MasterKey.generate()) }
    }

    @Test func failsWhenAnyBitOfTheCiphertextNonceOrWrappedKeyFlips() throws {
        let sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        let fields: [WritableKeyPath<SealedSecret, [UInt8]>] = [\.ciphertext, \.nonce, \.wrappedKey]
        for field in fields {
            let length = sealed[keyPath: field].count
            for bit in stride(from: 0, to: length * 8, by: 7) {
                var tampered = sealed
                tampered[keyPath: field][bit / 8] ^= UInt8(1 << (bit % 8))
                #expect(throws: CryptoError.openFailed) { try Envelope.open(tampered, identity: identity, kek: kek) }
            }
        }
    }

    @Test(arguments: [
        SecretIdentity(kind: "credential", id: "c2", owner: "u1", venue: "binance"),
        SecretIdentity(kind: "credential", id: "c1", owner: "u2", venue: "binance"),
        SecretIdentity(kind: "credential", id: "c1", owner: "u1", venue: "kalshi"),
        SecretIdentity(kind: "session", id: "c1", owner: "u1", venue: "binance"),
        SecretIdentity(kind: "credential", id: "c1u", owner: "1", venue: "binance"),
    ])
    func failsWhenMovedToAnotherRow(other: SecretIdentity) throws {
        let sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        #expect(throws: CryptoError.openFailed) { try Envelope.open(sealed, identity: other, kek: kek) }
    }

    @Test func refusesAnUnknownKEKVersion() throws {
        var sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        sealed.kekVersion = 2
        #expect(throws: CryptoError.unknownKEKVersion(2)) { try Envelope.open(sealed, identity: identity, kek: kek) }
    }

    @Test func truncatedCiphertextIsAnErrorNotACrash() throws {
        var sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        sealed.ciphertext = [1, 2, 3]
        #expect(throws: CryptoError.openFailed) { try Envelope.open(sealed, identity: identity, kek: kek) }
        sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        sealed.wrappedKey = []
        #expect(throws: CryptoError.openFailed) { try Envelope.open(sealed, identity: identity, kek: kek) }
        sealed = try Envelope.seal(secret, identity: identity, kek: kek)
        sealed.nonce = [0]
        #expect(throws: CryptoError.openFailed) { try Envelope.open(sealed, identity: identity, kek: kek) }
    }
}
