import Testing
import WardenCrypto

/// Keccak-256 against published vectors (and eth-hash), and wallet keys against eth-account.
@Suite struct WalletTests {
    @Test(arguments: [
        ("", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        ("abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
        ("The quick brown fox jumps over the lazy dog", "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15"),
    ])
    func keccakMatchesPublishedVectors(input: String, expected: String) {
        #expect(Hex.encode(Keccak256.hash(Array(input.utf8))) == expected)
    }

    @Test func keccakCrossesTheRateBoundary() {
        // 200 bytes: more than one 136-byte block (value from eth-hash).
        #expect(
            Hex.encode(Keccak256.hash((0..<200).map { UInt8($0) }))
                == "bfb0aa97863e797943cf7c33bb7e880bb4543f3d2703c0923c6901c2af57b890")
        // SHA3-256("") differs: the padding is Keccak's, not SHA-3's.
        #expect(Hex.encode(Keccak256.hash([UInt8]())) != "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a")
    }

    @Test func walletAddressIsTheOneEthAccountDerives() throws {
        let key = try WalletKey(hex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
        #expect(key.addressHex == "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23")
    }

    @Test func malformedAndOutOfRangeKeysAreRefused() {
        #expect(throws: WalletKey.Failure.malformed) { try WalletKey(hex: "0x1234") }
        #expect(throws: WalletKey.Failure.malformed) { try WalletKey(hex: String(repeating: "g", count: 64)) }
        #expect(throws: WalletKey.Failure.invalidKey) { try WalletKey(hex: String(repeating: "0", count: 64)) }
        #expect(throws: WalletKey.Failure.invalidKey) { try WalletKey(hex: String(repeating: "f", count: 64)) }
    }

    @Test func signaturesAreLowSWithARecoveryByte() throws {
        let key = try WalletKey(hex: "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
        let signature = try key.sign(digest: Keccak256.hash(Array("warden".utf8)))
        #expect(signature.count == 65 && (signature[64] == 27 || signature[64] == 28))
        // s ≤ n/2 (n/2 = 7fffffff ffffffff ffffffff ffffffff 5d576e73 57a4501d dfe92f46 681b20a0)
        let halfOrder = Hex.decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0")!
        #expect(Array(signature[32..<64]).lexicographicallyPrecedes(halfOrder) || Array(signature[32..<64]) == halfOrder)
        #expect(try key.sign(digest: Keccak256.hash(Array("warden".utf8))) == signature, "RFC 6979 nonces are deterministic")
    }
}
