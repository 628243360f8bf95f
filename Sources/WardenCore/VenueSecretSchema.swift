import Foundation
import WardenVenues

/// A credential's secret checked against its venue: exactly the venue's fields (and optional ones), each a
/// non-empty string of sane size, then the venue's own checks (docs/operations.md, Management API).
public enum VenueSecretSchema {
    public static func validate(venue name: String, secret: [String: String], venues: VenueRegistry) throws(WardenError) {
        guard let venue = venues.venue(named: name) else {
            throw .invalid("venue", "unknown venue; known venues: \(venues.names.joined(separator: ", "))")
        }
        let fields = venue.secretFields, optional = venue.optionalSecretFields
        for field in fields + optional.filter({ secret[$0] != nil }) {
            guard let value = secret[field] else { throw .invalid("secret.\(field)", "is required for \(name)") }
            guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw .invalid("secret.\(field)", "must not be empty")
            }
            guard value.utf8.count <= 16 * 1024 else { throw .invalid("secret.\(field)", "must be at most 16 KiB") }
        }
        if let extra = secret.keys.sorted().first(where: { !fields.contains($0) && !optional.contains($0) }) {
            throw .invalid(
                "secret.\(extra)", "is not a field of a \(name) credential (expected: \((fields + optional).joined(separator: ", ")))")
        }
        do { try venue.checkSecret(secret) } catch { throw .invalid("secret.\(error.field)", error.reason) }
    }
}

extension VenueRegistry {
    /// The built-in venues and the config's REST services, with the config's Polymarket contracts.
    public static func make(config: WardenConfig) -> VenueRegistry {
        let polymarket = config.venues["polymarket"]
        return VenueRegistry(
            services: config.services.sorted { $0.key < $1.key }.map { name, s in
                RESTServiceVenue(
                    name: name, baseURL: s.baseURL, authHeader: s.authHeader, authValuePrefix: s.authValuePrefix, websocket: s.websocket)
            },
            polymarket: PolymarketSigning(
                chainID: polymarket?.chainID ?? 137,
                exchange: polymarket?.exchangeAddress ?? PolymarketSigning.defaultExchange,
                negRiskExchange: polymarket?.negRiskExchangeAddress ?? PolymarketSigning.defaultNegRiskExchange))
    }
}
