import Foundation
import Testing
import WardenCrypto
@testable import WardenVenues

/// EIP-712 digests and signatures against vectors computed independently with eth-account and
/// py-clob-client (tests/vectors/eip712_vectors.py prints them).
@Suite struct PolymarketSigningTests {
    let wallet = try! WalletKey(hex: "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    let signing = PolymarketSigning()

    func order(
        salt: Any, makerAmount: String, takerAmount: String, expiration: String = "0", nonce: String = "0",
        feeRateBps: String = "0", side: String
    ) -> [String: Any] {
        [
            "salt": salt, "maker": "0x0000000000000000000000000000000000000001", "signer": "0x0000000000000000000000000000000000000002",
            "taker": "0x0000000000000000000000000000000000000000",
            "tokenId": "71321045679252212594626385532706912750332728571942532289631379312455583992563",
            "makerAmount": makerAmount, "takerAmount": takerAmount, "expiration": expiration, "nonce": nonce, "feeRateBps": feeRateBps,
            "side": side, "signatureType": 2, "signature": "0xthrowaway",
        ]
    }

    @Test func domainSeparatorsMatch() throws {
        #expect(Hex.encode(try signing.domain(negRisk: false)) == "1a573e3617c78403b5b4b892827992f027b03d4eaf570048b8ee8cdd84d151be")
        #expect(Hex.encode(try signing.domain(negRisk: true)) == "82cb6aa85babb812f4b521a12b10f0cbc68d2b44be7bc02c047004f544adb49f")
        #expect(
            Hex.encode(EIP712.typeHash(PolymarketSigning.orderType)) == "a852566c4e14d00869b6db0220888a9090a13eccdaea03713ff0a3d27bf9767c")
    }

    @Test func aBuyIsSignedAsEthAccountSignsIt() throws {
        var buy = order(salt: NSNumber(value: 479_249_096_354), makerAmount: "5000000", takerAmount: "10000000", side: "BUY")
        try signing.sign(order: &buy, wallet: wallet, negRisk: false)
        #expect(buy["maker"] as? String == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
        #expect(buy["signer"] as? String == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23")
        #expect(buy["signatureType"] as? Int == 0)
        #expect(Hex.encode(try PolymarketSigning.structHash(buy)) == "f363507147bd1c7ec82e95ec825d45642a4e3db57402594044b6e9333d08c0d4")
        #expect(
            buy["signature"] as? String == "0x83315d8178a1d2aef7ae65ef62c219acbe36ff8a074831cfabf55032147bb61a"
                + "34515f3c065ff23ef9d9fb0eda9798d0b0e1c58f91f9379b5aa7af5afdc3fab71b")
        var negRisk = order(salt: "479249096354", makerAmount: "5000000", takerAmount: "10000000", side: "BUY")
        try signing.sign(order: &negRisk, wallet: wallet, negRisk: true)
        #expect(
            negRisk["signature"] as? String == "0xca129669783f11270e8b13b67af5b7f8fc6783eaadab121ffa3ee087a6bef9a9"
                + "06022a21756b48cfe0dfd0d9106ffa4d376c7995c2303c31cb2c2adbaae583a81b")
    }

    @Test func aSellIsSignedAsEthAccountSignsIt() throws {
        var sell = order(
            salt: 1_234_567, makerAmount: "10000000", takerAmount: "6000000", expiration: "1893456000", nonce: "3",
            feeRateBps: "100", side: "SELL")
        try signing.sign(order: &sell, wallet: wallet, negRisk: false)
        #expect(Hex.encode(try PolymarketSigning.structHash(sell)) == "502fa84ca969ac07699805dd6b878ca27ccbfd7a7131d06c78d01264f2fad6b9")
        #expect(
            sell["signature"] as? String == "0xac6aa4ebd733ecb1f2b7cfd2a5dd32b6588ca9e6ee26186fc674822a4e39601e"
                + "1a8a845f9c2b47d8dc03ddc7deb57b8af3b11232109638083a40a60e6e842e381c")
    }

    @Test func theLevelOneMessageIsSignedAsPyClobClientSignsIt() throws {
        #expect(
            try signing.clobAuth(wallet: wallet, timestamp: "1700000000", nonce: 0)
                == "0xaa541ee28fab54d848c37e4d6c69ce3bca78c3c67bbfe102e9736de2589f18573619c82c113a99cbd31a576b4166a9b2964de7a6845770dc4beb1ad757c4ae1d1b"
        )
        #expect(
            try signing.clobAuth(wallet: wallet, timestamp: "1700000000", nonce: 7)
                == "0xf4fd12b24b26f08e011f8292d334f9a25328fd9bb93fc3d3f3b8ce848232a02c460defaded9cb78a7836f6a9b820f18c9868848856600885f9113d55fb8a052f1b"
        )
    }

    @Test func malformedOrdersAreNotSigned() {
        for broken in [
            order(salt: "1", makerAmount: "-5", takerAmount: "1", side: "BUY"),
            order(salt: "1", makerAmount: "5", takerAmount: "1", side: "HOLD"),
            order(salt: "1e9", makerAmount: "5", takerAmount: "1", side: "BUY"),
            order(salt: "1", makerAmount: String(repeating: "9", count: 79), takerAmount: "1", side: "BUY"),
        ] {
            var copy = broken
            #expect(throws: VenueError.self) { try signing.sign(order: &copy, wallet: wallet, negRisk: false) }
        }
    }

    @Test func uint256RefusesWhatDoesNotFit() {
        #expect(EIP712.uint256(decimal: "115792089237316195423570985008687907853269984665640564039457584007913129639935") != nil)
        #expect(EIP712.uint256(decimal: "115792089237316195423570985008687907853269984665640564039457584007913129639936") == nil)
        #expect(EIP712.uint256(decimal: "") == nil)
        #expect(EIP712.uint256(decimal: "12a") == nil)
    }
}
