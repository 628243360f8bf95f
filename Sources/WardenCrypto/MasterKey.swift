import Crypto
import Foundation

/// The key-encryption key (KEK). It lives only in process memory: never written, logged or returned.
public final class MasterKey: Sendable {
    public static let byteCount = 32
    public let version: Int
    private let bytes: SecretBytes
    /// The subkey that wraps every DEK, derived once because every envelope open needs it.
    let wrappingKey: SymmetricKey

    public init(bytes: SecretBytes, version: Int = 1) throws(CryptoError) {
        guard bytes.count == Self.byteCount else { throw .invalidKeyLength(bytes.count) }
        self.bytes = bytes
        self.version = version
        self.wrappingKey = Self.hkdf(bytes, label: "dek-wrap")
    }

    /// A fresh random key.
    public static func generate() -> MasterKey {
        let secret = SecretBytes(count: byteCount) { buffer in
            var rng = SystemRandomNumberGenerator()
            for i in 0..<buffer.count { buffer[i] = rng.next() }
        }
        return try! MasterKey(bytes: secret)
    }

    /// Parses `WARDEN_MASTER_KEY`: 64 hex characters or 44 base64 characters, both encoding 32 bytes.
    public static func parse(_ text: String) throws(CryptoError) -> MasterKey {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.count == 64, var bytes = Hex.decode(trimmed) {
            defer { Wipe.array(&bytes) }
            return try MasterKey(bytes: SecretBytes(copying: bytes))
        }
        if trimmed.count == 44, var data = Data(base64Encoded: trimmed), data.count == byteCount {
            defer { data.resetBytes(in: 0..<data.count) }
            return try MasterKey(bytes: SecretBytes(copying: data))
        }
        throw .malformedMasterKey
    }

    /// The key as 64 lowercase hex characters, for `warden keygen` only.
    public func hexEncoded() -> String {
        bytes.withUnsafeBytes { Hex.encode($0) }
    }

    /// The same key under another version number: the vault's record says which version its key is.
    public func versioned(_ version: Int) -> MasterKey {
        bytes.withUnsafeBytes { try! MasterKey(bytes: SecretBytes(copying: $0), version: version) }
    }

    /// Runs `body` on the raw key bytes (to split it into recovery shares). Do not let them escape.
    public func withUnsafeKeyBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    /// Whether `other` holds the same key bytes (whatever its version).
    public func sameKey(as other: MasterKey) -> Bool { bytes.constantTimeEquals(other.bytes) }

    /// A subkey for one purpose (HKDF-SHA256 with its own label), so no two uses share a key.
    public func derivedKey(label: String) -> SymmetricKey {
        Self.hkdf(bytes, label: label)
    }

    private static func hkdf(_ bytes: SecretBytes, label: String) -> SymmetricKey {
        bytes.withUnsafeBytes { raw in
            HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: raw),
                info: Data("warden.v1.\(label)".utf8),
                outputByteCount: 32
            )
        }
    }
}
