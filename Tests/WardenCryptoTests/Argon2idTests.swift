import Testing
@testable import WardenCrypto

@Suite struct Argon2idTests {
    let small = Argon2Parameters(memoryKiB: 64, iterations: 1, parallelism: 1)

    private func derive(_ passphrase: String, salt: String, _ parameters: Argon2Parameters) throws -> String {
        let key = try Argon2id.deriveKey(
            passphrase: SecretBytes(copying: Array(passphrase.utf8)), salt: Array(salt.utf8), parameters: parameters)
        return key.withUnsafeBytes { Hex.encode($0) }
    }

    /// The reference implementation's Argon2id vector (version 0x13, t=2, m=64 MiB, p=1).
    @Test func matchesTheReferenceVector() throws {
        let parameters = Argon2Parameters(memoryKiB: 1 << 16, iterations: 2, parallelism: 1)
        #expect(
            try derive("password", salt: "somesalt", parameters)
                == "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7")
    }

    @Test func dependsOnPassphraseSaltAndCost() throws {
        let base = try derive("correct horse battery", salt: "0123456789abcdef", small)
        #expect(base == "feeaf97cb10b51bd5e5e44fda0a1eaaba807199f4f87081b8f8ab221c08d6987")
        #expect(try derive("correct horse battery!", salt: "0123456789abcdef", small) != base)
        #expect(try derive("correct horse battery", salt: "0123456789abcdeF", small) != base)
        #expect(
            try derive(
                "correct horse battery", salt: "0123456789abcdef",
                Argon2Parameters(memoryKiB: 64, iterations: 2, parallelism: 1)) != base)
    }

    @Test func refusesParametersOutOfRange() {
        #expect(throws: CryptoError.self) { try derive("x", salt: "0123456789abcdef", .init(memoryKiB: 1, iterations: 1, parallelism: 1)) }
        #expect(throws: CryptoError.self) { try derive("x", salt: "0123456789abcdef", .init(memoryKiB: 64, iterations: 0, parallelism: 1)) }
        #expect(throws: CryptoError.self) { try derive("x", salt: "0123456789abcdef", .init(memoryKiB: 64, iterations: 1, parallelism: 0)) }
    }

    @Test func passwordHashesVerifyOnlyTheirPassword() throws {
        let hash = try Argon2id.hashPassword(SecretBytes(copying: Array("a long password".utf8)), parameters: small)
        #expect(hash.hasPrefix("$argon2id$v=19$m=64,t=1,p=1$"))
        #expect(!hash.contains("a long password"))
        #expect(Argon2id.verifyPassword(SecretBytes(copying: Array("a long password".utf8)), hash: hash))
        #expect(!Argon2id.verifyPassword(SecretBytes(copying: Array("a long passworD".utf8)), hash: hash))
        #expect(!Argon2id.verifyPassword(SecretBytes(copying: Array("a long password".utf8)), hash: "$argon2id$garbage"))
        let again = try Argon2id.hashPassword(SecretBytes(copying: Array("a long password".utf8)), parameters: small)
        #expect(again != hash, "each hash has its own salt")
    }
}
