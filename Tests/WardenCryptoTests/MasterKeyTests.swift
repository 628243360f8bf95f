import Foundation
import Testing
@testable import WardenCrypto

@Suite struct MasterKeyTests {
    @Test func generatesDistinct64HexKeys() {
        let a = MasterKey.generate().hexEncoded()
        let b = MasterKey.generate().hexEncoded()
        #expect(a.count == 64)
        #expect(a.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(a != b)
    }

    @Test func parsesHexAndBase64OfTheSameBytes() throws {
        let bytes = (0..<32).map { UInt8($0 * 7 & 0xff) }
        let hex = Hex.encode(bytes)
        let base64 = Data(bytes).base64EncodedString()
        #expect(base64.count == 44)
        let fromHex = try MasterKey.parse(hex)
        let fromUpperHex = try MasterKey.parse(hex.uppercased())
        let fromBase64 = try MasterKey.parse(base64 + "\n")
        #expect(fromHex.hexEncoded() == hex)
        #expect(fromUpperHex.hexEncoded() == hex)
        #expect(fromBase64.hexEncoded() == hex)
    }

    @Test(arguments: [
        "", "abc", String(repeating: "a", count: 63), String(repeating: "a", count: 65),
        String(repeating: "g", count: 64), String(repeating: "A", count: 43),
        Data(repeating: 1, count: 31).base64EncodedString() + "AAAA", "not a key at all, clearly not 44 chars",
        String(repeating: "=", count: 44),
    ])
    func refusesMalformedKeys(text: String) {
        #expect(throws: CryptoError.malformedMasterKey) { try MasterKey.parse(text) }
    }

    @Test func malformedKeyMessageNamesTheAcceptedFormats() {
        let message = CryptoError.malformedMasterKey.description
        #expect(message.contains("64 hex"))
        #expect(message.contains("44 base64"))
        #expect(message.contains("warden keygen"))
    }

    @Test func derivedKeysDependOnTheLabelAndTheKey() {
        let kek = MasterKey.generate()
        let a = kek.derivedKey(label: "audit").withUnsafeBytes { Array($0) }
        let b = kek.derivedKey(label: "sentinel").withUnsafeBytes { Array($0) }
        let c = MasterKey.generate().derivedKey(label: "audit").withUnsafeBytes { Array($0) }
        #expect(a != b)
        #expect(a != c)
        #expect(a == kek.derivedKey(label: "audit").withUnsafeBytes { Array($0) })
    }

    @Test func verifierRecognisesOnlyItsKey() {
        let kek = MasterKey.generate()
        let stored = VaultVerifier.make(vaultID: "v1", kek: kek)
        #expect(VaultVerifier.matches(stored, vaultID: "v1", kek: kek))
        #expect(!VaultVerifier.matches(stored, vaultID: "v2", kek: kek))
        #expect(!VaultVerifier.matches(stored, vaultID: "v1", kek: MasterKey.generate()))
    }

    @Test func secretBytesCompareInConstantTime() {
        let a = SecretBytes(copying: [1, 2, 3])
        #expect(a.constantTimeEquals(SecretBytes(copying: [1, 2, 3])))
        #expect(!a.constantTimeEquals(SecretBytes(copying: [1, 2, 4])))
        #expect(!a.constantTimeEquals(SecretBytes(copying: [1, 2])))
        #expect(SecretBytes(copying: []).count == 0)
    }
}
