import Foundation
import Testing
@testable import WardenCore
@testable import WardenStore

@Suite struct GatewayPolicyTests {
    @Test func pathsCanonicalise() throws {
        #expect(try CanonicalPath(raw: "/a//b/").description == "/a/b")
        #expect(try CanonicalPath(raw: "/%72epos/x").description == "/repos/x")
        #expect(try CanonicalPath(raw: "/a%20b").encoded == "/a%20b")
        // Sent upstream with every byte outside RFC 3986's pchar escaped, and nothing else.
        #expect(try CanonicalPath(raw: "/v1//a b/%C3%A9%7e/").encoded == "/v1/a%20b/%C3%A9~")
        #expect(try CanonicalPath(raw: "/x/e\u{301}\"<>^`{|}[]#").encoded == "/x/e%CC%81%22%3C%3E%5E%60%7B%7C%7D%5B%5D%23")
        #expect(try CanonicalPath(raw: "/-._~!$&'()*+,=:@AZaz09").encoded == "/-._~!$&'()*+,=:@AZaz09")
        #expect(try CanonicalPath(raw: "").encoded == "/")
        #expect(try CanonicalPath(raw: "").description == "/")
        for bad in ["/a/../b", "/./a", "/a/%2e%2e", "/a%2fb", "/a%2Fb", "/a%5cb", "/a\\b", "/a%00", "/a%", "/a%zz", "/a%252f", "relative"] {
            #expect(throws: CanonicalPath.Refusal.self, "\(bad) accepted") { try CanonicalPath(raw: bad) }
        }
        // Path parameters, and blanks that servers trim off a segment, would let `/admin;x` or `/admin%20`
        // reach a server that reads `/admin`.
        for bad in [
            "/admin;x/delete", "/admin%3Bx", "/admin%3b", "/a/b;", "/;", "/admin%20", "/%20admin", "/admin%20/x",
            "/admin%C2%A0", "/admin%E3%80%80", "/admin%09",
        ] {
            #expect(throws: CanonicalPath.Refusal.self, "\(bad) accepted") { try CanonicalPath(raw: bad) }
        }
    }

