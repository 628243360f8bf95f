import Foundation
import HTTPTypes
import Testing
import WardenCrypto
@testable import WardenVenues

/// Signatures match the ones hyperliquid-python-sdk makes for the same wallet, action and nonce (deterministic
/// ECDSA on both sides); actions are read strictly and written back in Hyperliquid's order.
@Suite struct HyperliquidVenueTests {
    let venue = HyperliquidVenue()
    let secret = ["private_key": "0x" + String(repeating: "11", count: 32)]

    func classify(_ body: String, path: String = "/exchange") -> CallClass {
        venue.classify(ExchangeCall(method: "POST", path: path, query: "", body: Data(body.utf8)))
    }

    func order(_ fields: String, grouping: String = "na") -> String {
        #"{"action":{"type":"order","orders":[{"# + fields + #"}],"grouping":""# + grouping + #""},"nonce":1,"signature":{}}"#
    }

    @Test func signsAnOrderAsTheSDKDoes() throws {
        // The agent's member order and number spelling differ from the canonical; its signature and nonce are its own.
        let body =
            #"{"signature":{"r":"0x1","s":"0x2","v":27},"nonce":5,"action":{"grouping":"na","orders":[{"t":{"limit":{"tif":"Gtc"}},"r":false,"s":"0.0010","p":"50000.0","b":true,"a":0}],"type":"order"},"vaultAddress":null}"#
        guard case .order(let intent) = classify(body) else { Issue.record("not an order"); return }
        #expect(intent.value == .quote(50, asset: "USDC") && intent.instrument == "0")
        var request = UpstreamRequest(method: "POST", path: "/exchange", query: "", headers: [:], body: Data(body.utf8))
        try venue.sign(&request, secret: secret, nonce: 1_700_000_000_000)
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == #"{"action":{"type":"order","orders":[{"a":0,"b":true,"p":"50000","s":"0.001","r":false,"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"},"nonce":1700000000000,"signature":{"r":"0x165557f96a7c54bd2834d6b82912d77271b2c6aaa3b1dbcbc4b1d5ff8e5b8030","s":"0x5782ec42a42ed79f45d180f9be76c48b41f8f1e0c84e7bb6b7b4acf30fa3b83a","v":27},"vaultAddress":null,"expiresAfter":null}"#
        )
    }

    @Test func signsALeverageChangeAsTheSDKDoes() throws {
        let body = #"{"action":{"type":"updateLeverage","asset":1,"isCross":true,"leverage":7},"nonce":1}"#
        #expect(classify(body) == .leverage(LeverageChange(instrument: "1", leverage: 7)))
        var request = UpstreamRequest(method: "POST", path: "/exchange", query: "", headers: [:], body: Data(body.utf8))
        try venue.sign(&request, secret: secret, nonce: 1_700_000_000_001)
        let signature = VenueJSON.object(request.body)?["signature"] as? [String: Any]
        #expect(signature?["r"] as? String == "0x6e28fafef6b851da438312d252542d8121cec466f04b07e83ac5733c1c4287ab")
        #expect(signature?["s"] as? String == "0x7d241a5bf0a8fd72e46e7e3b241e6449c07e87fdb3e3b730c02aedd80f90c518")
    }

    @Test func messagePackIsInItsShortestForms() {
        let wire = OrderedWire.map([
            ("a", .uint(127)), ("b", .uint(128)), ("c", .uint(65_536)), ("d", .bool(true)), ("e", .null),
            ("f", .string(String(repeating: "x", count: 40))), ("g", .array([.uint(1)])),
        ])
        let packed = wire.messagePack
        #expect(Array(packed.prefix(4)) == [0x87, 0xa1, 0x61, 0x7f])
        #expect(packed.contains(0xcc) && packed.contains(0xce) && packed.contains(0xc3) && packed.contains(0xc0) && packed.contains(0xd9))
    }

    @Test func sellsAtLeastAtTheMarketAndBatchesOrderByOrder() {
        guard case .order(let sell) = classify(order(#""a":1,"b":false,"p":"1","s":"2","r":true,"t":{"limit":{"tif":"Ioc"}}"#)) else {
            Issue.record("not an order")
            return
        }
        #expect(sell.value == .atLeastMarket(amount: 2, quantity: 2, asset: "USDC", maxPayoff: nil))
        let two =
            #"{"action":{"type":"batchModify","modifies":[{"oid":1,"order":{"a":0,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}}},{"oid":"0x00000000000000000000000000000001","order":{"a":0,"b":true,"p":"2","s":"1","r":false,"t":{"limit":{"tif":"Alo"}}}}]}}"#
        guard case .orders(let orders) = classify(two) else { Issue.record("not a batch"); return }
        #expect(orders.map(\.value) == [.quote(1, asset: "USDC"), .quote(2, asset: "USDC")])
    }

    @Test func whatHyperliquidCouldReadOtherwiseIsInvalid() {
        for fields in [
            #""a":0,"b":1,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":0,"b":true,"p":1,"s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":0,"b":true,"p":"1e3","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":0,"b":true,"p":"1","s":"-1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":-1,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":0.5,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":10000,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
            #""a":0,"b":true,"p":"1","s":"1","r":false,"t":{"trigger":{"isMarket":true,"triggerPx":"1","tpsl":"tp"}}"#,
            #""a":0,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"FrontendMarket"}}"#,
            #""a":0,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}},"c":"0xABC"#,
            #""a":0,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}},"x":1"#,
            #""a":0,"b":true,"p":"1","s":"1","s":"9","r":false,"t":{"limit":{"tif":"Gtc"}}"#,
        ] {
            #expect(classify(order(fields)).isInvalid, "\(fields)")
        }
        let plain = #""a":0,"b":true,"p":"1","s":"1","r":false,"t":{"limit":{"tif":"Gtc"}}"#
        #expect(classify(order(plain, grouping: "normalTpsl")).isInvalid)
        #expect(
            classify(#"{"action":{"type":"order","orders":[{"# + plain + #"}],"grouping":"na","builder":{"b":"0x1","f":10}}}"#).isInvalid)
        #expect(classify(#"{"action":{"type":"order","orders":[{"# + plain + #"}],"grouping":"na"},"vaultAddress":"0x1"}"#).isInvalid)
    }

    @Test func fundMovementAndUnknownActions() {
        for type in [
            "usdSend", "withdraw3", "spotSend", "usdClassTransfer", "vaultTransfer", "approveAgent", "approveBuilderFee",
            "sendAsset", "multiSig", "cDeposit", "tokenDelegate", "subAccountTransfer", "someNewWithdrawal", "UsdSend",
        ] {
            #expect(classify(#"{"action":{"type":""# + type + #"","amount":"1"}}"#) == .fundMovement, "\(type)")
        }
        #expect(classify(#"{"action":{"type":"updateIsolatedMargin","asset":0,"isBuy":true,"ntli":1}}"#) == .unknown)
        #expect(classify(#"{"action":{"type":"cancel","cancels":[{"a":0,"o":12}]}}"#) == .cancel)
        #expect(classify(#"{"type":"allMids"}"#, path: "/info") == .publicRead)
        // An action anywhere but /exchange is never valued or signed, whatever allow_endpoints opens.
        #expect(classify(#"{"action":{"type":"updateLeverage","asset":0,"isCross":true,"leverage":50}}"#, path: "/v1/exchange").isInvalid)
        #expect(classify(#"{"action":{"type":"usdSend","amount":"1"}}"#, path: "/v1/exchange") == .fundMovement)
        #expect(classify(#"{"x":1}"#, path: "/v1/exchange") == .unknown)
        // Nor with any method but POST.
        for method in ["GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let body = Data(#"{"action":{"type":"updateLeverage","asset":0,"isCross":true,"leverage":50}}"#.utf8)
            #expect(venue.classify(ExchangeCall(method: method, path: "/exchange", query: "", body: body)).isInvalid, "\(method)")
            let send = Data(#"{"action":{"type":"usdSend","amount":"1"}}"#.utf8)
            #expect(venue.classify(ExchangeCall(method: method, path: "/info", query: "", body: send)) == .fundMovement, "\(method)")
        }
        var get = UpstreamRequest(
            method: "GET", path: "/exchange", query: "", headers: [:],
            body: Data(#"{"action":{"type":"cancel","cancels":[{"a":0,"o":1}]}}"#.utf8))
        #expect(throws: VenueError.self) { try venue.sign(&get, secret: secret, nonce: 1) }
        #expect(venue.classify(ExchangeCall(method: "GET", path: "/info", query: "", body: Data())) == .unknown)
    }

    @Test func pricesAtTheHighestOfMarkMidAndOracle() {
        let intent = OrderIntent(
            instrument: "1", side: .sell, quantity: 1, value: .atMarket(quantity: 1, asset: "USDC"), clientOrderID: nil)
        let body = Data(
            #"[{"universe":[{"name":"BTC"},{"name":"ETH"}]},[{"markPx":"50000"},{"markPx":"2500.5","midPx":"2501","oraclePx":"2499"}]]"#
                .utf8)
        #expect(venue.parsePrice(body, for: intent) == 2501)
        #expect(venue.parsePrice(Data(#"[{"universe":[{"name":"BTC"}]},[{"markPx":"1"}]]"#.utf8), for: intent) == nil)
    }
}
