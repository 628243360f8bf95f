import Crypto
import Foundation
import JWTKit
import WardenCrypto
import WardenStore

/// The claims of a Warden access token. `jti` names the server-side session.
struct AccessClaims: JWTPayload {
    var iss: IssuerClaim
    var aud: AudienceClaim
    var sub: SubjectClaim
    var jti: IDClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
        guard iss.value == TokenService.issuer else { throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "wrong issuer") }
        try aud.verifyIntendedAudience(includes: TokenService.audience)
    }
}

/// Signs and checks access tokens: HS256 only (the header's `alg` is checked before anything else).
public struct TokenService: Sendable {
    static let issuer = "warden"
    static let audience = "warden-api"
    public static let algorithm = "HS256"
    let keys: JWTKeyCollection
    public let lifetimeSeconds: Int

    /// `WARDEN_JWT_SECRET` when given (at least 32 characters), else a random key generated on first
    /// boot and stored sealed by the KEK, so every process sharing the store accepts the same tokens.
    public static func make(
        environment: [String: String], vault: Vault, database: Database, lifetimeSeconds: Int = 3600
    ) async throws -> TokenService {
        let secret: [UInt8]
        if let configured = environment["WARDEN_JWT_SECRET"], !configured.isEmpty {
            guard configured.utf8.count >= 32 else {
                throw WardenError(.badRequest, code: "weak_jwt_secret", "WARDEN_JWT_SECRET must be at least 32 characters")
            }
            secret = Array(configured.utf8)
        } else {
            let identity = Vault.serverIdentity(VaultRotation.sessionKeyName)
            let fresh = try vault.seal(SecretBytes(copying: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }), identity: identity)
            let stored = try await ServerSecretRepository(database).findOrInsert(
                name: VaultRotation.sessionKeyName,
                sealed: SealedColumns(fresh))
            let opened = try vault.open(SealedSecret(stored), identity: identity)
            secret = opened.withUnsafeBytes { Array($0) }
        }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: secret)), digestAlgorithm: .sha256)
        return TokenService(keys: keys, lifetimeSeconds: lifetimeSeconds)
    }

    func sign(userID: String, sessionID: String, now: Date) async throws -> String {
        let claims = AccessClaims(
            iss: .init(value: Self.issuer), aud: .init(value: [Self.audience]), sub: .init(value: userID),
            jti: .init(value: sessionID), iat: .init(value: now),
            exp: .init(value: now.addingTimeInterval(TimeInterval(lifetimeSeconds))))
        return try await keys.sign(claims)
    }

    /// Returns (user id, session id) of a valid token, or nil.
    func verify(_ token: String) async -> (userID: String, sessionID: String)? {
        guard Self.headerAlgorithm(of: token) == Self.algorithm,
            let claims = try? await keys.verify(token, as: AccessClaims.self)
        else { return nil }
        return (claims.sub.value, claims.jti.value)
    }

    private static func headerAlgorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", omittingEmptySubsequences: false).first,
            let data = Base64URL.decode(String(header)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["alg"] as? String
    }
}
