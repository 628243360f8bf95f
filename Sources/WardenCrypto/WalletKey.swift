import CSecp256k1

/// A secp256k1 private key, as an Ethereum wallet uses it: its address, and recoverable low-S
/// signatures of 32-byte digests (RFC 6979 nonces, from libsecp256k1). The key stays in locked memory
/// that is zeroed when this value goes away.
public struct WalletKey: Sendable {
    private let secret: SecretBytes
    /// The 20-byte address: the last 20 bytes of Keccak-256 of the uncompressed public key.
    public let address: [UInt8]

    /// One context for the process: libsecp256k1 only reads a context while signing, so sharing it is safe.
    nonisolated(unsafe) private static let context: OpaquePointer = secp256k1_context_create(UInt32(SECP256K1_CONTEXT_NONE))!

    public enum Failure: Error, Equatable { case malformed, invalidKey, signingFailed }

    /// From 64 hex characters, with or without `0x`.
    public init(hex: String) throws(Failure) {
        let text = hex.hasPrefix("0x") || hex.hasPrefix("0X") ? String(hex.dropFirst(2)) : hex
        guard text.utf8.count == 64, var bytes = Hex.decode(text) else { throw .malformed }
        defer { Wipe.array(&bytes) }
        try self.init(bytes: SecretBytes(copying: bytes))
    }

    public init(bytes: SecretBytes) throws(Failure) {
        guard bytes.count == 32 else { throw .malformed }
        let valid = bytes.withUnsafeBytes { raw in
            secp256k1_ec_seckey_verify(Self.context, raw.bindMemory(to: UInt8.self).baseAddress!) == 1
        }
        guard valid else { throw .invalidKey }
        var publicKey = secp256k1_pubkey()
        var serialized = [UInt8](repeating: 0, count: 65)
        var length = 65
        let derived = bytes.withUnsafeBytes { raw in
            secp256k1_ec_pubkey_create(Self.context, &publicKey, raw.bindMemory(to: UInt8.self).baseAddress!) == 1
        }
        guard derived,
            secp256k1_ec_pubkey_serialize(Self.context, &serialized, &length, &publicKey, UInt32(SECP256K1_EC_UNCOMPRESSED)) == 1
        else { throw .invalidKey }
        secret = bytes
        address = Array(Keccak256.hash(serialized[1...]).suffix(20))
    }

    /// The address as Ethereum writes it: `0x` and 40 lower-case hex digits.
    public var addressHex: String { "0x" + Hex.encode(address) }

    /// r ‖ s ‖ v, with v = 27 + the recovery id (the form EIP-712 verifiers expect).
    public func sign(digest: [UInt8]) throws(Failure) -> [UInt8] {
        guard digest.count == 32 else { throw .malformed }
        var signature = secp256k1_ecdsa_recoverable_signature()
        let signed = secret.withUnsafeBytes { raw in
            secp256k1_ecdsa_sign_recoverable(Self.context, &signature, digest, raw.bindMemory(to: UInt8.self).baseAddress!, nil, nil) == 1
        }
        guard signed else { throw .signingFailed }
        var compact = [UInt8](repeating: 0, count: 64)
        var recoveryID: Int32 = 0
        secp256k1_ecdsa_recoverable_signature_serialize_compact(Self.context, &compact, &recoveryID, &signature)
        return compact + [UInt8(27 + recoveryID)]
    }
}
