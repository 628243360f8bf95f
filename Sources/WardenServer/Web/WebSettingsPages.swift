import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenStore

/// Risk settings and simulator defaults with the error next to the field, and the live-trading switch
/// through the go-live checks.
struct WebSettingsPages {
    let app: WebApp

    static let riskFields = [
        ("max_leg_usd", "Max per order (USD)"), ("daily_cap_usd", "Daily cap (USD)"),
        ("min_net_edge_cents", "Minimum net edge (cents)"),
    ]
    /// Shown with the risk fields; a form from before it existed leaves it as it is.
    static let leverageFields = [("max_leverage", "Max leverage on derivatives (1: none)")]
    /// Approvals and circuit breakers; 0 is off.
    static let safetyFields = [
        ("approve_above_usd", "Ask me before orders above (USD, 0: never)"),
        ("orders_per_minute", "Freeze a key family past this many orders a minute (0: off)"),
        ("refusals_per_minute", "… or this many refused calls a minute (0: off)"),
        ("llm_usd_per_hour", "… or this much LLM spend an hour (USD, 0: off)"),
        ("notional_usd_per_hour", "… or this much order notional an hour (USD, 0: off)"),
    ]
    static let simulatorFields = [
        ("starting_balance_usd", "Paper starting balance (USD)"), ("fee_bps", "Fees (basis points)"),
        ("slippage_bps", "Slippage (basis points)"),
    ]

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/settings") { _, principal, _ in
            page(principal, try await app.services.profiles.get(userID: principal.user.id))
        }
        app.post(web, "/settings") { form, principal, _ in
            var profile = try await app.services.profiles.get(userID: principal.user.id)
            var entered: [String: String] = [:]
            for (name, _) in Self.riskFields + Self.simulatorFields { entered[name] = form.text(name) ?? "" }
            // A form from before these fields existed leaves them as they are.
            let current = Self.values(profile)
            for (name, _) in Self.safetyFields + Self.leverageFields { entered[name] = form.text(name) ?? Self.format(current[name] ?? 0) }
            func number(_ name: String) throws -> Double {
                guard let value = Double(entered[name] ?? ""), value.isFinite else { throw WardenError.invalid(name, "must be a number") }
                return value
            }
            func amount(_ name: String) throws -> USD {
                guard let text = entered[name], let value = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")),
                    let usd = USD(limit: value)
                else { throw WardenError.invalid(name, "must be a number of USD from 0 up") }
                return usd
            }
            func count(_ name: String) throws -> Int? {
                guard let value = Int(entered[name] ?? ""), (0...1_000_000).contains(value) else {
                    throw WardenError.invalid(name, "must be a whole number from 0 (off) to 1000000")
                }
                return value == 0 ? nil : value
            }
            func optionalAmount(_ name: String) throws -> USD? {
                let usd = try amount(name)
                return usd == .zero ? nil : usd
            }
            do {
                guard let leverage = Int(entered["max_leverage"] ?? "") else {
                    throw WardenError.invalid("max_leverage", "must be a whole number")
                }
                profile.maxLeverage = leverage
                profile.approveAboveUSD = try optionalAmount("approve_above_usd")
                profile.breakers = BreakerLimits(
                    ordersPerMinute: try count("orders_per_minute"), refusalsPerMinute: try count("refusals_per_minute"),
                    llmUSDPerHour: try optionalAmount("llm_usd_per_hour"), notionalUSDPerHour: try optionalAmount("notional_usd_per_hour"))
                profile.maxLegUSD = try amount("max_leg_usd")
                profile.dailyCapUSD = try amount("daily_cap_usd")
                profile.minNetEdgeCents = try number("min_net_edge_cents")
                profile.startingBalanceUSD = try number("starting_balance_usd")
                profile.feeBps = try number("fee_bps")
                profile.slippageBps = try number("slippage_bps")
                let saved = try await app.services.profiles.update(principal, to: profile)
                return page(principal, saved, notice: "Saved.")
            } catch let error as WardenError {
                let field = error.field.map { $0.split(separator: ".").last.map(String.init) ?? $0 }
                return page(
                    principal, profile, entered: entered, fieldError: field.map { ($0, Self.plain(error)) },
                    error: field == nil ? error.message : "Not saved: see the field marked below.", status: .badRequest)
            }
        }
        app.post(web, "/settings/go-live") { form, principal, _ in
            let venue = form["venue"] ?? ""
            do {
                let result = try await app.gateway.goLive.run(principal, venue: venue)
                let profile = try await app.services.profiles.get(userID: principal.user.id)
                return page(principal, profile, checks: result, status: result.live ? .ok : .unprocessableContent)
            } catch {
                return page(
                    principal, try await app.services.profiles.get(userID: principal.user.id), error: WebApp.message(error),
                    status: .badRequest)
            }
        }
        app.post(web, "/settings/live-off") { _, principal, _ in
            var profile = try await app.services.profiles.get(userID: principal.user.id)
            profile.allowLiveTrading = false
            return page(principal, try await app.services.profiles.update(principal, to: profile), notice: "Live trading is off.")
        }
    }

    func page(
        _ principal: Principal, _ profile: ProfileRecord, entered: [String: String] = [:], fieldError: (String, String)? = nil,
        checks: GoLiveResult? = nil, notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        let values = Self.values(profile)
        func rows(_ fields: [(String, String)]) -> [[String: Any]] {
            fields.map { name, label in
                var row: [String: Any] = ["name": name, "label": label, "value": entered[name] ?? Self.format(values[name] ?? 0)]
                if let fieldError, fieldError.0 == name { row["field_error"] = fieldError.1 }
                return row
            }
        }
        var data: [String: Any] = [
            "risk": rows(Self.riskFields + Self.leverageFields), "safety": rows(Self.safetyFields), "simulator": rows(Self.simulatorFields),
            "live": profile.allowLiveTrading, "live_venues": profile.liveVenues.joined(separator: ", "),
        ]
        if let checks {
            data["checks_venue"] = checks.venue
            data["checks"] = checks.checks.map {
                ["name": $0.name, "detail": $0.detail, "class": $0.passed ? "pass" : "fail", "verdict": $0.passed ? "Pass" : "Fail"]
            }
        }
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("settings", title: "Settings", nav: "settings", principal, status: status, data)
    }

    /// Each field's stored value (0 for a setting that is off).
    static func values(_ profile: ProfileRecord) -> [String: Double] {
        [
            "max_leg_usd": profile.maxLegUSD.double, "daily_cap_usd": profile.dailyCapUSD.double,
            "min_net_edge_cents": profile.minNetEdgeCents, "max_leverage": Double(profile.maxLeverage),
            "starting_balance_usd": profile.startingBalanceUSD, "fee_bps": profile.feeBps, "slippage_bps": profile.slippageBps,
            "approve_above_usd": profile.approveAboveUSD?.double ?? 0,
            "orders_per_minute": Double(profile.breakers.ordersPerMinute ?? 0),
            "refusals_per_minute": Double(profile.breakers.refusalsPerMinute ?? 0),
            "llm_usd_per_hour": profile.breakers.llmUSDPerHour?.double ?? 0,
            "notional_usd_per_hour": profile.breakers.notionalUSDPerHour?.double ?? 0,
        ]
    }

    /// The error in the form's own words: without the field's API name, other fields by their labels.
    static func plain(_ error: WardenError) -> String {
        var text = error.message
        if let field = error.field, text.hasPrefix(field + ": ") { text = String(text.dropFirst(field.count + 2)) }
        for (name, label) in riskFields + leverageFields + safetyFields + simulatorFields {
            text = text.replacingOccurrences(of: "risk.\(name)", with: label).replacingOccurrences(of: "simulator.\(name)", with: label)
        }
        return text.prefix(1).uppercased() + text.dropFirst() + "."
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
