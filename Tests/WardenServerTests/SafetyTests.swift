import Crypto
import Foundation
import HTTPTypes
import Logging
import Synchronization
import Testing
@testable import WardenCore
import WardenStore
import WardenVenues
@testable import WardenServer

/// The kill switch, honey tokens and the alarms' outbox, in process: who may freeze and lift, what a frozen
/// key and a decoy get at admission, and how alarms are raised from the log and delivered.
@Suite struct SafetyTests {
    static let config = """
        [services.github]
        base_url = "https://api.github.com"

        [notify.hook]
        kind = "webhook"
        url = "http://127.0.0.1:9/alarms"
        min_severity = "info"

        [notify.chat]
        kind = "slack"
        events = ["honey_token_used", "kill_switch"]
        """

    static func admit(_ h: APIHarness, _ key: String) async -> GatewayRefusal? {
        do {
            _ = try await KeyFamilyTests.admission(h, key)
            return nil
        } catch {
            return error as? GatewayRefusal
        }
    }

    @Test func aFreezeStopsEveryKeyInItsScopeAndOnlyAPersonWithTheRightToLiftsIt() async throws {
        let h = try await APIHarness(config: Self.config)
        try await h.createUser("admin@example.com", admin: true)
        try await h.createUser("bob@example.com")
        try await h.createUser("carol@example.com")
        try await h.run { api in
            let admin = try await api.login("admin@example.com")
            let bob = try await KeyFamilyTests.family(api, "bob@example.com")
            let carol = try await KeyFamilyTests.family(api, "carol@example.com")
            #expect(await Self.admit(h, bob.rootKey) == nil)

            // A user may not freeze everyone, nor another user.
            #expect(try await api.call(.post, "/api/v1/freeze", token: bob.token, json: ["all": true]).code == "not_admin")
            #expect(
                try await api.call(.post, "/api/v1/freeze", token: bob.token, json: ["email": "carol@example.com"]).code == "not_admin")
            // An agent key cannot reach the switch at all.
            let byKey = try await api.call(.post, "/api/v1/unfreeze", json: [String: String](), headers: [KeyFamilyTests.xKey: bob.rootKey])
            #expect(byKey.status == .unauthorized)

            let frozen = try await api.call(.post, "/api/v1/freeze", token: admin, json: ["email": "bob@example.com", "reason": "drill"])
            #expect(frozen.status == .created, "\(frozen.text)")
            let refusal = await Self.admit(h, bob.rootKey)
            #expect(refusal?.status == .forbidden && refusal?.reason.contains("frozen") == true)
            #expect(await Self.admit(h, carol.rootKey) == nil, "another user's keys stay live")
            // A frozen key cannot mint, but may give itself up.
            #expect(try await KeyFamilyTests.mint(api, from: bob.rootKey).code == "frozen")

            // Bob cannot lift the administrator's freeze; the administrator can.
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: bob.token, json: [String: String]()).code == "frozen_by_admin")
            #expect(await Self.admit(h, bob.rootKey)?.status == .forbidden)
            #expect(
                try await api.call(.post, "/api/v1/unfreeze", token: admin, json: ["email": "bob@example.com"]).json["changed"] as? Bool
                    == true)
            #expect(await Self.admit(h, bob.rootKey) == nil)

            // Everyone's keys at once; a user freezing their own keys may lift that freeze themselves.
            #expect(try await api.call(.post, "/api/v1/freeze", token: admin, json: ["all": true]).status == .created)
            #expect(await Self.admit(h, carol.rootKey)?.status == .forbidden)
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: admin, json: ["all": true]).status == .ok)
            #expect(try await api.call(.post, "/api/v1/freeze", token: bob.token, json: [String: String]()).status == .created)
            #expect(await Self.admit(h, bob.rootKey)?.status == .forbidden)
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: bob.token, json: [String: String]()).status == .ok)
            #expect(await Self.admit(h, bob.rootKey) == nil)
            // Frozen first by Bob, then by the administrator: the freeze becomes the administrator's, and Bob cannot lift it.
            #expect(try await api.call(.post, "/api/v1/freeze", token: bob.token, json: [String: String]()).status == .created)
            let taken = try await api.call(.post, "/api/v1/freeze", token: admin, json: ["email": "bob@example.com", "reason": "stolen"])
            #expect(taken.status == .created && taken.json["changed"] as? Bool == true, "\(taken.text)")
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: bob.token, json: [String: String]()).code == "frozen_by_admin")
            #expect(await Self.admit(h, bob.rootKey)?.byKillSwitch == true)
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: admin, json: ["email": "bob@example.com"]).status == .ok)
            #expect(
                try await api.call(.delete, "/api/v1/agent-keys/self", headers: [KeyFamilyTests.xKey: bob.rootKey]).status == .noContent)
        }
        try await h.close()
    }

    @Test func aHoneyTokenIsRefusedLikeAnUnknownKeyAndFreezesItsOwner() async throws {
        let h = try await APIHarness(config: Self.config)
        try await h.createUser("dave@example.com")
        try await h.run { api in
            let dave = try await KeyFamilyTests.family(api, "dave@example.com")
            for kind in ["agent_key", "openai", "anthropic", "binance"] {
                let made = try await api.call(
                    .post, "/api/v1/honey-tokens", token: dave.token, json: ["label": "decoy \(kind)", "kind": kind])
                #expect(made.status == .created, "\(made.text)")
                let token = try #require(made.json["token"] as? String)
                let unknown = await Self.admit(h, kind == "agent_key" ? "wdn_made_up_\(kind)" : "made-up-\(kind)")
                let honey = try #require(await Self.admit(h, token))
                // Exactly what an unknown key gets: nothing tells the caller it was a decoy.
                #expect(honey.status == unknown?.status && honey.reason == unknown?.reason && honey.kind == unknown?.kind)
                #expect(honey.alarm == .honeyTokenUsed && honey.honeyToken?.id == made.json["id"] as? String)
                // The owner's real keys are frozen by it.
                #expect(await Self.admit(h, dave.rootKey)?.status == .forbidden)
                let freezes = try await h.services.killSwitch.list()
                #expect(freezes.count == 1 && freezes[0].frozenBy.hasPrefix("honey:"))
                // The owner, a person, lifts it.
                #expect(try await api.call(.post, "/api/v1/unfreeze", token: dave.token, json: [String: String]()).status == .ok)
                #expect(await Self.admit(h, dave.rootKey) == nil)
                // Used twice, it is caught twice (never remembered as merely unknown).
                #expect(await Self.admit(h, token)?.alarm == .honeyTokenUsed)
                #expect(try await api.call(.post, "/api/v1/unfreeze", token: dave.token, json: [String: String]()).status == .ok)
            }
            // A wdn_ decoy where the management API takes a key (minting, as `warden run` does): a dead key's
            // answer, and caught all the same.
            let decoy = try #require(
                try await api.call(.post, "/api/v1/honey-tokens", token: dave.token, json: ["label": "run", "kind": "agent_key"])
                    .json["token"] as? String)
            let minted = try await KeyFamilyTests.mint(api, from: decoy)
            let dead = try await KeyFamilyTests.mint(api, from: "wdn_made_up_key")
            #expect(minted.status == .unauthorized && minted.text == dead.text, "\(minted.text)")
            #expect(await Self.admit(h, dave.rootKey)?.byKillSwitch == true)
            let rows = try await api.call(.get, "/api/v1/audit?action=honey_token.used", token: dave.token).text
            #expect(rows.contains("honey_token_used") && !rows.contains(decoy))
            #expect(try await api.call(.post, "/api/v1/unfreeze", token: dave.token, json: [String: String]()).status == .ok)
            let listed = try await api.call(.get, "/api/v1/honey-tokens", token: dave.token)
            #expect((listed.json["honey_tokens"] as? [[String: Any]])?.count == 5)
            #expect(!listed.text.contains("\"token\""), "a decoy is shown once, at creation")
        }
        try await h.close()
    }

    /// Records what the alarms send and answers with `status`.
    final class Receiver: UpstreamCaller {
        let sent = Mutex<[(origin: String, request: UpstreamRequest)]>([])
        let status = Mutex(200)

        func send(_ request: UpstreamRequest, origin: String) async throws -> (status: Int, body: Data) {
            sent.withLock { $0.append((origin, request)) }
            return (status.withLock { $0 }, Data("{}".utf8))
        }
    }

    @Test func alarmsAreRaisedFromTheLogRoutedPerChannelAndDeliveredOnceWithRetries() async throws {
        let h = try await APIHarness(config: Self.config)
        let alarms = h.services.alarms
        let log = Logger(label: "test")
        let receiver = Receiver()
        try await alarms.setSecret(channel: "hook", secret: "whsec-0123456789abcdef", actor: nil)
        try await alarms.setSecret(channel: "chat", secret: "http://127.0.0.1:9/services/T0/B0/SECRETPATH", actor: nil)
        await #expect(throws: WardenError.self) {
            try await alarms.setSecret(channel: "chat", secret: "http://hooks.example.com/x", actor: nil)
        }
        await #expect(throws: WardenError.self) { try await alarms.setSecret(channel: "nope", secret: "0123456789abcdef0", actor: nil) }

        try await h.services.killSwitch.freeze(.all, reason: "drill", by: .operatorCLI)
        let budget = AuditEntry(actor: "key:k1", owner: nil, action: "gateway.refuse", detail: ["alarm": "budget_reached"])
        try await h.services.audit.append(budget)  // the same key's budget twice in a day: one alarm
        try await h.services.audit.append(budget)
        #expect(try await alarms.raisePending().raised == 2)
        #expect(try await alarms.raisePending().raised == 0, "the cursor moved past what was raised")

        receiver.status.withLock { $0 = 500 }
        #expect(await alarms.deliverDue(caller: receiver, logger: log) == 0)
        var recent = try await alarms.repository.recent(limit: 10)
        let freeze = try #require(recent.first { $0.0.event == "kill_switch" })
        #expect(freeze.1.map(\.channel) == ["chat", "hook"])
        #expect(freeze.1.allSatisfy { $0.state == .pending && $0.attempts == 1 && $0.lastError == "the channel answered HTTP 500" })
        let budgetAlarm = try #require(recent.first { $0.0.event == "budget_reached" })
        #expect(budgetAlarm.1.map(\.channel) == ["hook"], "the chat channel takes only the events it lists")
        // Not due again before its backoff.
        #expect(await alarms.deliverDue(caller: receiver, logger: log) == 0)
        #expect(receiver.sent.withLock { $0.count } == 3)

        receiver.status.withLock { $0 = 200 }
        let later = Clock.nowMillis() + Alarms.retryDelay(afterAttempts: 1) + 1
        #expect(await alarms.deliverDue(caller: receiver, logger: log, now: later) == 3)
        #expect(await alarms.deliverDue(caller: receiver, logger: log, now: later + 3_600_000) == 0, "delivered once")
        recent = try await alarms.repository.recent(limit: 10)
        #expect(recent.allSatisfy { $0.1.allSatisfy { $0.state == .delivered && $0.attempts == 2 } })

        let sent = receiver.sent.withLock { Array($0.suffix(3)) }
        let hook = try #require(
            sent.first { $0.request.headers[HTTPField.Name("X-Warden-Signature")!] != nil && $0.request.body.count > 0 })
        let timestamp = try #require(hook.request.headers[HTTPField.Name("X-Warden-Timestamp")!])
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(timestamp).".utf8) + hook.request.body, using: SymmetricKey(data: Data("whsec-0123456789abcdef".utf8)))
        #expect(hook.request.headers[HTTPField.Name("X-Warden-Signature")!] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        #expect(hook.origin == "http://127.0.0.1:9" && hook.request.path == "/alarms")
        let slack = try #require(sent.first { $0.request.path == "/services/T0/B0/SECRETPATH" })
        let body = try #require(try JSONSerialization.jsonObject(with: slack.request.body) as? [String: Any])
        let text = body["text"] as? String
        #expect(text?.hasPrefix("[Warden critical] Kill switch on") == true && body["mrkdwn"] as? Bool == false, "\(body)")
        for (_, request) in receiver.sent.withLock({ $0 }) {
            let body = String(decoding: request.body, as: UTF8.self)
            #expect(!body.contains("whsec-") && !body.contains("SECRETPATH"), "a channel's secret in a message: \(body)")
        }
        try await h.close()
    }

    @Test func aDeliveryIsLeasedByOneServerAndAChannelWithoutItsSecretWaits() async throws {
        let h = try await APIHarness(config: Self.config)
        let alarms = h.services.alarms
        let other = Alarms(database: h.env.database, vault: h.services.vault, audit: h.services.audit, channels: alarms.channels)
        try await h.services.killSwitch.freeze(.all, reason: "drill", by: .operatorCLI)
        #expect(try await alarms.raisePending().raised == 1)
        #expect(try await other.raisePending().raised == 0, "a second server does not raise it again")
        let now = Clock.nowMillis()
        let id = try #require(try await alarms.repository.recent(limit: 1).first?.0.id)
        #expect(try await alarms.repository.lease(alarmID: id, channel: "hook", now: now, until: now + 60_000))
        #expect(try await !other.repository.lease(alarmID: id, channel: "hook", now: now, until: now + 60_000))

        // No secret set yet: kept pending, with an error that says what to do.
        let receiver = Receiver()
        _ = await alarms.deliverDue(caller: receiver, logger: Logger(label: "test"), now: now + 61_000)
        let chat = try #require(try await alarms.repository.recent(limit: 1).first?.1.first { $0.channel == "chat" })
        #expect(chat.state == .pending && chat.lastError == "no webhook URL set: warden notify set chat")
        #expect(receiver.sent.withLock { $0.isEmpty })
        try await h.close()
    }

    @Test func notifyChannelsAreReadStrictly() throws {
        let good = try ConfigLoader.parse(
            """
            [notify.ops]
            kind = "telegram"
            chat_id = -100123
            base_url = "http://127.0.0.1:8081"
            min_severity = "critical"
            """)
        #expect(good.notify["ops"]?.chatID == "-100123" && good.notify["ops"]?.minSeverity == .critical)
        #expect(good.notify["ops"]?.routes(.honeyTokenUsed) == true && good.notify["ops"]?.routes(.budgetReached) == false)
        let bad: [(String, String)] = [
            ("[notify.a]\nkind = \"pager\"", "notify.a.kind"),
            ("[notify.a]\nkind = \"webhook\"", "notify.a.url"),
            ("[notify.a]\nkind = \"webhook\"\nurl = \"http://hooks.example.com/x\"", "notify.a.url"),
            ("[notify.a]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"", "notify.a.url"),
            ("[notify.a]\nkind = \"slack\"\nevents = [\"honey\"]", "notify.a.events[0]"),
            ("[notify.a]\nkind = \"telegram\"", "notify.a.chat_id"),
            ("[notify.A]\nkind = \"slack\"", "notify.A"),
            ("[notify.a]\nkind = \"slack\"\nwebhook = \"x\"", "notify.a.webhook"),
        ]
        for (text, key) in bad {
            #expect(throws: ConfigError.self, "\(text)") { try ConfigLoader.parse(text) }
            do { _ = try ConfigLoader.parse(text) } catch { #expect(error.description.contains(key), "\(error.description)") }
        }
    }

    @Test func theDashboardFreezesOnesOwnKeysAndAdministratorsEveryKeyAndShowsTheAlarms() async throws {
        let h = try await APIHarness(config: Self.config)
        try await h.createUser("root@example.com", admin: true)
        try await h.createUser("erin@example.com")
        try await h.run { api in
            let erin = try await KeyFamilyTests.family(api, "erin@example.com")
            let browser = DashboardTests.Browser(api)
            try await browser.logIn("erin@example.com")
            #expect(try await browser.go(.get, "/keys").text.contains("Freeze all my keys"))
            // The form's token is required, as for every dashboard form.
            #expect(try await browser.go(.post, "/keys/freeze", form: [:], withCSRF: false).status == .forbidden)
            #expect(await Self.admit(h, erin.rootKey) == nil)
            let frozen = try await browser.go(.post, "/keys/freeze", form: ["reason": "lost laptop"])
            #expect(frozen.text.contains("Your agent keys are frozen.") && frozen.text.contains("lost laptop"), "\(frozen.text)")
            #expect(await Self.admit(h, erin.rootKey)?.status == .forbidden)
            #expect(try await browser.go(.post, "/keys/unfreeze", form: [:]).text.contains("Your agent keys are live again."))
            #expect(await Self.admit(h, erin.rootKey) == nil)
            // A user cannot reach the administrators' switch.
            #expect(try await browser.go(.post, "/admin/freeze-all", form: [:]).status == .forbidden)
            #expect(await Self.admit(h, erin.rootKey) == nil)
            let decoy = try await browser.go(.post, "/keys/honey", form: ["label": "bait", "kind": "openai"])
            #expect(decoy.text.contains("sk-proj-"), "\(decoy.text)")

            let admin = DashboardTests.Browser(api)
            try await admin.logIn("root@example.com")
            try await admin.go(.get, "/admin/alarms")
            #expect(try await admin.go(.post, "/admin/freeze-all", form: [:]).text.contains("Every agent key is frozen."))
            #expect(await Self.admit(h, erin.rootKey)?.status == .forbidden)
            #expect(try await h.services.alarms.raisePending().raised == 3)  // erin's freeze, its lifting, everyone's freeze
            let page = try await admin.go(.get, "/admin/alarms")
            #expect(page.text.contains("Kill switch on") && page.text.contains("Kill switch lifted") && page.text.contains("hook: pending"))
            #expect(try await admin.go(.post, "/admin/unfreeze-all", form: [:]).status == .ok)
            #expect(await Self.admit(h, erin.rootKey) == nil)
        }
        try await h.close()
    }

    @Test func aBreakerCountsOverItsWindowAndFreezesTheFamilyThatCrossesIt() async throws {
        let h = try await APIHarness(config: Self.config)
        try await h.createUser("fay@example.com")
        try await h.run { api in
            let fay = try await KeyFamilyTests.family(api, "fay@example.com")
            let child = try await KeyFamilyTests.child(api, of: fay.rootKey)
            let set = try await api.call(
                .put, "/api/v1/profile", token: fay.token, json: ["breakers": ["refusals_per_minute": 3, "llm_usd_per_hour": 0.5]])
            #expect(set.status == .ok && (set.json["breakers"] as? [String: Any])?["refusals_per_minute"] as? Int == 3, "\(set.text)")
            let bad = try await api.call(.put, "/api/v1/profile", token: fay.token, json: ["breakers": ["orders_per_minute": -1]])
            #expect(bad.field == "breakers.orders_per_minute")

            let breakers = h.env.gateway.breakers
            // Twelve slices of five seconds: what is older than the window no longer counts.
            let minute: UInt64 = 60_000_000_000
            #expect(breakers.add(.orders, root: "r", amount: 2, now: 10 * minute) == 2)
            #expect(breakers.add(.orders, root: "r", amount: 1, now: 10 * minute + minute / 2) == 3)
            #expect(breakers.add(.orders, root: "r", amount: 1, now: 11 * minute + minute / 12) == 2, "the first slice left the window")
            #expect(breakers.add(.orders, root: "other", amount: 1, now: 11 * minute) == 1, "families count apart")

            let record = try #require(
                try await h.services.agentKeys.list(try await h.services.accounts.authenticate(token: fay.token)).first {
                    $0.parentID != nil
                })
            let limits = await h.env.gateway.breakerLimits(record)
            let before = try await KeyFamilyTests.admission(h, child.key)  // admitted before the trip
            for _ in 0..<3 { #expect(await breakers.count(.refusals, key: record, revision: nil, amount: 1, limits: limits) == nil) }
            let tripped = try #require(await breakers.count(.refusals, key: record, revision: nil, amount: 1, limits: limits))
            #expect(tripped.status == .forbidden && tripped.reason.contains("more than 3 refused calls in a minute"))
            // A call admitted before the freeze took hold is refused by the breaker all the same.
            #expect(
                await breakers.count(
                    .orders, key: record, revision: before.revision, amount: 1, limits: BreakerLimits(ordersPerMinute: 100)) != nil)
            // The whole family stops: the child that tripped it and the key it was minted from.
            #expect(await Self.admit(h, child.key)?.byKillSwitch == true)
            #expect(await Self.admit(h, fay.rootKey)?.byKillSwitch == true)
            let freezes = try await h.services.killSwitch.list()
            #expect(freezes.map(\.scope) == ["family:\(fay.rootID)"] && freezes[0].frozenBy == "breaker:refusals_per_minute")
            // Its owner lifts it; the counts start again.
            let lifted = try await api.call(.post, "/api/v1/unfreeze", token: fay.token, json: ["family": child.id])
            #expect(lifted.json["changed"] as? Bool == true, "\(lifted.text)")
            let after = try await KeyFamilyTests.admission(h, child.key)
            // Admitted after the lifting: counted afresh.
            #expect(
                await breakers.count(.orders, key: record, revision: after.revision, amount: 1, limits: BreakerLimits(ordersPerMinute: 100))
                    == nil)
            // LLM spend counts real costs, in micro-dollars.
            await h.env.gateway.countSpend(USD(limit: Decimal(string: "0.3")!)!, admission: after)
            #expect(await Self.admit(h, child.key) == nil)
            await h.env.gateway.countSpend(USD(limit: Decimal(string: "0.3")!)!, admission: after)
            #expect(await Self.admit(h, child.key)?.byKillSwitch == true)
            #expect(try await h.services.alarms.raisePending().raised == 3)  // two trips and the lifting
            let events = try await h.services.alarms.repository.recent(limit: 5).map(\.0.event)
            #expect(events.filter { $0 == "breaker_tripped" }.count == 2 && events.contains("kill_switch_lifted"))
        }
        try await h.close()
    }

    @Test func anEmailAlarmCannotInjectHeadersAndIsDotStuffed() throws {
        let message = AlarmMessage(
            id: "a1", event: "honey_token_used", severity: "critical",
            summary: "Honey token used · GET /x\r\nBcc: thief@example.com", at: 0,
            detail: ["path": "/x\r\n.\r\nMAIL FROM:<evil@example.com>", "reason": "é"], link: nil)
        let mail = message.mail(from: "warden@example.com", to: ["ops@example.com"])
        let rendered = mail.rendered(date: Date(timeIntervalSince1970: 0))
        let lines = rendered.components(separatedBy: "\r\n")
        // No line of the message begins a header or a command the agent wrote: CR and LF became "?".
        #expect(!lines.contains { $0.hasPrefix("Bcc:") || $0.hasPrefix("MAIL FROM") || $0 == "." })
        #expect(
            lines.contains(
                "Subject: [Warden critical] Honey token used · GET /x??Bcc: thief@example.com".replacingOccurrences(of: "·", with: "?")))
        #expect(rendered.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(
            MailMessage(from: "a@b.c", to: ["d@e.f"], subject: "s", body: ".hidden\r\nok", messageID: "m").rendered().contains(
                "\r\n..hidden\r\n"))
        #expect(!MailMessage.isAddress("ops@example.com>\r\nRCPT TO:<x@y.z") && MailMessage.isAddress("ops@example.com"))

        let parsed = try ConfigLoader.parse(
            """
            [notify.mail]
            kind = "email"
            smtp_host = "smtp.example.com"
            username = "alerts@example.com"
            from = "warden@example.com"
            to = ["ops@example.com"]
            min_severity = "critical"
            """)
        #expect(parsed.notify["mail"]?.smtp == SMTPServer(host: "smtp.example.com", port: 587, username: "alerts@example.com"))
        #expect(parsed.notify["mail"]?.minSeverity == .critical)
        for (text, key) in [
            ("[notify.m]\nkind = \"email\"\nsmtp_host = \"h\"\nusername = \"u\"\nfrom = \"a@b.c\"", "notify.m.to"),
            ("[notify.m]\nkind = \"email\"\nsmtp_host = \"h\"\nusername = \"u\"\nfrom = \"x\"\nto = [\"a@b.c\"]", "notify.m.from"),
            ("[notify.m]\nkind = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]", "notify.m.username"),
            (
                "[notify.m]\nkind = \"email\"\nsmtp_host = \"h\"\nusername = \"u\"\nfrom = \"a@b.c\"\nto = [\"a@b.c\"]\nurl = \"x\"",
                "notify.m.url"
            ),
        ] {
            do {
                _ = try ConfigLoader.parse(text)
                Issue.record("accepted: \(text)")
            } catch { #expect(error.description.contains(key), "\(error.description)") }
        }
    }

    /// Calls of a burst read the clock before they take the breaker's lock: one that read it just before
    /// another call tripped the family is still refused, not taken for a call a window later.
    @Test func aCallThatReadTheClockBeforeTheTripIsRefused() async throws {
        let h = try await APIHarness(config: Self.config)
        let breakers = h.env.gateway.breakers
        let now: UInt64 = 1_000 * 60_000_000_000
        for _ in 0..<3 {
            #expect(breakers.decide(.orders, root: "burst", owner: "alice", revision: nil, amount: 1, limit: 3, now: now) == .pass)
        }
        #expect(breakers.decide(.orders, root: "burst", owner: "alice", revision: nil, amount: 1, limit: 3, now: now) == .trip)
        // While the freeze is being written (no revision yet), calls that read the clock a little earlier or later.
        for earlier in [1, 1_000, 5_000_000] as [UInt64] {
            #expect(
                breakers.decide(.orders, root: "burst", owner: "alice", revision: nil, amount: 1, limit: 3, now: now - earlier) == .refuse)
        }
        #expect(breakers.decide(.orders, root: "burst", owner: "alice", revision: nil, amount: 1, limit: 3, now: now + 1_000) == .refuse)
        // A window later, without a freeze on record, the family counts again.
        #expect(
            breakers.decide(.orders, root: "burst", owner: "alice", revision: nil, amount: 1, limit: 3, now: now + 61_000_000_000) == .pass)
        try await h.close()
    }

    @Test func aBreakerTableFullOfOneOwnersFamiliesNeverDropsAnothersCounts() async throws {
        let h = try await APIHarness(config: Self.config)
        let breakers = h.env.gateway.breakers
        let now: UInt64 = 1_000 * 60_000_000_000
        // Alice's family has counted 4 of her 5 orders a minute.
        for _ in 0..<4 {
            #expect(breakers.decide(.orders, root: "alice-family", owner: "alice", revision: 1, amount: 1, limit: 5, now: now) == .pass)
        }
        // Mallory fills her share of the table with families of her own: her next new family is refused, not left uncounted.
        for i in 0..<Breakers.perOwner {
            #expect(breakers.decide(.refusals, root: "m\(i)", owner: "mallory", revision: nil, amount: 1, limit: 1_000, now: now) == .pass)
        }
        #expect(breakers.decide(.refusals, root: "m-extra", owner: "mallory", revision: nil, amount: 1, limit: 1_000, now: now) == .refuse)
        // Alice's counts are intact: her fifth order passes, her sixth trips.
        #expect(breakers.decide(.orders, root: "alice-family", owner: "alice", revision: 1, amount: 1, limit: 5, now: now) == .pass)
        #expect(breakers.decide(.orders, root: "alice-family", owner: "alice", revision: 1, amount: 1, limit: 5, now: now) == .trip)
        // Once Mallory's counters leave their window, they make room again.
        let later = now + 61_000_000_000
        #expect(breakers.decide(.refusals, root: "m-extra", owner: "mallory", revision: nil, amount: 1, limit: 1_000, now: later) == .pass)
        try await h.close()
    }

    @Test func aChannelsBacklogNeverHidesAnothersDeliveries() async throws {
        let h = try await APIHarness(config: Self.config)
        let alarms = h.services.alarms
        for _ in 0..<60 { try await alarms.test(channel: "hook", actor: nil) }
        try await h.services.killSwitch.freeze(.all, reason: "drill", by: .operatorCLI)
        while try await alarms.raisePending().more {}
        let due = await alarms.dueByChannel(now: Clock.nowMillis())
        #expect(due["chat"]?.map(\.1.event) == ["kill_switch"], "\(due.mapValues(\.count))")
        #expect((due["hook"]?.count ?? 0) == 20)
        try await h.close()
    }
}
