import NIOPosix
import WardenCrypto

/// Argon2id password hashing off the event loop, with a bound on how many run at once (each one
/// allocates its memory cost).
public final class PasswordHasher: Sendable {
    public let parameters: Argon2Parameters
    private let slots: AsyncSemaphore
    /// A hash of a random password, checked when the email is unknown so both answers take as long.
    private let decoy: String

    /// m = 64 MiB, t = 2, p = 1: about 0.1 s on one core.
    public static let defaultParameters = Argon2Parameters(memoryKiB: 64 * 1024, iterations: 2, parallelism: 1)

    public init(parameters: Argon2Parameters = defaultParameters, concurrency: Int = 2) throws {
        self.parameters = parameters
        self.slots = AsyncSemaphore(concurrency)
        self.decoy = try Argon2id.hashPassword(SecretBytes(copying: Array(Argon2id.randomSalt())), parameters: parameters)
    }

    public func hash(_ password: String) async throws -> String {
        let secret = SecretBytes(copying: Array(password.utf8))
        let parameters = parameters
        return try await slots.run {
            try await NIOThreadPool.singleton.runIfActive { try Argon2id.hashPassword(secret, parameters: parameters) }
        }
    }

    /// Verifies against `hash`, or against the decoy when there is no user, so timing does not tell.
    public func verify(_ password: String, hash: String?) async throws -> Bool {
        let secret = SecretBytes(copying: Array(password.utf8))
        let target = hash ?? decoy
        let ok = try await slots.run {
            try await NIOThreadPool.singleton.runIfActive { Argon2id.verifyPassword(secret, hash: target) }
        }
        return ok && hash != nil
    }
}

/// Limits concurrent work; waiters suspend in FIFO order.
actor AsyncSemaphore {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { available = count }

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if available > 0 { available -= 1 } else { await withCheckedContinuation { waiters.append($0) } }
        defer { if waiters.isEmpty { available += 1 } else { waiters.removeFirst().resume() } }
        return try await body()
    }
}

/// What a password must be.
public enum PasswordPolicy {
    public static func check(_ password: String, email: String) throws(WardenError) {
        guard password.count >= 12 else {
            throw .invalid("new_password", "must be at least 12 characters long")
        }
        guard password.count <= 1024 else { throw .invalid("new_password", "must be at most 1024 characters long") }
        guard password.lowercased() != email.lowercased() else {
            throw .invalid("new_password", "must not be the same as your email address")
        }
    }
}