    @Test func methodOverridesAreFoundInEverySpelling() {
        for query in [
            "_method=DELETE", "%5Fmethod=DELETE", "%5fMETHOD=DELETE", "a=1&_Method=PUT", "_method[x]=DELETE",
            "%5Fmethod%5B%5D=DELETE", "a=1;_method=DELETE", "_method", "+_method=DELETE", ".method=DELETE",
            "%20_method=DELETE", "_method%00x=DELETE",
        ] {
            #expect(MethodOverride.inPairs(query[...]), "\(query) not seen")
        }
        for query in ["method=DELETE", "x_method=DELETE", "_methods=DELETE", "_method_=1", "a=_method", ""] {
            #expect(!MethodOverride.inPairs(query[...]), "\(query) seen")
        }
        let form = "application/x-www-form-urlencoded"
        #expect(MethodOverride.inBody(Data("title=x&%5Fmethod=DELETE".utf8), contentType: form))
        #expect(MethodOverride.inBody(Data("_method=DELETE".utf8), contentType: nil))
        #expect(MethodOverride.inBody(Data("_method=DELETE".utf8), contentType: "text/plain"))
        #expect(!MethodOverride.inBody(Data("title=_method".utf8), contentType: form))
        #expect(MethodOverride.inBody(Data(#"{"_method":"DELETE"}"#.utf8), contentType: "application/json"))
        #expect(MethodOverride.inBody(Data(#"{"a":1,"\u005FMETHOD":"DELETE"}"#.utf8), contentType: "application/json"))
        #expect(MethodOverride.inBody(Data(#" {"_method":"DELETE"}"#.utf8), contentType: nil))
        #expect(!MethodOverride.inBody(Data(#"{"method":"x","a":{"_method":"nested"}}"#.utf8), contentType: "application/json"))
        #expect(!MethodOverride.inBody(Data(#"{"title":"t"}"#.utf8), contentType: "application/json"))
        // JSON Foundation cannot read, which a lenient parser might: refused once it could hide the name.
        #expect(MethodOverride.inBody(Data(#"{"_method":"DELETE",}"#.utf8), contentType: "application/json"))
        #expect(MethodOverride.inBody(Data(#"{"_m\u0065thod":"DELETE""#.utf8), contentType: "application/json"))
        #expect(!MethodOverride.inBody(Data(#"{"title":"t""#.utf8), contentType: "application/json"))
        let backslash = UInt8(ascii: "\\"), percent = UInt8(ascii: "%")
        #expect(
            MethodOverride.mentionsMethod(Data("xMMETHOD".utf8), orEscape: backslash)
                && !MethodOverride.mentionsMethod(Data("metho d".utf8), orEscape: backslash))
        // A form names `_method` only with its letters or an escape: both are found, a body with neither skips the parse.
        #expect(MethodOverride.inBody(Data("a=1&_m%65thod=DELETE".utf8), contentType: "application/x-www-form-urlencoded"))
        #expect(MethodOverride.inBody(Data("a=1&+.METHOD=DELETE".utf8), contentType: nil))
        #expect(MethodOverride.mentionsMethod(Data("x=%41".utf8), orEscape: percent))
        #expect(!MethodOverride.inBody(Data("symbol=BTCUSDT&side=BUY".utf8), contentType: "application/x-www-form-urlencoded"))
        let part = "--b\r\nContent-Disposition: form-data; name=\"_METHOD\"\r\n\r\nDELETE\r\n--b--\r\n"
        #expect(MethodOverride.inBody(Data(part.utf8), contentType: "multipart/form-data; boundary=b"))
        #expect(
            MethodOverride.inBody(
                Data(part.replacingOccurrences(of: "_METHOD", with: ".method").utf8), contentType: "multipart/form-data; boundary=b"))
        #expect(
            !MethodOverride.inBody(
                Data(part.replacingOccurrences(of: "_METHOD", with: "title").utf8), contentType: "multipart/form-data; boundary=b"))
    }

    @Test func patternsMatchSegments() throws {
        let p = EndpointPattern("DELETE /repos/*")
        #expect(p.matches(method: "DELETE", path: try CanonicalPath(raw: "/repos/x")))
        #expect(p.matches(method: "delete", path: try CanonicalPath(raw: "/REPOS/X/")))
        #expect(!p.matches(method: "DELETE", path: try CanonicalPath(raw: "/repos/x/y")))
        #expect(!p.matches(method: "GET", path: try CanonicalPath(raw: "/repos/x")))
        let deep = EndpointPattern("* /admin/**")
        #expect(deep.matches(method: "POST", path: try CanonicalPath(raw: "/admin")))
        #expect(deep.matches(method: "PUT", path: try CanonicalPath(raw: "/admin/a/b/c")))
        #expect(!deep.matches(method: "PUT", path: try CanonicalPath(raw: "/administrator")))
        let middle = EndpointPattern("PUT /repos/**/settings")
        #expect(middle.matches(method: "PUT", path: try CanonicalPath(raw: "/repos/a/b/settings")))
        #expect(!middle.matches(method: "PUT", path: try CanonicalPath(raw: "/repos/a/b/settings/x")))
        #expect(EndpointPattern("GET /x").matches(method: "HEAD", path: try CanonicalPath(raw: "/x")))
        // A block list also takes a format suffix, which Rails-style routers send to the same action.
        let settings = EndpointPattern("PUT /repos/*/settings")
        for suffixed in ["/repos/a/settings.json", "/repos/a/SETTINGS.xml", "/repos/a/settings."] {
            #expect(settings.matches(method: "PUT", path: try CanonicalPath(raw: suffixed), formatSuffixes: true), "\(suffixed)")
            #expect(!settings.matches(method: "PUT", path: try CanonicalPath(raw: suffixed)), "an allow rule widened to \(suffixed)")
        }
        #expect(!settings.matches(method: "PUT", path: try CanonicalPath(raw: "/repos/a/settingsx"), formatSuffixes: true))
    }

    @Test func rateLimiterLetsExactlyCapacityThroughABurst() async {
        let limiter = RateLimiter()
        let now = Date()
        var passed = 0
        for _ in 0..<50 where await limiter.take(key: "k", capacity: 20, window: 3600, now: now) == nil { passed += 1 }
        #expect(passed == 20)
        #expect(await limiter.take(key: "k", capacity: 20, window: 3600, now: now) == 180)
        #expect(await limiter.take(key: "k", capacity: 20, window: 3600, now: now.addingTimeInterval(180)) == nil)
        #expect(await limiter.take(key: "other", capacity: 20, window: 3600, now: now) == nil)
    }

    @Test func pricesAndGatewaySettingsParse() throws {
        let config = try ConfigLoader.parse(
            """
            [gateway]
            upstream_timeout_seconds = 30
            [prices.openai]
            "gpt-4o-mini" = { input = 0.15, output = 0.6 }
            """)
        #expect(config.gateway.upstreamTimeoutSeconds == 30)
        #expect(config.prices["openai"]?["gpt-4o-mini"]?.cost(input: 1_000_000, output: 1_000_000) == USD(micros: 750_000))
        // Fractions of a micro-dollar round up, so a reservation never falls short of the bill.
        #expect(config.prices["openai"]?["gpt-4o-mini"]?.cost(input: 1, output: 0) == USD(micros: 1))
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[prices.binance]\nx = { input = 1, output = 1 }") }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[prices.openai]\nx = { input = -1, output = 1 }") }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("[prices.openai]\nx = { input = 1 }") }
        #expect(throws: ConfigError.unknownKey("gateway.timeout")) { try ConfigLoader.parse("[gateway]\ntimeout = 1") }
    }
}

