import Foundation
import WardenCrypto

/// EIP-712 typed-data hashing, for the few types Warden signs: each value is a 32-byte word, strings
/// are their Keccak-256, and the digest is Keccak-256(0x19 0x01 ‖ domain separator ‖ struct hash).
enum EIP712 {
    static func keccak(_ bytes: [UInt8]) -> [UInt8] { Keccak256.hash(bytes) }

    static func typeHash(_ type: String) -> [UInt8] { keccak(Array(type.utf8)) }

    static func string(_ value: String) -> [UInt8] { keccak(Array(value.utf8)) }

    static func uint(_ value: UInt64) -> [UInt8] {
        [UInt8](repeating: 0, count: 24) + (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// A non-negative decimal integer of up to 78 digits as a big-endian 256-bit word; nil if it is not one or does not fit.
    static func uint256(decimal text: String) -> [UInt8]? {
        guard !text.isEmpty, text.count <= 78, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var word = [UInt8](repeating: 0, count: 32)
        for digit in text.utf8 {
            var carry = UInt32(digit - UInt8(ascii: "0"))
            for index in (0..<32).reversed() {
                let value = UInt32(word[index]) * 10 + carry
                word[index] = UInt8(value & 0xff)
                carry = value >> 8
            }
            guard carry == 0 else { return nil }
        }
        return word
    }

    /// A `0x` address as its 20 bytes, or nil.
    static func addressBytes(_ text: String) -> [UInt8]? {
        guard text.count == 42, text.hasPrefix("0x"), let bytes = Hex.decode(String(text.dropFirst(2))) else { return nil }
        return bytes
    }

    static func address(_ bytes: [UInt8]) -> [UInt8] { [UInt8](repeating: 0, count: 12) + bytes }

    /// EIP-55 mixed-case form of an address.
    static func checksummed(_ bytes: [UInt8]) -> String {
        let lower = Hex.encode(bytes)
        let hash = Hex.encode(keccak(Array(lower.utf8)))
        return "0x"
            + String(
                zip(lower, hash).map { char, nibble in
                    char.isLetter && (nibble.hexDigitValue ?? 0) >= 8 ? Character(char.uppercased()) : char
                })
    }

    static func domainSeparator(name: String, version: String, chainID: UInt64, verifyingContract: [UInt8]?) -> [UInt8] {
        guard let contract = verifyingContract else {
            return keccak(
                typeHash("EIP712Domain(string name,string version,uint256 chainId)") + string(name) + string(version) + uint(chainID))
        }
        return keccak(
            typeHash("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
                + string(name) + string(version) + uint(chainID) + address(contract))
    }

    static func digest(domain: [UInt8], structHash: [UInt8]) -> [UInt8] {
        keccak([0x19, 0x01] + domain + structHash)
    }
}
