import CryptoExtras
import Foundation
import WardenCrypto

/// The secret fields each venue's credential must carry (docs/operations.md, Management API), and their checks.
public enum VenueSecretSchema {
    public static func requiredFields(venue: String, services: Set<String>) -> [String]? {
        switch venue {
        case "openai", "anthropic": ["api_key"]
        case "binance": ["api_key", "api_secret"]
        case "kalshi": ["key_id", "private_key_pem"]
        case "polymarket": ["api_key", "api_secret", "passphrase", "address"]
        default: services.contains(venue) ? ["token"] : nil
        }
    }

    /// Fields a venue's credential may carry besides the required ones.
    public static func optionalFields(venue: String) -> [String] {
        venue == "polymarket" ? ["private_key"] : []
    }

    /// Checks that `secret` has exactly the venue's fields (and optional ones), each a non-empty string of sane size.
    public static func validate(venue: String, secret: [String: String], services: Set<String>) throws(WardenError) {
        guard let fields = requiredFields(venue: venue, services: services) else {
            let known = (["openai", "anthropic", "binance", "kalshi", "polymarket"] + services.sorted()).joined(separator: ", ")
            throw .invalid("venue", "unknown venue; known venues: \(known)")
        }
        let optional = optionalFields(venue: venue)
        for field in fields + optional.filter({ secret[$0] != nil }) {
            guard let value = secret[field] else { throw .invalid("secret.\(field)", "is required for \(venue)") }
            guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw .invalid("secret.\(field)", "must not be empty")
            }
            guard value.utf8.count <= 16 * 1024 else { throw .invalid("secret.\(field)", "must be at most 16 KiB") }
        }
        if let extra = secret.keys.sorted().first(where: { !fields.contains($0) && !optional.contains($0) }) {
            throw .invalid("secret.\(extra)", "is not a field of a \(venue) credential (expected: \((fields + optional).joined(separator: ", ")))")
        }
        if venue == "kalshi", let pem = secret["private_key_pem"] {
            guard (try? _RSA.Signing.PrivateKey(pemRepresentation: pem)) != nil else {
                throw .invalid("secret.private_key_pem", "is not a PEM-encoded RSA private key")
            }
        }
        if venue == "polymarket", let address = secret["address"] {
            guard address.range(of: "^0x[0-9a-fA-F]{40}$", options: .regularExpression) != nil else {
                throw .invalid("secret.address", "must be a 0x-prefixed 20-byte hex address")
            }
            if let key = secret["private_key"] {
                guard let wallet = try? WalletKey(hex: key) else {
                    throw .invalid("secret.private_key", "must be a secp256k1 private key: 64 hex digits, with or without 0x")
                }
                guard wallet.addressHex == address.lowercased() else {
                    throw .invalid("secret.address", "is not the address of secret.private_key")
                }
            }
        }
    }
}
