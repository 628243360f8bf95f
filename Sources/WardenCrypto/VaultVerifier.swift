import Crypto
import Foundation

/// The sentinel stored on first boot: a MAC, under a KEK-derived key, of the vault's random id.
/// A later boot recomputes it to learn whether it holds the same KEK, without storing anything
/// from which the KEK could be recovered.
public enum VaultVerifier {
    public static func make(vaultID: String, kek: MasterKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Data(vaultID.utf8), using: kek.derivedKey(label: "sentinel")))
    }

    public static func matches(_ stored: [UInt8], vaultID: String, kek: MasterKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(stored, authenticating: Data(vaultID.utf8), using: kek.derivedKey(label: "sentinel"))
    }
}
