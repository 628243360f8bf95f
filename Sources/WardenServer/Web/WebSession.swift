import Crypto
import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenCrypto

/// The browser's session: the same access token as the API, carried in an HttpOnly, SameSite=Strict
/// cookie; and the CSRF token every form carries, bound to that session (or, before login, to a
/// pre-session cookie).
struct WebSession: Sendable {
    let accounts: Accounts
    let csrfKey: SymmetricKey
    /// Cookies are always `Secure` (`WARDEN_SECURE_COOKIES=1`, for a TLS-terminating proxy not among
    /// `trusted_proxies`); otherwise they are whenever the request came over TLS.
    let secureCookies: Bool

    static let cookie = "warden_session"
    static let preCookie = "warden_pre"
    /// The login throttle's device token (see `LoginThrottle`), kept across sessions.
    static let deviceCookie = "warden_device"

    init(accounts: Accounts, vault: Vault, secureCookies: Bool) {
        self.accounts = accounts
        csrfKey = vault.kek.derivedKey(label: "web-csrf")
        self.secureCookies = secureCookies
    }

    func principal(_ request: Request) async -> Principal? {
        guard let token = request.cookies[Self.cookie]?.value, !token.isEmpty else { return nil }
        return try? await accounts.authenticate(token: token)
    }

    /// The CSRF token for a session id (or the pre-session value on the login page).
    func csrf(for binding: String) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Data(binding.utf8), using: csrfKey))
    }

    /// Whether the form carries this session's CSRF token (compared in constant time).
    func validCSRF(_ form: WebForm, binding: String) -> Bool {
        guard let sent = form["csrf"] else { return false }
        let expected = Array(csrf(for: binding).utf8)
        return Array(sent.utf8).withUnsafeBytes { a in expected.withUnsafeBytes { b in ConstantTime.equals(a, b) } }
    }

    /// A cookie for the answer to `context`'s request: `Secure` when that request came over TLS (to
    /// Warden, or to a trusted proxy that said so), so a browser never sends it over plain HTTP.
    func setCookie(
        _ name: String, _ value: String, maxAge: Int, _ context: WardenContext, sameSite: String = "Strict", path: String = "/"
    ) -> String {
        "\(name)=\(value); Path=\(path); HttpOnly; SameSite=\(sameSite); Max-Age=\(maxAge)"
            + (secureCookies || context.origin.secure ? "; Secure" : "")
    }
}
