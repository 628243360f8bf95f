import Foundation
import WardenCrypto

/// Polymarket's wallet signatures, made with the key kept in the vault: each CLOB order's EIP-712
/// signature (CTF Exchange domain, or the neg-risk exchange's) and the level-1 `ClobAuth` message.
public struct PolymarketSigning: Sendable {
    public let chainID: UInt64
    public let exchange: String
    public let negRiskExchange: String

    public static let defaultExchange = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
    public static let defaultNegRiskExchange = "0xC5d563A36AE78145C45a50134d48A1215220f80a"

    public init(chainID: UInt64 = 137, exchange: String = Self.defaultExchange, negRiskExchange: String = Self.defaultNegRiskExchange) {
        self.chainID = chainID
        self.exchange = exchange
        self.negRiskExchange = negRiskExchange
    }

    static let orderType =
        "Order(uint256 salt,address maker,address signer,address taker,uint256 tokenId,uint256 makerAmount,"
        + "uint256 takerAmount,uint256 expiration,uint256 nonce,uint256 feeRateBps,uint8 side,uint8 signatureType)"
    static let clobAuthType = "ClobAuth(address address,string timestamp,uint256 nonce,string message)"
    static let clobAuthMessage = "This message attests that I control the given wallet"

    func domain(negRisk: Bool) throws(VenueError) -> [UInt8] {
        guard let contract = EIP712.addressBytes((negRisk ? negRiskExchange : exchange).lowercased()) else {
            throw VenueError("the configured Polymarket exchange address is malformed")
        }
        return EIP712.domainSeparator(name: "Polymarket CTF Exchange", version: "1", chainID: chainID, verifyingContract: contract)
    }

    /// Makes the wallet the order's maker and signer (an EOA order, signature type 0) and signs it;
    /// whatever signature the agent put on it is replaced.
    func sign(order: inout [String: Any], wallet: WalletKey, negRisk: Bool) throws(VenueError) {
        let address = EIP712.checksummed(wallet.address)
        order["maker"] = address
        order["signer"] = address
        order["signatureType"] = 0
        let digest = EIP712.digest(domain: try domain(negRisk: negRisk), structHash: try Self.structHash(order))
        do { order["signature"] = "0x" + Hex.encode(try wallet.sign(digest: digest)) } catch {
            throw VenueError("the order could not be signed with the stored wallet key")
        }
    }

    static func structHash(_ order: [String: Any]) throws(VenueError) -> [UInt8] {
        func word(_ name: String) throws(VenueError) -> [UInt8] {
            let text: String? =
                switch order[name] {
                case let s as String: s
                case let n as NSNumber: n.stringValue
                default: nil
                }
            guard let text, let value = EIP712.uint256(decimal: text) else { throw VenueError("order.\(name) must be a whole number") }
            return value
        }
        func address(_ name: String) throws(VenueError) -> [UInt8] {
            guard let text = order[name] as? String, let bytes = EIP712.addressBytes(text.lowercased()) else {
                throw VenueError("order.\(name) must be a 0x address")
            }
            return EIP712.address(bytes)
        }
        let side: UInt64 =
            switch order["side"] as? String {
            case "BUY": 0;
            case "SELL": 1;
            default: 2
            }
        guard side < 2 else { throw VenueError("order.side must be BUY or SELL") }
        var encoded = EIP712.typeHash(orderType)
        encoded += try word("salt") + address("maker") + address("signer") + address("taker") + word("tokenId")
        encoded += try word("makerAmount") + word("takerAmount") + word("expiration") + word("nonce") + word("feeRateBps")
        encoded += EIP712.uint(side) + EIP712.uint(0)
        return EIP712.keccak(encoded)
    }

    /// The level-1 signature over `ClobAuth` for the wallet's address, a timestamp and a nonce.
    func clobAuth(wallet: WalletKey, timestamp: String, nonce: UInt64) throws(VenueError) -> String {
        let domain = EIP712.domainSeparator(name: "ClobAuthDomain", version: "1", chainID: chainID, verifyingContract: nil)
        let structHash = EIP712.keccak(
            EIP712.typeHash(Self.clobAuthType) + EIP712.address(wallet.address)
                + EIP712.string(timestamp) + EIP712.uint(nonce) + EIP712.string(Self.clobAuthMessage))
        do { return "0x" + Hex.encode(try wallet.sign(digest: EIP712.digest(domain: domain, structHash: structHash))) } catch {
            throw VenueError("the level-1 message could not be signed with the stored wallet key")
        }
    }
}
