/// Failures of the cryptographic layer. Messages never include key material.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    case invalidKeyLength(Int)
    case malformedMasterKey
    case kdfFailed(String)
    case sealFailed
    case openFailed
    case unknownKEKVersion(Int)

    public var description: String {
        switch self {
        case .invalidKeyLength(let n): "a master key must be 32 bytes, got \(n)"
        case .malformedMasterKey:
            "WARDEN_MASTER_KEY is malformed: it must be 32 bytes written as 64 hex characters or 44 base64 characters (generate one with `warden keygen`)"
        case .kdfFailed(let reason): "key derivation failed: \(reason)"
        case .sealFailed: "encryption failed"
        case .openFailed: "decryption failed: wrong key, or the stored data was altered or moved to another row"
        case .unknownKEKVersion(let v): "secret is wrapped by key version \(v), which this vault does not hold"
        }
    }
}