@Suite struct KeyCacheIdleTests {
    @Test func anOpenedCredentialIdlePastItsTimeIsDropped() async throws {
        let store = try await Database.open(
            .sqlite(path: NSTemporaryDirectory() + "idle-\(UUID().uuidString).db"), logger: .init(label: "t"))
        try await Migrator.migrate(store, logger: .init(label: "t"))
        let cache = KeyCache(database: store, idle: .seconds(60))
        await cache.sync()
        let key = ResolvedKey(
            key: AgentKeyRecord(
                id: "k", ownerID: "u", name: "n", keyHash: "h", keyPrefix: "p", access: .trade, createdAt: 0, expiresAt: nil,
                credentials: [:]),
            standing: KeyStanding(revoked: false, expiresAt: nil, ownerDisabled: false), credential: nil, grantAccess: nil,
            revision: try await StoreRevision.read(store))
        let second: UInt64 = 1_000_000_000
        cache.store(KeyCache.Entry(resolved: key, secret: ["api_key": "x"]), hash: "h", venue: "openai", now: 10 * second)
        #expect(cache.entry(hash: "h", venue: "openai", now: 69 * second) != nil)  // used: its idle time starts again
        #expect(cache.entry(hash: "h", venue: "openai", now: 128 * second) != nil)
        cache.dropIdle(now: 180 * second)
        #expect(cache.count == 1)
        cache.dropIdle(now: 189 * second)
        #expect(cache.count == 0)
        cache.store(KeyCache.Entry(resolved: key, secret: ["api_key": "x"]), hash: "h", venue: "openai", now: 200 * second)
        #expect(cache.entry(hash: "h", venue: "openai", now: 261 * second) == nil)  // idle past 60 s when asked
        #expect(cache.count == 0)
        // A call that read its clock before another call used the entry finds it (no time has passed for it).
        cache.store(KeyCache.Entry(resolved: key, secret: ["api_key": "x"]), hash: "h", venue: "openai", now: 300 * second)
        #expect(cache.entry(hash: "h", venue: "openai", now: 300 * second - 1) != nil)
        cache.dropIdle(now: 300 * second - 1)
        #expect(cache.count == 1)
        try await store.close()
    }
}
