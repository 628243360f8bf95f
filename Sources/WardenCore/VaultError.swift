/// Why the vault could not be unsealed. Each description is one line a person can act on.
public enum VaultError: Error, Equatable, CustomStringConvertible {
    case noKey
    case ambiguousKeySource
    case malformedMasterKey(String)
    case emptyPassphrase
    case weakPassphrase
    case wrongKey(createdWith: String)
    case kdf(String)
    /// The vault's KEK was rotated to `to` while this process held an older one.
    case rotated(to: Int)
    /// A key that does not open a vault whose key was rotated (to `version`): perhaps a rotated-out one.
    case notCurrentKey(version: Int)
    case rotationRefused(String)
    case recovery(String)

    public var description: String {
        switch self {
        case .noKey:
            "the vault is sealed: set WARDEN_MASTER_KEY (32 bytes as 64 hex or 44 base64 characters; `warden keygen` makes one) or WARDEN_PASSPHRASE, or run in a terminal to be asked for the passphrase"
        case .ambiguousKeySource:
            "both WARDEN_MASTER_KEY and WARDEN_PASSPHRASE are set: set only the one this vault was created with"
        case .malformedMasterKey(let reason): reason
        case .emptyPassphrase: "the passphrase is empty"
        case .weakPassphrase: "a new vault's passphrase must be at least 12 characters"
        case .wrongKey(let createdWith):
            createdWith == "passphrase"
                ? "the key does not unseal this vault: it was created with a passphrase (WARDEN_PASSPHRASE), and this one is not it"
                : "the key does not unseal this vault: it was created with a master key (WARDEN_MASTER_KEY), and this one is not it"
        case .kdf(let reason): "cannot derive the key: \(reason)"
        case .rotated(let version):
            "the vault's key was rotated (now version \(version)) after this process unsealed it: restart it with the new key"
        case .notCurrentKey(let version):
            "the key does not unseal this vault: its key was rotated and is now version \(version); an older key opens nothing"
        case .rotationRefused(let reason): "the key was not rotated: \(reason)"
        case .recovery(let reason): reason
        }
    }
}
