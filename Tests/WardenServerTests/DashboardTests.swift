import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Testing
@testable import WardenServer
import WardenCore
import WardenStore

/// The web dashboard in-process: cookie session, CSRF on every form, escaping, headers, write-only secrets.
@Suite struct DashboardTests {
    /// A browser-like session: keeps cookies, reads the CSRF token of the last page.
    final class Browser: @unchecked Sendable {
        let api: APIClient
        var cookies: [String: String] = [:]
        var csrf = ""

        init(_ api: APIClient) { self.api = api }

        @discardableResult
        func go(_ method: HTTPRequest.Method, _ path: String, form: [String: String]? = nil, withCSRF: Bool = true) async throws -> Reply {
            var headers: HTTPFields = [:]
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
            var raw: String?
            if var form {
                if withCSRF { form["csrf"] = csrf }
                raw = form.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(
                    separator: "&")
                headers[.contentType] = "application/x-www-form-urlencoded"
            }
            let reply = try await api.client.execute(
                uri: path, method: method, headers: headers,
                body: raw.map { ByteBuffer(string: $0) }
            ) { response in
                Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
            }
            for value in reply.headers[values: .setCookie] {
                let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
                cookies[String(pair[0])] = pair.count > 1 ? String(pair[1]) : ""
            }
            if let range = reply.text.range(of: #"name="csrf" value="([0-9a-f]+)""#, options: .regularExpression) {
                csrf = String(reply.text[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
            }
            return reply
        }

        @discardableResult
        func logIn(_ email: String, _ password: String = "initial-password-1") async throws -> Reply {
            try await go(.get, "/login")
            return try await go(.post, "/login", form: ["email": email, "password": password])
        }
    }

    /// Each filter of the activity page shows exactly the outcomes under its verdict: calls the venue failed
    /// (an answer cut short, an upstream error) are found under their own filter and under no other.
    @Test func everyOutcomeIsFoundUnderExactlyOneActivityFilter() async throws {
        let h = try await APIHarness()
        let user = try await h.createUser("filters@example.com")
        for outcome in Outcome.allCases {
            try await h.services.audit.append(
                AuditEntry(
                    actor: "key:k", owner: user.id, action: GatewayStep.result.rawValue,
                    target: "openai", outcome: outcome))
        }
        try await h.run { api in
            let browser = Browser(api)
            try await browser.logIn("filters@example.com")
            let everything = try await browser.go(.get, "/activity").text
            for outcome in Outcome.allCases {
                #expect(everything.contains("<tr class=\"\(outcome.rawValue)\">"), "\(outcome) missing from All")
            }
            for verdict in Outcome.Verdict.allCases {
                let page = try await browser.go(.get, "/activity?decision=\(verdict.rawValue)").text
                #expect(page.contains("<option value=\"\(verdict.rawValue)\" selected>\(verdict.label)</option>"))
                for outcome in Outcome.allCases {
                    let shown = page.contains("<tr class=\"\(outcome.rawValue)\">")
                    #expect(shown == (outcome.verdict == verdict), "\(outcome) under \(verdict): shown \(shown)")
                }
            }
            let failed = try await browser.go(.get, "/activity?decision=venue_error").text
            #expect(failed.contains("<tr class=\"upstream_error\">") && failed.contains("<tr class=\"interrupted\">"))
        }
        try await h.close()
    }

    @Test func pagesNeedALoginAndCarryStrictHeaders() async throws {
        let h = try await APIHarness()
        try await h.createUser("web@example.com")
        try await h.run { api in
            let browser = Browser(api)
            #expect(try await browser.go(.get, "/credentials").headers[.location] == "/login")
            let login = try await browser.go(.get, "/login")
            #expect(login.headers[HTTPField.Name("Content-Security-Policy")!]?.contains("default-src 'none'") == true)
            #expect(login.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            let answer = try await browser.logIn("web@example.com")
            #expect(answer.status == .seeOther && answer.headers[.location] == "/activity")
            let cookie = try #require(answer.headers[values: .setCookie].first { $0.hasPrefix("warden_session=") })
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            #expect(try await browser.go(.get, "/activity").status == .ok)
        }
        try await h.close()
    }

    @Test func aFormWithoutItsTokenChangesNothing() async throws {
        let h = try await APIHarness()
        try await h.createUser("csrf@example.com")
        try await h.run { api in
            let browser = Browser(api)
            try await browser.logIn("csrf@example.com")
            try await browser.go(.get, "/settings")
            let forged = try await browser.go(
                .post, "/settings",
                form: [
                    "max_leg_usd": "1", "daily_cap_usd": "2", "min_net_edge_cents": "1",
                    "starting_balance_usd": "1", "fee_bps": "1", "slippage_bps": "1",
                ], withCSRF: false)
            #expect(forged.status == .forbidden)
            browser.csrf = String(repeating: "0", count: 64)
            let wrong = try await browser.go(.post, "/credentials", form: ["venue": "openai", "label": "x", "api_key": "sk-x"])
            #expect(wrong.status == .forbidden)
            #expect(
                try await h.services.profiles.get(userID: try #require(try await h.services.accounts.listUsers().first).id).maxLegUSD
                    == USD(dollars: 100))
            #expect(try await browser.go(.get, "/credentials").text.contains("No credentials yet."))
        }
        try await h.close()
    }

    @Test func labelsAreEscapedAndSecretsAreWriteOnly() async throws {
        let h = try await APIHarness()
        try await h.createUser("xss@example.com")
        try await h.run { api in
            let browser = Browser(api)
            try await browser.logIn("xss@example.com")
            try await browser.go(.get, "/credentials/new?venue=binance")
            let saved = try await browser.go(
                .post, "/credentials",
                form: [
                    "venue": "binance", "label": "<script>alert(1)</script>", "api_key": "AK-PLANTED-0001", "api_secret": "SK-PLANTED-0002",
                ])
            #expect(saved.status == .seeOther)
            var pages = ""
            for path in ["/credentials", "/keys", "/activity", "/settings"] { pages += try await browser.go(.get, path).text }
            #expect(!pages.contains("<script>alert(1)</script>"))
            #expect(pages.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(!pages.contains("SK-PLANTED-0002") && !pages.contains("AK-PLANTED-0001"))
        }
        try await h.close()
    }

    /// A stranger on the owner's own address (an agent on the same host) cannot keep the owner out of
    /// the dashboard: the browser's device cookie from an earlier login gets past the throttle.
    @Test func aBrowserThatLoggedInBeforeGetsPastAStrangersFailures() async throws {
        let h = try await APIHarness()
        try await h.createUser("owner@example.com")
        try await h.run { api in
            let owner = Browser(api)
            #expect(try await owner.logIn("owner@example.com").status == .seeOther)
            #expect(owner.cookies["warden_device"]?.count == 64)
            try await owner.go(.get, "/activity")
            #expect(try await owner.go(.post, "/logout", form: [:]).headers[.location] == "/login")
            for _ in 0..<12 {
                _ = try await api.call(.post, "/api/v1/auth/login", json: ["email": "owner@example.com", "password": "wrong-password-123"])
            }
            let stranger = Browser(api)
            let refused = try await stranger.logIn("owner@example.com")
            #expect(refused.status == .unauthorized && refused.text.contains("too many failed logins"), "\(refused.status)")
            let again = try await owner.logIn("owner@example.com")
            #expect(again.status == .seeOther && again.headers[.location] == "/activity", "\(again.status) \(again.text.prefix(300))")
        }
        try await h.close()
    }

    /// Each user administration done in the dashboard names the administrator who did it, as the
    /// management API's rows name their caller.
    @Test func adminActionsNameTheAdministrator() async throws {
        let h = try await APIHarness()
        let admin = try await h.createUser("boss@example.com", admin: true)
        let staff = try await h.createUser("staff@example.com")
        try await h.run { api in
            let browser = Browser(api)
            try await browser.logIn("boss@example.com")
            try await browser.go(.get, "/admin/users")
            #expect(try await browser.go(.post, "/admin/users", form: ["email": "new@example.com"]).status == .ok)
            for action in ["disable", "enable", "reset"] {
                #expect(try await browser.go(.post, "/admin/users/\(staff.id)/\(action)", form: [:]).status == .ok, "\(action)")
            }
            let token = try await api.login("boss@example.com")
            for action in ["user.create", "user.disable", "user.enable", "user.reset_password"] {
                let rows = try #require(
                    try await api.call(.get, "/api/v1/audit?action=\(action)", token: token).json["entries"] as? [[String: Any]])
                // Newest first: the dashboard's row (the harness made the first two users as the CLI does).
                #expect(rows.first?["actor_id"] as? String == admin.id, "\(action) does not name the administrator: \(rows)")
                #expect((rows.first?["detail"] as? String)?.contains("dashboard") == true, "\(action): \(rows)")
            }
        }
        try await h.close()
    }

    @Test func theFirstLoginIsHeldAtThePasswordChange() async throws {
        let h = try await APIHarness()
        try await h.createUser("first@example.com", mustReset: true)
        try await h.run { api in
            let browser = Browser(api)
            #expect(try await browser.logIn("first@example.com").headers[.location] == "/password")
            #expect(try await browser.go(.get, "/keys").headers[.location] == "/password")
            try await browser.go(.get, "/password")
            let short = try await browser.go(.post, "/password", form: ["current_password": "initial-password-1", "new_password": "short"])
            #expect(short.status == .badRequest && short.text.contains("new_password"))
            let changed = try await browser.go(
                .post, "/password",
                form: [
                    "current_password": "initial-password-1",
                    "new_password": "a-brand-new-password",
                ])
            #expect(changed.headers[.location] == "/activity")
            #expect(try await browser.go(.get, "/keys").status == .ok)
        }
        try await h.close()
    }
}
