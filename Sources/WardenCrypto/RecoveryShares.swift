import Crypto
import Foundation

/// One of N recovery shares of the KEK (Shamir's secret sharing over GF(256)): any `threshold` of a
/// split's shares rebuild the key; fewer reveal nothing about it. A share names its split, its threshold
/// and its index, and carries a checksum bound to the vault, so a mistyped share or one from another
/// vault is named as bad instead of silently producing a wrong key.
public struct RecoveryShare: Sendable, Equatable {
    /// Random per split: shares of two splits of the same key never combine.
    public let splitID: [UInt8]
    public let threshold: Int
    /// The share's x coordinate, 1...255.
    public let index: Int
    /// One y coordinate per key byte.
    let values: [UInt8]
    let checksum: [UInt8]

    static let splitIDBytes = 4
    static let checksumBytes = 4
    static let prefix = "ws1"

    /// The share as a person copies it: `ws1-K-I-` then 4-hex-digit groups (split id, values, checksum).
    public var text: String {
        let hex = Hex.encode(splitID + values + checksum)
        var groups: [Substring] = []
        var rest = Substring(hex)
        while !rest.isEmpty {
            groups.append(rest.prefix(4))
            rest = rest.dropFirst(4)
        }
        return "\(Self.prefix)-\(threshold)-\(index)-" + groups.joined(separator: "-")
    }

    /// Reads a share as `text` wrote it; spaces, line breaks and letter case do not matter. The checksum
    /// is checked against `vaultID`.
    public static func parse(_ text: String, vaultID: String) throws(RecoveryError) -> RecoveryShare {
        let cleaned = text.lowercased().filter { !$0.isWhitespace }
        let parts = cleaned.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count > 3, parts[0] == Self.prefix, let threshold = Int(parts[1]), let index = Int(parts[2]),
            (2...255).contains(threshold), (1...255).contains(index),
            let bytes = Hex.decode(parts[3...].joined()), bytes.count == splitIDBytes + MasterKey.byteCount + checksumBytes
        else { throw .malformed }
        let splitID = Array(bytes.prefix(splitIDBytes))
        let values = Array(bytes.dropFirst(splitIDBytes).prefix(MasterKey.byteCount))
        let share = RecoveryShare(
            splitID: splitID, threshold: threshold, index: index, values: values, checksum: Array(bytes.suffix(checksumBytes)))
        guard ConstantTime.equals(share.checksum, checksum(of: share, vaultID: vaultID)) else { throw .badChecksum(index: index) }
        return share
    }

    static func checksum(of share: RecoveryShare, vaultID: String) -> [UInt8] {
        var input = Array("warden.share.v1".utf8) + Array(vaultID.utf8) + [0] + share.splitID
        input += [UInt8(share.threshold), UInt8(share.index)] + share.values
        return Array(SHA256.hash(data: input).prefix(checksumBytes))
    }
}

