import Foundation
import HTTPTypes
import WardenStore
import WardenVenues

/// Polymarket level 1: minting the venue's API credentials with the stored wallet key.
extension TradingPolicy {
    /// Polymarket level 1: Warden signs with the stored wallet key, keeps the minted credentials in the
    /// vault, and tells the agent only that they are stored. Allowed in dry-run too: it trades nothing.
    func walletAuth(
        _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission,
        _ base: UpstreamBase, reasonNotToSend: @Sendable () -> String?
    ) async throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        guard admission.ownsCredential else {
            throw GatewayRefusal(.forbidden, .permission, "only keys of the credential's owner may mint its level-2 credentials", key: key)
        }
        var request = outgoing
        do { try venue.signWalletAuth(&request, secret: admission.secret, now: Date()) } catch {
            throw GatewayRefusal(.forbidden, .permission, error.description, key: key)
        }
        do {
            try await audit.append(
                admission.auditEntry(
                    .forward, outcome: .allowed, method: request.method,
                    detail: ["class": CallKind.walletAuth.rawValue]))
        } catch {
            throw GatewayRefusal(.serviceUnavailable, .unavailable, "the audit log cannot be written; the call was not made", key: key)
        }
        if let late = reasonNotToSend() { throw GatewayRefusal(.serviceUnavailable, .unavailable, late, key: key) }
        let answer: (status: Int, body: Data)
        do { answer = try await prices.caller.send(request, origin: base.origin) } catch {
            throw GatewayRefusal(.badGateway, .upstream, "the upstream could not be reached", key: key)
        }
        let status = HTTPResponse.Status(code: answer.status)
        // The answer may hold freshly minted level-2 secrets: it reaches the agent only when it cannot.
        guard (200..<300).contains(answer.status) else {
            guard !Self.mayHoldCredentials(answer.body) else {
                throw GatewayRefusal(
                    .badGateway, .upstream,
                    "the venue refused the level-1 call (\(answer.status)) with an answer naming credentials; it is not passed on",
                    key: key)
            }
            return TradePlan(route: .answer(status: status, body: answer.body), kind: .walletAuth)
        }
        guard let fields = venue.walletAuthFields(answer.body) else {
            throw GatewayRefusal(
                .badGateway, .upstream,
                "the venue's level-1 answer has no readable apiKey, secret and passphrase; it is not passed on", key: key)
        }
        do { try await credentials.merge(fields, intoCredential: admission.credentialID, byKey: key) } catch {
            throw GatewayRefusal(
                .badGateway, .upstream, "the minted credentials could not be stored; the venue's answer is not passed on",
                key: key)
        }
        await keys.sync()  // the next call signs with the minted credentials
        // The SDK goes on with what it gets: its own agent key as the API key, placeholders for the rest.
        let stored = ["apiKey": admission.presentedKey, "secret": "stored-in-warden", "passphrase": "stored-in-warden"]
        return TradePlan(
            route: .answer(status: status, body: (try? JSONSerialization.data(withJSONObject: stored, options: [.sortedKeys])) ?? Data()),
            kind: .walletAuth, audit: ["stored": "true"])
    }

    /// Whether a level-1 answer might carry a credential: a member name at any depth (escapes decoded) or
    /// anything in its text containing `secret`, `passphrase`, `apikey`, `api_key` or `api-key`, in any case.
    static func mayHoldCredentials(_ body: Data) -> Bool {
        let words = ["secret", "passphrase", "apikey", "api_key", "api-key"]
        if let json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) {
            func names(_ value: Any) -> Bool {
                if let object = value as? [String: Any] {
                    return object.contains { name, member in words.contains { name.lowercased().contains($0) } || names(member) }
                }
                if let array = value as? [Any] { return array.contains(where: names) }
                return false
            }
            if names(json) { return true }
        }
        let text = String(decoding: body, as: UTF8.self).lowercased()
        return words.contains { text.contains($0) }
    }
}
