import Crypto
import Foundation

/// A secret as it is stored: the body under its own data key (DEK), and the DEK wrapped by the KEK.
public struct SealedSecret: Sendable, Equatable {
    /// AES-GCM nonce of the body (12 bytes).
    public var nonce: [UInt8]
    /// AES-GCM ciphertext of the body followed by its 16-byte tag.
    public var ciphertext: [UInt8]
    /// The DEK sealed by the KEK's wrapping key: nonce ‖ ciphertext ‖ tag.
    public var wrappedKey: [UInt8]
    /// Which KEK wrapped the DEK.
    public var kekVersion: Int

    public init(nonce: [UInt8], ciphertext: [UInt8], wrappedKey: [UInt8], kekVersion: Int) {
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.wrappedKey = wrappedKey
        self.kekVersion = kekVersion
    }
}

/// Envelope encryption: a random 256-bit DEK per secret, AES-256-GCM for body and DEK,
/// the row identity bound into both as associated data.
public enum Envelope {
    public static func seal(
        _ plaintext: SecretBytes, identity: SecretIdentity, kek: MasterKey
    ) throws(CryptoError) -> SealedSecret {
        let dek = SymmetricKey(size: .bits256)
        let aad = identity.associatedData
        do {
            let body = try plaintext.withUnsafeBytes { try AES.GCM.seal($0, using: dek, authenticating: aad) }
            let wrapped = try dek.withUnsafeBytes {
                try AES.GCM.seal($0, using: kek.wrappingKey, authenticating: aad)
            }
            guard let wrappedBytes = wrapped.combined else { throw CryptoError.sealFailed }
            return SealedSecret(
                nonce: Array(body.nonce),
                ciphertext: Array(body.ciphertext) + Array(body.tag),
                wrappedKey: Array(wrappedBytes),
                kekVersion: kek.version)
        } catch {
            throw .sealFailed
        }
    }

    public static func open(
        _ sealed: SealedSecret, identity: SecretIdentity, kek: MasterKey
    ) throws(CryptoError) -> SecretBytes {
        guard sealed.kekVersion == kek.version else { throw .unknownKEKVersion(sealed.kekVersion) }
        guard sealed.ciphertext.count >= 16, sealed.nonce.count == 12 else { throw .openFailed }
        let aad = identity.associatedData
        do {
            var dekBytes = try AES.GCM.open(AES.GCM.SealedBox(combined: sealed.wrappedKey), using: kek.wrappingKey, authenticating: aad)
            defer { dekBytes.resetBytes(in: 0..<dekBytes.count) }
            let dek = SymmetricKey(data: dekBytes)
            let box = try AES.GCM.SealedBox(combined: sealed.nonce + sealed.ciphertext)
            var plain = try AES.GCM.open(box, using: dek, authenticating: aad)
            defer { plain.resetBytes(in: 0..<plain.count) }
            // Zeroed on release, not locked: callers decode it into ordinary memory straight away.
            return SecretBytes(copying: plain, lock: false)
        } catch {
            throw .openFailed
        }
    }

    /// The same secret with its DEK wrapped by `to` instead of `from`; the body is left as it is.
    public static func rewrap(
        _ sealed: SealedSecret, identity: SecretIdentity, from old: MasterKey, to new: MasterKey
    ) throws(CryptoError) -> SealedSecret {
        guard sealed.kekVersion == old.version else { throw .unknownKEKVersion(sealed.kekVersion) }
        let aad = identity.associatedData
        do {
            var dekBytes = try AES.GCM.open(AES.GCM.SealedBox(combined: sealed.wrappedKey), using: old.wrappingKey, authenticating: aad)
            defer { dekBytes.resetBytes(in: 0..<dekBytes.count) }
            guard let wrapped = try AES.GCM.seal(dekBytes, using: new.wrappingKey, authenticating: aad).combined else {
                throw CryptoError.sealFailed
            }
            var out = sealed
            out.wrappedKey = Array(wrapped)
            out.kekVersion = new.version
            return out
        } catch {
            throw .openFailed
        }
    }
}
