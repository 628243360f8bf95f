import Foundation
import TOMLKit

/// Reads the TOML configuration strictly: an unknown key or a value of the wrong type or range is an
/// error naming the key, so a typo never silently falls back to a default.
public enum ConfigLoader {
    public static func load(path: String) throws(ConfigError) -> WardenConfig {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try parse(text)
    }

    public static func parse(_ text: String) throws(ConfigError) -> WardenConfig {
        let root: TOMLTable
        do { root = try TOMLTable(string: text) } catch let error as TOMLParseError {
            throw .syntax("\(error.description) at line \(error.source.begin.line), column \(error.source.begin.column)")
        } catch {
            throw .syntax("\(error)")
        }
        var config = WardenConfig()
        for key in root.keys {
            switch key {
            case "server": config.server = try parseServer(try table(root, key, path: key))
            case "venues":
                let venues = try table(root, key, path: key)
                for name in venues.keys {
                    config.venues[name] = try parseVenue(name, try table(venues, name, path: "venues.\(name)"))
                }
            case "services":
                let services = try table(root, key, path: key)
                for name in services.keys {
                    config.services[name] = try parseService(name, try table(services, name, path: "services.\(name)"))
                }
            case "notify":
                let channels = try table(root, key, path: key)
                for name in channels.keys {
                    config.notify[name] = try parseChannel(name, try table(channels, name, path: "notify.\(name)"))
                }
            case "gateway": config.gateway = try parseGateway(try table(root, key, path: key))
            case "audit": config.audit = try parseAudit(try table(root, key, path: key))
            case "oidc": config.oidc = try parseOIDC(try table(root, key, path: key))
            case "prices":
                let venues = try table(root, key, path: key)
                for venue in venues.keys {
                    config.prices[venue] = try parsePrices(venue, try table(venues, venue, path: "prices.\(venue)"))
                }
            case "call_prices":
                let venues = try table(root, key, path: key)
                for venue in venues.keys {
                    config.callPrices[venue] = try parseCallPrices(venue, try table(venues, venue, path: "call_prices.\(venue)"))
                }
            default: throw .unknownKey(key)
            }
        }
        return config
    }

    /// `[call_prices.openai]` then `"POST /v1/images/generations" = 0.25` (USD per call).
    private static func parseCallPrices(_ venue: String, _ t: TOMLTable) throws(ConfigError) -> [(pattern: EndpointPattern, price: Decimal)]
    {
        guard venue == "openai" || venue == "anthropic" else {
            throw .invalidValue(key: "call_prices.\(venue)", reason: "call prices apply to the LLM venues openai and anthropic")
        }
        var out: [(pattern: EndpointPattern, price: Decimal)] = []
        for endpoint in t.keys.sorted() {
            let path = "call_prices.\(venue).\(endpoint)"
            let parts = endpoint.split(separator: " ")
            guard parts.count == 2, parts[1].hasPrefix("/") else {
                throw .invalidValue(key: path, reason: "the key must be METHOD /path (`*` one segment, `**` any)")
            }
            let value = t[endpoint]?.double ?? t[endpoint]?.int.map(Double.init)
            guard let value, value.isFinite, value > 0, value <= 1_000_000, let exact = Decimal(string: "\(value)") else {
                throw .invalidValue(key: path, reason: "must be a number of USD per call above 0 and at most 1000000")
            }
            out.append((EndpointPattern(endpoint), exact))
        }
        return out
    }

