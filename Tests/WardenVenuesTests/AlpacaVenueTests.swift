import Foundation
import HTTPTypes
import Testing
@testable import WardenVenues

@Suite struct AlpacaVenueTests {
    let venue = AlpacaVenue()

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    func order(_ fields: String) -> CallClass {
        classify("POST", "/v2/orders", body: "{\"time_in_force\":\"day\",\(fields)}")
    }

    @Test func sendsTheRealKeyAndSecretInAlpacasHeadersOnly() throws {
        let key = HTTPField.Name("APCA-API-KEY-ID")!, secret = HTTPField.Name("APCA-API-SECRET-KEY")!
        var request = UpstreamRequest(
            method: "POST", path: "/v2/orders", query: "", headers: [key: "agent", secret: "throwaway", .authorization: "Basic eDp5"],
            body: Data("{}".utf8))
        try venue.sign(&request, secret: ["api_key": "PKREAL", "api_secret": "real"], signed: true, now: Date())
        #expect(request.headers[key] == "PKREAL" && request.headers[secret] == "real" && request.headers[.authorization] == nil)
        var read = UpstreamRequest(method: "GET", path: "/v1beta3/crypto/us/bars", query: "", headers: [key: "agent"], body: Data())
        try venue.sign(&read, secret: ["api_key": "PKREAL", "api_secret": "real"], signed: false, now: Date())
        #expect(read.headers[key] == nil)
        #expect(venue.agentKey(in: [key: "wk_1"]) == "wk_1")
        #expect(venue.agentKey(in: [.authorization: "Basic " + Data("wk_2:anything".utf8).base64EncodedString()]) == "wk_2")
    }

    @Test func ordersAreValuedAsAlpacaExecutesThem() {
        #expect(
            order("\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":0.5").orderValue
                == .atMarket(quantity: 0.5, asset: "USD"))
        #expect(
            order("\"symbol\":\"BRK.B\",\"side\":\"sell\",\"type\":\"market\",\"notional\":\"90\"").orderValue == .quote(90, asset: "USD"))
        #expect(
            order("\"symbol\":\"BTC/USDT\",\"side\":\"buy\",\"type\":\"limit\",\"qty\":\"0.002\",\"limit_price\":\"50000\"").orderValue
                == .quote(100, asset: "USDT"))
        #expect(
            order("\"symbol\":\"AAPL\",\"side\":\"sell\",\"type\":\"limit\",\"qty\":\"2\",\"limit_price\":\"1\"").orderValue
                == .atLeastMarket(amount: 2, quantity: 2, asset: "USD", maxPayoff: nil))
    }

    @Test func whatAlpacaCouldReadOtherwiseIsInvalid() {
        for fields in [
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":true",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"qty\":\"500\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"notional\":\"5\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1e2\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"-1\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"limit\",\"notional\":\"5\",\"limit_price\":\"1\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"stop_limit\",\"qty\":\"1\",\"limit_price\":\"1\",\"stop_price\":\"1\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"trailing_stop\",\"qty\":\"1\",\"trail_percent\":\"1\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"order_class\":\"bracket\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"extended_hours\":\"true\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"client_order_id\":7",
            "\"symbol\":\"AAPL\",\"side\":\"Buy\",\"type\":\"market\",\"qty\":\"1\"",
            "\"symbol\":\"aapl\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\"",
            "\"symbol\":\"AAPL240119C00100000\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\"",
            "\"symbol\":\"ETH/BTC\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\"",
            "\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"legs\":[]",
        ] {
            #expect(order(fields).isInvalid, "\(fields)")
        }
        #expect(
            classify(
                "POST", "/v2/orders",
                body: "{\"symbol\":\"AAPL\",\"side\":\"buy\",\"type\":\"market\",\"qty\":\"1\",\"time_in_force\":\"opg\"}"
            ).isInvalid)
        #expect(classify("POST", "/v2/orders", query: "qty=9", body: "{}").isInvalid)
        #expect(classify("DELETE", "/v2/positions").isInvalid && classify("DELETE", "/v2/positions/AAPL").isInvalid)
        #expect(classify("PATCH", "/v2/orders/abc", body: "{}").isInvalid)
    }

    @Test func moneyPathsAreFundMovementAndMarketDataIsReadOnly() {
        for path in [
            "/v2/wallets/transfers", "/v2/WALLETS", "/v1/accounts/a/ach_relationships", "/v1/journals", "/v2/account/withdrawals",
            "/v2/ach", "/v2/recipient_banks",
        ] {
            #expect(classify("POST", path, body: "{}") == .fundMovement && classify("GET", path) == .fundMovement, "\(path)")
        }
        // Symbols in market data paths are never money words (ACHR, BANK).
        #expect(venue.isMarketData("/v2/stocks/ACHR/trades") && classify("GET", "/v2/stocks/ACHR/trades") == .privateRead)
        #expect(classify("GET", "/v1beta3/crypto/us/snapshots", query: "symbols=BTC%2FUSD") == .publicRead)
        #expect(classify("POST", "/v2/stocks/AAPL/trades", body: "{}") == .unknown)
        #expect(!venue.isMarketData("/v2/orders") && !venue.isMarketData("/V2/stocks/AAPL/trades"))
        #expect(classify("DELETE", "/v2/orders/abc") == .cancel && classify("DELETE", "/v2/orders") == .cancel)
        #expect(
            classify("GET", "/v2/positions/AAPL") == .privateRead && classify("POST", "/v2/account/configurations", body: "{}") == .unknown)
    }

    @Test func pricesAtTheHighestOfTheLastTradeAndTheQuote() {
        let stock = OrderIntent(
            instrument: "AAPL", side: .buy, quantity: 1, value: .atMarket(quantity: 1, asset: "USD"), clientOrderID: nil)
        #expect(venue.priceQuery(for: stock, instrument: nil) == PublicQuery(path: "/v2/stocks/snapshots", query: "symbols=AAPL"))
        let body = Data(#"{"AAPL":{"latestTrade":{"p":199.5},"latestQuote":{"ap":200.25,"bp":199.75}}}"#.utf8)
        #expect(venue.parsePrice(body, for: stock) == Decimal(string: "200.25"))
        let crypto = OrderIntent(
            instrument: "BTC/USD", side: .buy, quantity: 1, value: .atMarket(quantity: 1, asset: "USD"), clientOrderID: nil)
        #expect(venue.priceQuery(for: crypto, instrument: nil).query == "symbols=BTC%2FUSD")
        #expect(venue.parsePrice(Data(#"{"snapshots":{"BTC/USD":{"latestTrade":{"p":50000}}}}"#.utf8), for: crypto) == 50000)
        #expect(venue.parsePrice(Data(#"{"snapshots":{"ETH/USD":{"latestTrade":{"p":1}}}}"#.utf8), for: crypto) == nil)
    }
}
