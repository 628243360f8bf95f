import Crypto
import Foundation
import HTTPTypes
import JWTKit
import WardenCrypto
import WardenStore
import WardenVenues

/// Single sign-on with an OpenID Connect provider: the authorization code flow with PKCE, the ID token
/// verified against the provider's published keys with the one configured algorithm, the issuer, the
/// audience, the expiry and the nonce checked, and the person matched to a Warden user by the provider's
/// subject. The provider is reached through `UpstreamCaller` (the server's upstream client).
public actor SingleSignOn {
    public nonisolated let settings: WardenConfig.OIDCSection
    let caller: any UpstreamCaller
    let accounts: Accounts
    let identities: IdentityRepository
    let users: UserRepository
    let secrets: OIDCSecret
    let audit: AuditLog

    /// The provider's endpoints, read from its discovery document (again after `discoveryLifetime`).
    struct Endpoints {
        let authorization: String
        let token: String
        let jwks: String
        let fetchedAt: Int64
    }
    private var endpoints: Endpoints?
    private var keys: JWTKeyCollection?
    private var keyIDs: Set<String> = []
    private var keysFetchedAt: Int64 = 0

    static let discoveryLifetime: Int64 = 3_600_000
    /// A token signed with a key not yet seen makes the keys be read again, at most this often (such a
    /// token comes from the provider's own token endpoint, so only sign-ins can cause it).
    static let keyRefetchInterval: Int64 = 1_000
    /// Clock difference tolerated between Warden and the provider, in seconds.
    static let leeway: TimeInterval = 120

    public init(settings: WardenConfig.OIDCSection, caller: any UpstreamCaller, services: WardenServices) {
        self.settings = settings
        self.caller = caller
        accounts = services.accounts
        identities = IdentityRepository(services.database)
        users = UserRepository(services.database)
        secrets = OIDCSecret(ServerSecrets(database: services.database, vault: services.vault, audit: services.audit))
        audit = services.audit
    }

    /// A sign-in on its way to the provider: the browser keeps `state`, `nonce` and `verifier` (in a cookie)
    /// and is sent to `url`.
    public struct Start: Sendable {
        public let url: String
        public let state: String
        public let nonce: String
        public let verifier: String
    }

    public func start(redirectURI: String) async throws -> Start {
        let endpoints = try await discover()
        let state = Self.random(), nonce = Self.random(), verifier = Self.random()
        let challenge = Base64URL.encode(Data(SHA256.hash(data: Data(verifier.utf8))))
        let query = Self.form([
            ("response_type", "code"), ("client_id", settings.clientID), ("redirect_uri", redirectURI), ("scope", settings.scopes),
            ("state", state), ("nonce", nonce), ("code_challenge", challenge), ("code_challenge_method", "S256"),
        ])
        let separator = endpoints.authorization.contains("?") ? "&" : "?"
        return Start(url: endpoints.authorization + separator + query, state: state, nonce: nonce, verifier: verifier)
    }

    /// Redeems the provider's code, verifies its ID token and opens a session for the person it names.
    public func finish(code: String, redirectURI: String, nonce: String, verifier: String, clientAddress: String) async throws
        -> LoginResult
    {
        let endpoints = try await discover()
        guard let secret = try await secrets.get() else {
            throw Self.refused("single sign-on has no client secret yet: an operator sets it with warden oidc set-secret")
        }
        let credentials = Data("\(Self.formEncoded(settings.clientID)):\(Self.formEncoded(secret))".utf8).base64EncodedString()
        let body = Self.form([
            ("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirectURI), ("code_verifier", verifier),
        ])
        let answer = try await fetch(
            endpoints.token, method: "POST", body: Data(body.utf8),
            headers: [
                .authorization: "Basic \(credentials)", .contentType: "application/x-www-form-urlencoded", .accept: "application/json",
            ])
        guard (200..<300).contains(answer.status),
            let json = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any], let idToken = json["id_token"] as? String
        else { throw Self.refused("the identity provider did not redeem the sign-in (HTTP \(answer.status))") }
        let identity = try await verify(idToken: idToken, nonce: nonce)
        return try await signIn(identity, clientAddress: clientAddress)
    }

    /// Who the provider says signed in.
    public struct Identity: Sendable, Equatable {
        public let subject: String
        /// The email, only when the provider says it verified it.
        public let verifiedEmail: String?
    }

    struct IDToken: JWTPayload, JWTIdentityToken {
        let iss: IssuerClaim
        let sub: SubjectClaim
        let aud: AudienceClaim
        let exp: ExpirationClaim
        let iat: IssuedAtClaim
        let nonce: String?
        let azp: String?
        let email: String?
        let emailVerified: Bool?
        var audience: AudienceClaim { aud }

        enum CodingKeys: String, CodingKey {
            case iss, sub, aud, exp, iat, nonce, azp, email
            case emailVerified = "email_verified"
        }

        func verify(using algorithm: some JWTAlgorithm) throws {
            try exp.verifyNotExpired(currentDate: Date().addingTimeInterval(-SingleSignOn.leeway))
        }
    }

    /// Verifies an ID token: the configured algorithm only, a key the provider publishes, then the claims.
    func verify(idToken: String, nonce: String) async throws -> Identity {
        let header = try Self.header(of: idToken)
        guard header.alg == settings.algorithm else {
            throw Self.refused("the ID token is signed with \(header.alg ?? "no algorithm"), not \(settings.algorithm)")
        }
        let keys = try await keys(for: header.kid)
        let token: IDToken
        do {
            token = try await keys.verify(idToken, as: IDToken.self, expectedAudience: settings.clientID)
        } catch {
            throw Self.refused("the ID token did not verify (\(Self.reason(error)))")
        }
        guard token.iss.value == settings.issuer else { throw Self.refused("the ID token is from another issuer") }
        guard let claimed = token.nonce, ConstantTime.equals(Array(claimed.utf8), Array(nonce.utf8)) else {
            throw Self.refused("the ID token is not for this sign-in (nonce)")
        }
        guard token.iat.value.timeIntervalSinceNow < Self.leeway else { throw Self.refused("the ID token is issued in the future") }
        if token.aud.value.count > 1 || token.azp != nil, token.azp != settings.clientID {
            throw Self.refused("the ID token is not presented by this client (azp)")
        }
        guard !token.sub.value.isEmpty, token.sub.value.utf8.count <= 255 else { throw Self.refused("the ID token has no usable subject") }
        return Identity(subject: token.sub.value, verifiedEmail: token.emailVerified == true ? token.email : nil)
    }

    /// The person's Warden user: bound by subject; else the user with the verified email, unless that
    /// user is bound to another subject; else a new user when `auto_create` says so.
    func signIn(_ identity: Identity, clientAddress: String) async throws -> LoginResult {
        let detail = ["address": clientAddress, "via": "oidc", "issuer": settings.issuer]
        if let userID = try await identities.user(issuer: settings.issuer, subject: identity.subject) {
            return try await open(userID, detail: detail)
        }
        guard let rawEmail = identity.verifiedEmail else {
            throw Self.refused("the identity provider did not give a verified email for this person, and no user is bound to them")
        }
        // Matched as plain ASCII only: case and Unicode folding (a Kelvin sign for a K) must not let a
        // look-alike address the provider vouches for reach another person's account.
        guard rawEmail.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }),
            let email = try? Accounts.normalize(email: rawEmail), email == rawEmail.lowercased()
        else {
            throw Self.refused(
                "the identity provider's email for this person is not a plain ASCII address; an administrator binds such accounts")
        }
        var user = try await users.find(email: email)
        if user == nil {
            guard settings.autoCreate else {
                throw Self.refused("there is no Warden account for \(email); an administrator creates accounts")
            }
            do {
                user = try await accounts.createUser(email: email, password: nil, mustReset: false, admin: false, via: "oidc").user
            } catch {
                // A concurrent first sign-in of the same person made it: go on with that account.
                guard let made = try await users.find(email: email) else { throw error }
                user = made
            }
        }
        guard let user else { throw Self.refused("there is no Warden account for \(email)") }
        if let other = try await identities.subject(issuer: settings.issuer, userID: user.id), other != identity.subject {
            throw Self.refused("the Warden account for \(email) is bound to another identity at this provider")
        }
        let bound = try await accounts.database.transaction { [identities, settings, audit] db in
            let bound = try await identities.bind(
                issuer: settings.issuer, subject: identity.subject, userID: user.id, at: Clock.nowMillis(), on: db)
            if bound {
                try await audit.append(
                    AuditEntry(
                        actor: user.id, owner: user.id, action: "auth.identity_bound", target: user.id,
                        detail: ["issuer": settings.issuer]), on: db)
            }
            return bound
        }
        // Lost a race with a concurrent first sign-in: only the same binding lets this one in.
        if !bound, try await identities.user(issuer: settings.issuer, subject: identity.subject) != user.id {
            throw Self.refused("the Warden account for \(email) is bound to another identity at this provider")
        }
        return try await open(user.id, detail: detail)
    }

    private func open(_ userID: String, detail: [String: String]) async throws -> LoginResult {
        guard let user = try await users.find(id: userID), !user.disabled else { throw Self.refused("this Warden account is disabled") }
        return try await accounts.openSession(for: user, detail: detail)
    }

    // MARK: the provider's documents

    private func discover() async throws -> Endpoints {
        if let endpoints, Clock.nowMillis() - endpoints.fetchedAt < Self.discoveryLifetime { return endpoints }
        let url = settings.issuer + (settings.issuer.hasSuffix("/") ? "" : "/") + ".well-known/openid-configuration"
        let answer = try await fetch(url, method: "GET")
        guard answer.status == 200, let json = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any] else {
            throw Self.refused("the identity provider's discovery document could not be read (HTTP \(answer.status))")
        }
        guard json["issuer"] as? String == settings.issuer else {
            throw Self.refused("the discovery document names another issuer than [oidc] issuer")
        }
        guard let authorization = json["authorization_endpoint"] as? String, let token = json["token_endpoint"] as? String,
            let jwks = json["jwks_uri"] as? String, [authorization, token, jwks].allSatisfy(OIDCURL.acceptable)
        else { throw Self.refused("the discovery document lacks an https authorization, token or jwks endpoint") }
        let found = Endpoints(authorization: authorization, token: token, jwks: jwks, fetchedAt: Clock.nowMillis())
        endpoints = found
        return found
    }

    /// The provider's keys, read again when a token names a key not among them (the provider rotated).
    private func keys(for kid: String?) async throws -> JWTKeyCollection {
        let now = Clock.nowMillis()
        if let keys, kid.map(keyIDs.contains) ?? true || now - keysFetchedAt < Self.keyRefetchInterval { return keys }
        let answer = try await fetch(try await discover().jwks, method: "GET")
        guard answer.status == 200, let json = try? JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
            let published = json["keys"] as? [[String: Any]]
        else { throw Self.refused("the identity provider's keys could not be read (HTTP \(answer.status))") }
        // One key at a time: a key of a kind this server does not use (an encryption key, another curve)
        // is skipped, not a reason to read none.
        let usable = published.filter { ($0["use"] as? String ?? "sig") == "sig" }.compactMap { entry -> JWK? in
            guard let data = try? JSONSerialization.data(withJSONObject: entry) else { return nil }
            return try? JSONDecoder().decode(JWK.self, from: data)
        }
        let collection = JWTKeyCollection()
        var ids: Set<String> = []
        for var key in usable where key.keyType.rawValue == (settings.algorithm == "ES256" ? "EC" : "RSA") {
            guard key.algorithm == nil || key.algorithm?.rawValue == settings.algorithm, let id = key.keyIdentifier?.string else {
                continue
            }
            key.privateExponent = nil; key.prime1 = nil; key.prime2 = nil
            key.algorithm = JWK.Algorithm(rawValue: settings.algorithm)
            if (try? await collection.add(jwk: key)) != nil { ids.insert(id) }
        }
        guard !ids.isEmpty else { throw Self.refused("the identity provider publishes no \(settings.algorithm) key") }
        keys = collection
        keyIDs = ids
        keysFetchedAt = now
        return collection
    }

    private func fetch(_ url: String, method: String, body: Data = Data(), headers: HTTPFields = [:]) async throws -> (
        status: Int, body: Data
    ) {
        guard let (origin, request) = OIDCURL.request(url, method: method, body: body, headers: headers) else {
            throw Self.refused("the identity provider's URL \(url) is not usable")
        }
        do { return try await caller.send(request, origin: origin) } catch {
            throw WardenError(.unavailable, code: "sso_unreachable", "the identity provider could not be reached")
        }
    }

    // MARK: helpers

    static func refused(_ message: String) -> WardenError { WardenError(.forbidden, code: "sso_refused", message) }

    static func reason(_ error: any Error) -> String {
        if let jwt = error as? JWTError { return jwt.reason ?? String(describing: jwt.errorType) }
        return String(describing: error)
    }

    static func header(of token: String) throws -> (alg: String?, kid: String?) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = Base64URL.decode(String(parts[0])),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw refused("the ID token is not a JWT") }
        return (json["alg"] as? String, json["kid"] as? String)
    }

    static func random() -> String { Base64URL.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }) }

    static func form(_ pairs: [(String, String)]) -> String { pairs.map { "\($0.0)=\(formEncoded($0.1))" }.joined(separator: "&") }

    static func formEncoded(_ value: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)...Unicode.Scalar(127)))
        allowed.insert(charactersIn: "-._~")
        return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }
}