    /// `[notify.NAME]`: `kind`, then what that kind needs (`url` for a webhook, `chat_id` for Telegram), and
    /// the routing (`min_severity`, or `events` by name). Secrets are never here: `warden notify set NAME`.
    private static func parseChannel(_ name: String, _ t: TOMLTable) throws(ConfigError) -> NotifyChannel {
        let prefix = "notify.\(name)"
        guard name.utf8.count <= 64, name.utf8.allSatisfy({ $0 == 45 || $0 == 95 || (48...57).contains($0) || (97...122).contains($0) })
        else {
            throw .invalidValue(key: prefix, reason: "a channel name is lowercase letters, digits, - and _ (at most 64)")
        }
        guard t["kind"] != nil else {
            throw .invalidValue(key: "\(prefix).kind", reason: "is required (webhook, slack, discord or telegram)")
        }
        guard let kind = NotifyChannel.Kind(rawValue: try string(t, "kind", path: "\(prefix).kind")) else {
            throw .invalidValue(key: "\(prefix).kind", reason: "must be webhook, slack, discord, telegram or email")
        }
        if kind == .email { return try parseEmailChannel(name, t, prefix: prefix) }
        var channel = NotifyChannel(name: name, kind: kind)
        for key in t.keys {
            let path = "\(prefix).\(key)"
            switch key {
            case "kind": break
            case "url" where kind == .webhook, "base_url" where kind == .telegram:
                let text = try url(t, key, path: path)
                if let problem = NotifyChannel.checkURL(text) { throw .invalidValue(key: path, reason: problem) }
                if key == "url" { channel.url = text } else { channel.baseURL = text }
            case "chat_id" where kind == .telegram:
                channel.chatID = try nonEmpty(t[key]?.string ?? t[key]?.int.map(String.init) ?? "", path: path)
            case "min_severity", "events": try parseRouting(key, t, path: path, into: &channel)
            default: throw .unknownKey(path)
            }
        }
        if kind == .webhook, channel.url == nil { throw .invalidValue(key: "\(prefix).url", reason: "is required for a webhook") }
        if kind == .telegram, channel.chatID == nil { throw .invalidValue(key: "\(prefix).chat_id", reason: "is required for Telegram") }
        return channel
    }

    /// `[notify.NAME]` of kind `email`: the submission server (`smtp_host`, `smtp_port`, `username`, optional
    /// `ca_file`), `from`, `to`, and the routing. The password is the sealed secret.
    private static func parseEmailChannel(_ name: String, _ t: TOMLTable, prefix: String) throws(ConfigError) -> NotifyChannel {
        var channel = NotifyChannel(name: name, kind: .email)
        var host: String?, port = 587, username: String?, caFile: String?
        for key in t.keys {
            let path = "\(prefix).\(key)"
            switch key {
            case "kind": break
            case "smtp_host":
                let text = try nonEmpty(try string(t, key, path: path), path: path)
                guard text.utf8.allSatisfy({ $0 > 32 && $0 < 127 && $0 != UInt8(ascii: "/") }) else {
                    throw .invalidValue(key: path, reason: "must be a host name or address")
                }
                host = text
            case "smtp_port": port = try int(t, key, path: path, in: 1...65_535)
            case "username": username = try nonEmpty(try string(t, key, path: path), path: path)
            case "ca_file": caFile = try nonEmpty(try string(t, key, path: path), path: path)
            case "from":
                let text = try string(t, key, path: path)
                guard MailMessage.isAddress(text) else { throw .invalidValue(key: path, reason: "must be an email address") }
                channel.from = text
            case "to":
                guard let array = t[key]?.array, !array.isEmpty, array.count <= 50 else {
                    throw .invalidValue(key: path, reason: "must be an array of 1 to 50 email addresses")
                }
                for (index, element) in array.enumerated() {
                    guard let text = element.string, MailMessage.isAddress(text) else {
                        throw .invalidValue(key: "\(path)[\(index)]", reason: "must be an email address")
                    }
                    channel.to.append(text)
                }
            case "min_severity", "events": try parseRouting(key, t, path: path, into: &channel)
            default: throw .unknownKey(path)
            }
        }
        guard let host else { throw .invalidValue(key: "\(prefix).smtp_host", reason: "is required for email") }
        guard let username else {
            throw .invalidValue(key: "\(prefix).username", reason: "is required for email (the password is sealed with warden notify set)")
        }
        guard channel.from != nil else { throw .invalidValue(key: "\(prefix).from", reason: "is required for email") }
        guard !channel.to.isEmpty else { throw .invalidValue(key: "\(prefix).to", reason: "is required for email") }
        channel.smtp = SMTPServer(host: host, port: port, username: username, caFile: caFile)
        return channel
    }

