import Foundation
import HTTPTypes
import WardenStore
import WardenVenues

/// Polymarket level 1: minting the venue's API credentials with the stored wallet key.
extension TradingPolicy {
    /// Polymarket level 1: Warden signs with the stored wallet key, keeps the minted credentials in the
    /// vault, and tells the agent only that they are stored. Allowed in dry-run too: it trades nothing.
    /// The call goes out as any other, through the gateway (`GatewayCalls`), then `completeWalletAuth`.
    func walletAuth(
        _ outgoing: UpstreamRequest, _ venue: any ExchangeVenue, _ admission: Admission, _ base: UpstreamBase
    ) throws(GatewayRefusal) -> TradePlan {
        let key = admission.key
        guard admission.ownsCredential else {
            throw GatewayRefusal(.forbidden, .permission, "only keys of the credential's owner may mint its level-2 credentials", key: key)
        }
        var request = outgoing
        do { try venue.signWalletAuth(&request, secret: admission.secret, now: Date()) } catch {
            throw GatewayRefusal(.forbidden, .permission, error.description, key: key)
        }
        return TradePlan(route: .walletAuth(request: request, url: base.url(request)), kind: .walletAuth)
    }

    /// The venue's whole answer to a level-1 call, made safe for the agent: minted credentials are stored
    /// and never handed over; an answer that may hold them and cannot be stored is refused (502). Returns
    /// what the agent gets and details for the result row.
    public func completeWalletAuth(
        status: HTTPResponse.Status, body: Data, venue: any ExchangeVenue, admission: Admission
    ) async throws(GatewayRefusal) -> (status: HTTPResponse.Status, body: Data, detail: [String: String]) {
        let key = admission.key
        // The answer may hold freshly minted level-2 secrets: it reaches the agent only when it cannot.
        guard (200..<300).contains(status.code) else {
            guard !Self.mayHoldCredentials(body) else {
                throw GatewayRefusal(
                    .badGateway, .upstream,
                    "the venue refused the level-1 call (\(status.code)) with an answer naming credentials; it is not passed on",
                    key: key)
            }
            return (status, body, [:])
        }
        guard let fields = venue.walletAuthFields(body) else {
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
        return (status, (try? JSONSerialization.data(withJSONObject: stored, options: [.sortedKeys])) ?? Data(), ["stored": "true"])
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
