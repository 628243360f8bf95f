import Foundation
import WardenStore
import WardenVenues

/// One go-live check and how it went.
public struct GoLiveCheck: Sendable, Equatable, Codable {
    public let name: String
    public let passed: Bool
    public let detail: String
}

public struct GoLiveResult: Sendable {
    public let venue: String
    public let live: Bool
    public let checks: [GoLiveCheck]
}

/// Turns live trading on for one venue only when its checks pass (docs/exchanges.md, Go-live checks): a credential on file,
/// an authenticated balance call that succeeds, and a balance that covers `max_leg_usd`.
public struct GoLive: Sendable {
    let registry: VenueRegistry
    let config: WardenConfig
    let caller: any UpstreamCaller
    let database: Database
    let vault: Vault
    let profiles: Profiles
    let audit: AuditLog

    public func run(_ principal: Principal, venue name: String) async throws -> GoLiveResult {
        try AccessTokens.requirePerson(principal)
        guard let venue = registry.venue(named: name) as? any ExchangeVenue else {
            throw WardenError.invalid(
                "venue", "go-live applies to the exchanges: \(WardenConfig.exchanges.sorted().joined(separator: ", "))")
        }
        let profile = try await profiles.get(userID: principal.user.id)
        var checks: [GoLiveCheck] = []
        guard let credential = try await credential(for: principal.user.id, venue: name) else {
            checks.append(
                GoLiveCheck(
                    name: "credential", passed: false,
                    detail: "no \(name) credential of yours, or shared with you at trade level, is on file"))
            checks.append(GoLiveCheck(name: "balance_call", passed: false, detail: "not run: there is no credential to call with"))
            checks.append(GoLiveCheck(name: "balance_covers_max_leg", passed: false, detail: "not run: the balance is unknown"))
            return try await finish(principal, venue: name, checks: checks)
        }
        checks.append(
            GoLiveCheck(name: "credential", passed: true, detail: "\(name) credential \"\(credential.label)\" (\(credential.fingerprint))"))
        let balance = await balance(venue, credential: credential)
        switch balance {
        case .success(let usd):
            checks.append(GoLiveCheck(name: "balance_call", passed: true, detail: "\(name) answered the authenticated balance call"))
            let balance = USD(limit: usd) ?? .zero
            let enough = balance >= profile.maxLegUSD
            checks.append(
                GoLiveCheck(
                    name: "balance_covers_max_leg", passed: enough,
                    detail: "balance \(balance) USD \(enough ? "covers" : "is below") max_leg_usd \(profile.maxLegUSD) USD"))
        case .failure(let error):
            checks.append(GoLiveCheck(name: "balance_call", passed: false, detail: error.description))
            checks.append(GoLiveCheck(name: "balance_covers_max_leg", passed: false, detail: "not run: the balance is unknown"))
        }
        return try await finish(principal, venue: name, checks: checks)
    }

    /// The user's own newest credential for the venue, else the newest one shared with them at trade level.
    func credential(for userID: String, venue: String) async throws -> CredentialRecord? {
        let repository = CredentialRepository(database)
        let own = try await repository.list(ownerID: userID).filter { $0.venue == venue }
        if let newest = own.max(by: { $0.updatedAt < $1.updatedAt }) { return newest }
        return try await repository.listGranted(to: userID).filter { $0.0.venue == venue && $0.1 == .trade }
            .map(\.0).max { $0.updatedAt < $1.updatedAt }
    }

    func finish(_ principal: Principal, venue: String, checks: [GoLiveCheck]) async throws -> GoLiveResult {
        let summary = checks.map { "\($0.name)=\($0.passed ? "pass" : "fail")" }.joined(separator: ",")
        guard checks.allSatisfy(\.passed) else {
            try await audit.append(
                AuditEntry(
                    actor: principal.user.id, owner: principal.user.id, action: "profile.go_live",
                    target: venue, outcome: .refused, detail: ["checks": summary]))
            return GoLiveResult(venue: venue, live: false, checks: checks)
        }
        _ = try await profiles.goLive(principal, venue: venue, checks: summary)
        return GoLiveResult(venue: venue, live: true, checks: checks)
    }

    /// The account's cash in USD, read with the stored credential.
    func balance(_ venue: any ExchangeVenue, credential: CredentialRecord) async -> Result<Double, VenueError> {
        guard let secret = Credentials.open(credential, vault: vault) else {
            return .failure(VenueError("the stored credential could not be opened"))
        }
        let base = UpstreamBase(config.baseURL(venue: venue.name, default: venue.defaultBaseURL))
        let query = venue.balanceQuery(for: secret)
        var request = UpstreamRequest(
            method: query.method, path: base.prefix + query.path, query: query.query, headers: [:], body: query.body)
        if !query.body.isEmpty { request.headers[.contentType] = "application/json" }
        request.authority = base.authority
        do {
            if let scope = venue.nonceScope(secret) {
                let nonce = try await NonceRepository(database).next(key: scope, atLeast: Nonces.floor(for: venue))
                try venue.sign(&request, secret: secret, nonce: nonce)
            } else {
                try venue.sign(&request, secret: secret, signed: true, now: Date())
            }
            let answer = try await caller.send(request, origin: base.origin)
            guard (200..<300).contains(answer.status) else {
                return .failure(VenueError("\(venue.name) refused the balance call with HTTP \(answer.status)"))
            }
            guard let usd = venue.parseBalanceUSD(answer.body) else {
                return .failure(VenueError("\(venue.name)'s balance answer could not be read"))
            }
            return .success(usd)
        } catch let error as VenueError {
            return .failure(error)
        } catch {
            return .failure(VenueError("\(venue.name) could not be reached for the balance call"))
        }
    }
}
