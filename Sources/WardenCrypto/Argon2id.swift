import CArgon2
import Foundation

/// Argon2id cost parameters. Stored beside the salt so they can be raised later.
public struct Argon2Parameters: Sendable, Equatable, Codable {
    public var memoryKiB: UInt32
    public var iterations: UInt32
    public var parallelism: UInt32

    public init(memoryKiB: UInt32, iterations: UInt32, parallelism: UInt32) {
        self.memoryKiB = memoryKiB
        self.iterations = iterations
        self.parallelism = parallelism
    }

    /// m = 256 MiB, t = 3, p = 1.
    public static let `default` = Argon2Parameters(memoryKiB: 256 * 1024, iterations: 3, parallelism: 1)

    public func validate() throws(CryptoError) {
        guard memoryKiB >= 8 * parallelism, memoryKiB <= 4 * 1024 * 1024 else {
            throw .kdfFailed("Argon2 memory must be between \(8 * parallelism) KiB and 4 GiB")
        }
        guard (1...64).contains(iterations) else { throw .kdfFailed("Argon2 iterations must be between 1 and 64") }
        guard (1...16).contains(parallelism) else { throw .kdfFailed("Argon2 parallelism must be between 1 and 16") }
    }
}

/// Argon2id through libargon2. These calls block their thread for as long as the parameters ask
/// (about a second at the defaults): call them off the event loop.
public enum Argon2id {
    public static let saltLength = 16

    /// Derives a 32-byte key from a passphrase (used to make the KEK).
    public static func deriveKey(
        passphrase: SecretBytes, salt: [UInt8], parameters: Argon2Parameters
    ) throws(CryptoError) -> SecretBytes {
        try parameters.validate()
        do {
            return try SecretBytes(count: 32) { out in
                let status = passphrase.withUnsafeBytes { pwd in
                    argon2id_hash_raw(
                        parameters.iterations, parameters.memoryKiB, parameters.parallelism,
                        pwd.baseAddress, pwd.count, salt, salt.count, out.baseAddress, out.count)
                }
                guard status == ARGON2_OK.rawValue else { throw CryptoError.kdfFailed(errorText(status)) }
            }
        } catch let error as CryptoError {
            throw error
        } catch {
            throw .kdfFailed("\(error)")
        }
    }

    /// A PHC-format hash (`$argon2id$v=19$m=…`) of a password, with a fresh random salt.
    public static func hashPassword(_ password: SecretBytes, parameters: Argon2Parameters) throws(CryptoError) -> String {
        try parameters.validate()
        let salt = randomSalt()
        let encodedLength = argon2_encodedlen(
            parameters.iterations, parameters.memoryKiB, parameters.parallelism,
            UInt32(salt.count), 32, Argon2_id)
        var encoded = [CChar](repeating: 0, count: encodedLength)
        let status = password.withUnsafeBytes { pwd in
            argon2id_hash_encoded(
                parameters.iterations, parameters.memoryKiB, parameters.parallelism,
                pwd.baseAddress, pwd.count, salt, salt.count, 32, &encoded, encodedLength)
        }
        guard status == ARGON2_OK.rawValue else { throw .kdfFailed(errorText(status)) }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Checks a password against a PHC-format hash (libargon2 compares in constant time).
    public static func verifyPassword(_ password: SecretBytes, hash: String) -> Bool {
        password.withUnsafeBytes { pwd in
            argon2id_verify(hash, pwd.baseAddress, pwd.count) == ARGON2_OK.rawValue
        }
    }

    public static func randomSalt() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<saltLength).map { _ in rng.next() }
    }

    private static func errorText(_ status: Int32) -> String {
        String(cString: argon2_error_message(status))
    }
}