/// The client secret, one of the server's sealed secrets.
public struct OIDCSecret: Sendable {
    let secrets: ServerSecrets
    static let name = "oidc.client_secret"

    public init(_ secrets: ServerSecrets) { self.secrets = secrets }

    func get() async throws -> String? { try await secrets.open(Self.name) }

    public func set(_ secret: String) async throws {
        let secret = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !secret.isEmpty, secret.utf8.count <= 2048 else { throw WardenError.invalid("secret", "must be 1 to 2048 bytes") }
        try await secrets.seal(secret, as: Self.name, recording: AuditEntry(actor: nil, owner: nil, action: "oidc.secret_set"))
    }
}

/// The provider's URLs: https, or http on a loopback address only (a provider on the same host).
public enum OIDCURL {
    public static func acceptable(_ url: String) -> Bool {
        guard let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), let host = parts.host, !host.isEmpty,
            parts.user == nil, parts.password == nil, parts.fragment == nil
        else { return false }
        return scheme == "https" || (scheme == "http" && ["127.0.0.1", "::1", "[::1]", "localhost"].contains(host.lowercased()))
    }

    static func request(_ url: String, method: String, body: Data, headers: HTTPFields) -> (String, UpstreamRequest)? {
        guard acceptable(url), let parts = URLComponents(string: url), let scheme = parts.scheme?.lowercased(), let host = parts.host
        else { return nil }
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let origin = "\(scheme)://\(bracketed)" + (parts.port.map { ":\($0)" } ?? "")
        let path = parts.percentEncodedPath.isEmpty ? "/" : parts.percentEncodedPath
        return (origin, UpstreamRequest(method: method, path: path, query: parts.percentEncodedQuery ?? "", headers: headers, body: body))
    }
}