public enum RecoveryShares {
    /// Splits `key` into `count` shares of which any `threshold` rebuild it.
    public static func split(_ key: MasterKey, count: Int, threshold: Int, vaultID: String) throws(RecoveryError) -> [RecoveryShare] {
        guard (2...255).contains(count), (2...count).contains(threshold) else {
            throw .badSplit(count: count, threshold: threshold)
        }
        var rng = SystemRandomNumberGenerator()
        let splitID = (0..<RecoveryShare.splitIDBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var ys = [[UInt8]](repeating: [], count: count)
        key.withUnsafeKeyBytes { secret in
            // One random polynomial of degree threshold-1 per key byte, its constant term that byte.
            var coefficients = [UInt8](repeating: 0, count: threshold)
            defer { Wipe.array(&coefficients) }
            for byte in secret {
                coefficients[0] = byte
                for i in 1..<threshold { coefficients[i] = UInt8.random(in: 0...255, using: &rng) }
                for share in 0..<count {
                    ys[share].append(GF256.evaluate(coefficients, at: UInt8(share + 1)))
                }
            }
        }
        return ys.enumerated().map { offset, values in
            let unsigned = RecoveryShare(splitID: splitID, threshold: threshold, index: offset + 1, values: values, checksum: [])
            return RecoveryShare(
                splitID: splitID, threshold: threshold, index: offset + 1, values: values,
                checksum: RecoveryShare.checksum(of: unsigned, vaultID: vaultID))
        }
    }

    /// Rebuilds the key from shares of one split: at least its threshold of them, each index once.
    public static func combine(_ shares: [RecoveryShare], version: Int) throws(RecoveryError) -> MasterKey {
        guard let first = shares.first else { throw .tooFew(needed: 2, given: 0) }
        guard shares.allSatisfy({ $0.splitID == first.splitID && $0.threshold == first.threshold }) else { throw .mixedSplits }
        guard Set(shares.map(\.index)).count == shares.count else { throw .repeated }
        guard shares.count >= first.threshold else { throw .tooFew(needed: first.threshold, given: shares.count) }
        let used = Array(shares.prefix(first.threshold))
        let xs = used.map { UInt8($0.index) }
        // Lagrange weights at x = 0: the product over j ≠ i of x_j / (x_j - x_i); subtraction is XOR here.
        let weights = xs.indices.map { i in
            xs.indices.reduce(UInt8(1)) { weight, j in
                j == i ? weight : GF256.mul(weight, GF256.mul(xs[j], GF256.inverse(xs[j] ^ xs[i])))
            }
        }
        let key = SecretBytes(count: MasterKey.byteCount) { out in
            for b in 0..<MasterKey.byteCount {
                var value: UInt8 = 0
                for (i, share) in used.enumerated() { value ^= GF256.mul(weights[i], share.values[b]) }
                out[b] = value
            }
        }
        return try! MasterKey(bytes: key, version: version)
    }
}

/// Arithmetic in GF(2^8) with the AES polynomial, without tables or branches on the operands (key bytes).
enum GF256 {
    static func mul(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var a = a, b = b, product: UInt8 = 0
        for _ in 0..<8 {
            product ^= a & (0 &- (b & 1))
            a = (a << 1) ^ (0x1b & (0 &- (a >> 7)))
            b >>= 1
        }
        return product
    }

    /// a^254, which is a's inverse for any a ≠ 0.
    static func inverse(_ a: UInt8) -> UInt8 {
        var result: UInt8 = 1, base = a, exponent = 254
        while exponent > 0 {
            if exponent & 1 == 1 { result = mul(result, base) }
            base = mul(base, base)
            exponent >>= 1
        }
        return result
    }

    /// The polynomial with `coefficients` (constant term first) at `x`, by Horner's rule.
    static func evaluate(_ coefficients: [UInt8], at x: UInt8) -> UInt8 {
        coefficients.reversed().reduce(UInt8(0)) { mul($0, x) ^ $1 }
    }
}

/// Why shares could not be made or used. No message holds share material.
public enum RecoveryError: Error, Equatable, CustomStringConvertible {
    case badSplit(count: Int, threshold: Int)
    case malformed
    case badChecksum(index: Int)
    case mixedSplits
    case repeated
    case tooFew(needed: Int, given: Int)

    public var description: String {
        switch self {
        case .badSplit(let count, let threshold):
            "cannot split into \(count) shares with threshold \(threshold): need 2 ≤ threshold ≤ shares ≤ 255"
        case .malformed: "not a recovery share: a share reads ws1-K-I- followed by groups of hex digits, as `warden vault split` printed it"
        case .badChecksum(let index): "share \(index) does not check out: it was mistyped, or it belongs to another vault"
        case .mixedSplits: "the shares come from different splits: use shares printed by one `warden vault split`"
        case .repeated: "the same share was given twice"
        case .tooFew(let needed, let given): "\(needed) shares are needed and \(given) were given: fewer reveal nothing about the key"
        }
    }
}