    /// A channel's `min_severity` or `events`.
    private static func parseRouting(_ key: String, _ t: TOMLTable, path: String, into channel: inout NotifyChannel) throws(ConfigError) {
        if key == "min_severity" {
            guard let severity = AlarmSeverity(rawValue: try string(t, key, path: path)) else {
                throw .invalidValue(key: path, reason: "must be info, warning or critical")
            }
            channel.minSeverity = severity
            return
        }
        guard let array = t[key]?.array else { throw .invalidValue(key: path, reason: "must be an array of event names") }
        var events = Set<AlarmEvent>()
        for (index, element) in array.enumerated() {
            guard let event = element.string.flatMap(AlarmEvent.init(rawValue:)) else {
                throw .invalidValue(
                    key: "\(path)[\(index)]", reason: "must be one of \(AlarmEvent.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            events.insert(event)
        }
        channel.events = events
    }

    private static func parseGateway(_ t: TOMLTable) throws(ConfigError) -> WardenConfig.GatewaySection {
        var gateway = WardenConfig.GatewaySection()
        for key in t.keys {
            let path = "gateway.\(key)"
            switch key {
            case "max_request_bytes": gateway.maxRequestBytes = try int(t, key, path: path, in: 1024...(1024 * 1024 * 1024))
            case "upstream_timeout_seconds": gateway.upstreamTimeoutSeconds = try int(t, key, path: path, in: 1...86_400)
            case "default_max_output_tokens": gateway.defaultMaxOutputTokens = try int(t, key, path: path, in: 1...10_000_000)
            case "send_deadline_seconds": gateway.sendDeadlineSeconds = try int(t, key, path: path, in: 1...60)
            case "upstream_idle_seconds": gateway.upstreamIdleSeconds = try int(t, key, path: path, in: 1...3600)
            case "upstream_max_connections_per_origin":
                gateway.upstreamMaxConnectionsPerOrigin = try int(t, key, path: path, in: 1...100_000)
            case "credential_idle_seconds": gateway.credentialIdleSeconds = try int(t, key, path: path, in: 1...86_400)
            case "approval_seconds": gateway.approvalSeconds = try int(t, key, path: path, in: 10...3_600)
            case "stream_idle_seconds": gateway.streamIdleSeconds = try int(t, key, path: path, in: 1...86_400)
            case "stream_max_message_bytes":
                gateway.streamMaxMessageBytes = try int(t, key, path: path, in: 1024...(64 * 1024 * 1024))
            case "stream_ping_seconds": gateway.streamPingSeconds = try int(t, key, path: path, in: 1...3_600)
            case "stream_max_per_key": gateway.streamMaxPerKey = try int(t, key, path: path, in: 1...100_000)
            default: throw .unknownKey(path)
            }
        }
        return gateway
    }

    /// `[oidc]`: `issuer` and `client_id` required; the issuer is https, or http on a loopback address only.
    private static func parseOIDC(_ t: TOMLTable) throws(ConfigError) -> WardenConfig.OIDCSection {
        guard t["issuer"] != nil else { throw .invalidValue(key: "oidc.issuer", reason: "is required") }
        guard t["client_id"] != nil else { throw .invalidValue(key: "oidc.client_id", reason: "is required") }
        let issuer = try string(t, "issuer", path: "oidc.issuer")
        guard OIDCURL.acceptable(issuer) else {
            throw .invalidValue(key: "oidc.issuer", reason: "must be an https URL (http only on 127.0.0.1, ::1 or localhost)")
        }
        var oidc = WardenConfig.OIDCSection(
            issuer: issuer, clientID: try nonEmpty(try string(t, "client_id", path: "oidc.client_id"), path: "oidc.client_id"))
        for key in t.keys {
            let path = "oidc.\(key)"
            switch key {
            case "issuer", "client_id": break
            case "client_secret": throw .invalidValue(key: path, reason: "is never written here: seal it with warden oidc set-secret")
            case "name": oidc.name = try nonEmpty(try string(t, key, path: path), path: path)
            case "algorithm":
                oidc.algorithm = try string(t, key, path: path)
                guard WardenConfig.OIDCSection.algorithms.contains(oidc.algorithm) else {
                    throw .invalidValue(key: path, reason: "must be RS256 or ES256")
                }
            case "auto_create":
                guard let value = t[key]?.bool else { throw .invalidValue(key: path, reason: "must be true or false") }
                oidc.autoCreate = value
            case "redirect_url":
                let url = try string(t, key, path: path)
                guard OIDCURL.acceptable(url), url.hasSuffix("/oidc/callback") else {
                    throw .invalidValue(key: path, reason: "must be this server's https URL ending in /oidc/callback")
                }
                oidc.redirectURL = url
            case "scopes":
                oidc.scopes = try string(t, key, path: path)
                guard oidc.scopes.split(separator: " ").contains("openid"),
                    oidc.scopes.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-: ".contains($0)) })
                else { throw .invalidValue(key: path, reason: "must be space-separated scope names including openid") }
            default: throw .unknownKey(path)
            }
        }
        return oidc
    }

    private static func parseAudit(_ t: TOMLTable) throws(ConfigError) -> WardenConfig.AuditSection {
        var audit = WardenConfig.AuditSection()
        for key in t.keys {
            let path = "audit.\(key)"
            switch key {
            case "retain_days": audit.retainDays = try int(t, key, path: path, in: 1...36_500)
            default: throw .unknownKey(path)
            }
        }
        return audit
    }

    /// `[prices.openai]` then `"gpt-4o-mini" = { input = 0.15, output = 0.60 }` (USD per million tokens).
    private static func parsePrices(_ venue: String, _ t: TOMLTable) throws(ConfigError) -> [String: WardenConfig.ModelPrice] {
        guard venue == "openai" || venue == "anthropic" else {
            throw .invalidValue(key: "prices.\(venue)", reason: "prices apply to the LLM venues openai and anthropic")
        }
        var prices: [String: WardenConfig.ModelPrice] = [:]
        for model in t.keys {
            let path = "prices.\(venue).\(model)"
            let entry = try table(t, model, path: path)
            var input: Decimal?, output: Decimal?
            for key in entry.keys {
                switch key {
                case "input": input = try price(entry, key, path: "\(path).\(key)")
                case "output": output = try price(entry, key, path: "\(path).\(key)")
                default: throw .unknownKey("\(path).\(key)")
                }
            }
            guard let input, let output else {
                throw .invalidValue(key: path, reason: "needs both input and output (USD per million tokens)")
            }
            prices[model] = .init(inputPerMillion: input, outputPerMillion: output)
        }
        return prices
    }

    /// TOML floats arrive as doubles; their shortest text (`0.15`) is the decimal the operator wrote.
    private static func price(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> Decimal {
        let value = t[key]?.double ?? t[key]?.int.map(Double.init)
        guard let value, value.isFinite, value >= 0, value <= 1_000_000, let exact = Decimal(string: "\(value)") else {
            throw .invalidValue(key: path, reason: "must be a number of USD per million tokens between 0 and 1000000")
        }
        return exact
    }

    private static func parseServer(_ t: TOMLTable) throws(ConfigError) -> WardenConfig.ServerSection {
        var server = WardenConfig.ServerSection()
        for key in t.keys {
            let path = "server.\(key)"
            switch key {
            case "listen": server.listen = try ListenAddress(parsing: try string(t, key, path: path))
            case "data_dir": server.dataDir = try nonEmpty(try string(t, key, path: path), path: path)
            case "database": server.database = try nonEmpty(try string(t, key, path: path), path: path)
            case "max_body_bytes": server.maxBodyBytes = try int(t, key, path: path, in: 1024...(64 * 1024 * 1024))
            case "client_timeout_seconds": server.clientTimeoutSeconds = try int(t, key, path: path, in: 1...86_400)
            case "shutdown_grace_seconds": server.shutdownGraceSeconds = try int(t, key, path: path, in: 1...3600)
            case "tls_cert": server.tlsCert = try nonEmpty(try string(t, key, path: path), path: path)
            case "tls_key": server.tlsKey = try nonEmpty(try string(t, key, path: path), path: path)
            case "tls_client_ca": server.tlsClientCA = try nonEmpty(try string(t, key, path: path), path: path)
            case "public_hosts": server.publicHosts = try hosts(t, key, path: path)
            case "trusted_proxies": server.trustedProxies = try strings(t, key, path: path)
            case "forwarded_header":
                let header = try string(t, key, path: path).lowercased()
                guard ["x-forwarded-for", "forwarded"].contains(header) else {
                    throw .invalidValue(key: path, reason: "must be \"x-forwarded-for\" or \"forwarded\"")
                }
                server.forwardedHeader = header
            case "session_hours": server.sessionHours = try int(t, key, path: path, in: 1...720)
            case "session_max_days": server.sessionMaxDays = try int(t, key, path: path, in: 1...365)
            default: throw .unknownKey(path)
            }
        }
        if (server.tlsCert == nil) != (server.tlsKey == nil) {
            throw .invalidValue(key: "server.tls_cert", reason: "tls_cert and tls_key are set together")
        }
        if server.tlsClientCA != nil, server.tlsCert == nil {
            throw .invalidValue(key: "server.tls_client_ca", reason: "client certificates need TLS: set tls_cert and tls_key")
        }
        return server
    }

    private static func parseVenue(_ name: String, _ t: TOMLTable) throws(ConfigError) -> WardenConfig.VenueSection {
        guard WardenConfig.builtInVenues.contains(name) else {
            throw .invalidValue(
                key: "venues.\(name)",
                reason:
                    "no built-in venue is called \"\(name)\" (known: \(WardenConfig.builtInVenues.sorted().joined(separator: ", "))); use [services.\(name)] for a generic REST service"
            )
        }
        var venue = WardenConfig.VenueSection()
        for key in t.keys {
            let path = "venues.\(name).\(key)"
            switch key {
            case "base_url": venue.baseURL = try url(t, key, path: path)
            case "market_data_url" where name == "alpaca": venue.marketDataURL = try url(t, key, path: path)
            case "stream_url" where name == "binance" || name == "polymarket":
                venue.streamURL = try url(t, key, path: path)
            case "ws_api_url" where name == "binance": venue.webSocketAPIURL = try url(t, key, path: path)
            case "allow_endpoints":
                guard WardenConfig.exchanges.contains(name) else {
                    throw .invalidValue(
                        key: path,
                        reason: "only the exchanges (\(WardenConfig.exchanges.sorted().joined(separator: ", "))) have an endpoint allowlist"
                    )
                }
                venue.allowEndpoints = try endpointPatterns(t, key, path: path)
            case "chain_id" where name == "polymarket": venue.chainID = UInt64(try int(t, key, path: path, in: 1...Int(Int32.max)))
            case "exchange_address" where name == "polymarket": venue.exchangeAddress = try address(t, key, path: path)
            case "neg_risk_exchange_address" where name == "polymarket": venue.negRiskExchangeAddress = try address(t, key, path: path)
            default: throw .unknownKey(path)
            }
        }
        return venue
    }

    private static func parseService(_ name: String, _ t: TOMLTable) throws(ConfigError) -> WardenConfig.ServiceSection {
        let prefix = "services.\(name)"
        guard name.range(of: "^[a-z0-9][a-z0-9_-]{0,39}$", options: .regularExpression) != nil else {
            throw .invalidValue(key: prefix, reason: "a service name is 1-40 lowercase letters, digits, '-' or '_'")
        }
        guard !WardenConfig.builtInVenues.contains(name) else {
            throw .invalidValue(key: prefix, reason: "\"\(name)\" is a built-in venue; configure it under [venues.\(name)]")
        }
        var baseURL: String?
        var service = WardenConfig.ServiceSection(baseURL: "")
        for key in t.keys {
            let path = "\(prefix).\(key)"
            switch key {
            case "base_url": baseURL = try url(t, key, path: path)
            case "auth_header":
                let header = try string(t, key, path: path)
                guard header.range(of: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$", options: .regularExpression) != nil else {
                    throw .invalidValue(key: path, reason: "not a valid HTTP header name")
                }
                service.authHeader = header
            case "auth_value_prefix": service.authValuePrefix = try string(t, key, path: path)
            case "blocked_endpoints": service.blockedEndpoints = try endpointPatterns(t, key, path: path)
            case "rate_limit": service.rateLimit = try int(t, key, path: path, in: 1...1_000_000_000)
            case "rate_limit_window_seconds": service.rateLimitWindowSeconds = try int(t, key, path: path, in: 1...31_536_000)
            case "websocket": service.websocket = try bool(t, key, path: path)
            default: throw .unknownKey(path)
            }
        }
        guard let baseURL else { throw .invalidValue(key: "\(prefix).base_url", reason: "is required") }
        service.baseURL = baseURL
        return service
    }

    // MARK: typed accessors

    private static func table(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> TOMLTable {
        guard let value = t[key]?.table else { throw .invalidValue(key: path, reason: "must be a table") }
        return value
    }

    private static func string(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> String {
        guard let value = t[key]?.string else { throw .invalidValue(key: path, reason: "must be a string") }
        return value
    }

    private static func nonEmpty(_ value: String, path: String) throws(ConfigError) -> String {
        guard !value.isEmpty else { throw .invalidValue(key: path, reason: "must not be empty") }
        return value
    }

    private static func bool(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> Bool {
        guard let value = t[key]?.bool else { throw .invalidValue(key: path, reason: "must be true or false") }
        return value
    }

    private static func int(_ t: TOMLTable, _ key: String, path: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let value = t[key]?.int else { throw .invalidValue(key: path, reason: "must be an integer") }
        guard range.contains(value) else {
            throw .invalidValue(key: path, reason: "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    private static func address(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> String {
        let text = try string(t, key, path: path)
        guard text.range(of: "^0x[0-9a-fA-F]{40}$", options: .regularExpression) != nil else {
            throw .invalidValue(key: path, reason: "must be a 0x-prefixed 20-byte hex address")
        }
        return text
    }

    private static func url(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> String {
        let text = try string(t, key, path: path)
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = parts.host, !host.isEmpty,
            parts.query == nil, parts.fragment == nil, parts.user == nil
        else {
            throw .invalidValue(key: path, reason: "must be an http(s) URL with a host and no query, such as https://api.example.com")
        }
        return text.hasSuffix("/") ? String(text.dropLast()) : text
    }

    private static func strings(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> [String] {
        guard let array = t[key]?.array else { throw .invalidValue(key: path, reason: "must be an array of strings") }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.string, !string.isEmpty else {
                throw .invalidValue(key: "\(path)[\(index)]", reason: "must be a non-empty string")
            }
            strings.append(string)
        }
        return strings
    }

    /// `public_hosts`: `name`, `name:port`, `[v6]` or `[v6]:port`, kept lowercase (a `Host` is compared lowercased).
    private static func hosts(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> [String] {
        let pattern = "^([a-z0-9]([a-z0-9.-]{0,252})|\\[[0-9a-f:.]{2,45}\\])(:[0-9]{1,5})?$"
        return try strings(t, key, path: path).enumerated().map { (index, host) throws(ConfigError) in
            let lowered = host.lowercased()
            guard lowered.range(of: pattern, options: .regularExpression) != nil else {
                throw .invalidValue(
                    key: "\(path)[\(index)]", reason: "\"\(host)\" is not a host name or address, with or without :port")
            }
            return lowered
        }
    }

    private static func endpointPatterns(_ t: TOMLTable, _ key: String, path: String) throws(ConfigError) -> [String] {
        guard let array = t[key]?.array else { throw .invalidValue(key: path, reason: "must be an array of strings") }
        var patterns: [String] = []
        for (index, element) in array.enumerated() {
            guard let pattern = element.string else {
                throw .invalidValue(key: "\(path)[\(index)]", reason: "must be a string")
            }
            try EndpointPatternSyntax.validate(pattern, key: "\(path)[\(index)]")
            patterns.append(pattern)
        }
        return patterns
    }
}

/// The shape of a `blocked_endpoints` entry: `METHOD /path` with `*` (one segment) and `**` (any depth).
enum EndpointPatternSyntax {
    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"]

    static func validate(_ pattern: String, key: String) throws(ConfigError) {
        let parts = pattern.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2, methods.contains(parts[0].uppercased()), parts[1].hasPrefix("/") else {
            throw .invalidValue(key: key, reason: "expected \"METHOD /path\" such as \"DELETE /repos/*\", got \"\(pattern)\"")
        }
        for segment in parts[1].split(separator: "/") where segment.contains("*") && segment != "*" && segment != "**" {
            throw .invalidValue(key: key, reason: "`*` must stand for a whole path segment, got \"\(segment)\"")
        }
    }
}
