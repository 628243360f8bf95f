import WardenCrypto

/// How the operator supplies the KEK at boot.
public enum KeySource: Sendable {
    /// `WARDEN_MASTER_KEY`: the KEK itself.
    case masterKey(MasterKey)
    /// `WARDEN_PASSPHRASE` or a terminal prompt: the KEK is derived with Argon2id.
    case passphrase(SecretBytes)
    /// `--recover`: recovery shares, read once the vault's id (which their checksums bind) is known.
    case recoveryShares(@Sendable (_ vaultID: String) throws -> [RecoveryShare])

    var storedName: String {
        switch self {
        case .masterKey: "master_key"
        case .passphrase: "passphrase"
        case .recoveryShares: "recovery_shares"
        }
    }

    /// Picks the source from the environment; `prompt` is asked only when neither variable is set
    /// (it returns nil when there is no terminal to ask on).
    /// `prefix` reads `WARDEN_NEW_MASTER_KEY` and `WARDEN_NEW_PASSPHRASE` instead (a rotation's new key).
    public static func resolve(
        environment: [String: String], prefix: String = "WARDEN_", prompt: () -> SecretBytes?
    ) throws(VaultError) -> KeySource {
        let masterKey = environment[prefix + "MASTER_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let passphrase = environment[prefix + "PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
        switch (masterKey, passphrase) {
        case (.some, .some): throw .ambiguousKeySource
        case (.some(let text), nil):
            do { return .masterKey(try MasterKey.parse(text)) } catch { throw .malformedMasterKey(error.description) }
        case (nil, .some(let text)): return .passphrase(SecretBytes(copying: Array(text.utf8)))
        case (nil, nil):
            guard let typed = prompt() else { throw .noKey }
            guard typed.count > 0 else { throw .emptyPassphrase }
            return .passphrase(typed)
        }
    }
}
