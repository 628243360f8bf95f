import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import Testing
@testable import WardenVenues
import WardenCrypto

/// Signing against the venues' published examples, and classification that no spelling gets past.
@Suite struct BinanceVenueTests {
    let venue = BinanceVenue()
    /// The example key of Binance's API documentation ("SIGNED endpoint examples").
    let secret = [
        "api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        "api_secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    ]

    func request(query: String, body: String) -> UpstreamRequest {
        UpstreamRequest(method: "POST", path: "/api/v3/order", query: query, headers: [:], body: Data(body.utf8))
    }

    @Test func signsTheQueryStringAsTheDocumentationShows() throws {
        var r = request(
            query: "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559",
            body: "")
        try venue.sign(&r, secret: secret, signed: true, now: Date())
        #expect(r.query.hasSuffix("&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"))
        #expect(r.headers[HTTPField.Name("X-MBX-APIKEY")!] == secret["api_key"])
    }

    @Test func signsQueryAndBodyTogetherAndReplacesTheAgentsSignature() throws {
        var r = request(
            query: "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC",
            body: "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=deadbeef")
        try venue.sign(&r, secret: secret, signed: true, now: Date())
        #expect(r.query == "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC")
        #expect(
            String(decoding: r.body, as: UTF8.self)
                == "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
        )
    }

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    @Test(arguments: [
        "/sapi/v1/capital/withdraw/apply", "/SAPI/V1/CAPITAL/WITHDRAW/APPLY", "/sapi/v1/capital/Withdraw/apply",
        "/sapi/v1/asset/transfer", "/sapi/v1/sub-account/transfer/subToSub", "/sapi/v1/futures/transfer",
        "/sapi/v1/margin/isolated/transfer", "/sapi/v1/asset/dust", "/sapi/v1/localentity/withdraw/apply", "/wapi/v3/withdraw.html",
        "/sapi/v1/giftcard/createCode", "/api/v3/withdraw", "/sapi/v1/broker/universalTransfer",
    ])
    func fundMovementIsRecognisedInAnySpelling(path: String) {
        #expect(classify("POST", path, body: "coin=USDT&amount=1") == .fundMovement)
        #expect(classify("GET", path) == .fundMovement)
    }

    @Test func ordersArePricedFromTheirOwnFields() {
        guard
            case .order(let limit) = classify(
                "POST", "/api/v3/order", body: "symbol=ETHBTC&side=BUY&type=LIMIT&quantity=2&price=0.05&timestamp=1")
        else { Issue.record("not an order"); return }
        #expect(limit.value == .quote(Decimal(string: "0.1")!, asset: "BTC"))
        guard case .order(let market) = classify("POST", "/api/v3/order", query: "symbol=BTCFDUSD&side=SELL&type=MARKET&quantity=0.5")
        else { Issue.record("not an order"); return }
        #expect(market.value == .atMarket(quantity: Decimal(string: "0.5")!, asset: "FDUSD"))
        guard
            case .order(let quote) = classify(
                "POST", "/api/v3/order", body: "symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=25&newClientOrderId=a1")
        else { Issue.record("not an order"); return }
        #expect(quote.value == .quote(25, asset: "USDT"))
        #expect(quote.clientOrderID == "a1")
        guard
            case .order(let stop) = classify("POST", "/api/v3/order", body: "symbol=BTCUSDT&side=BUY&type=STOP_LOSS&quantity=1&stopPrice=1")
        else { Issue.record("not an order"); return }
        guard case .undetermined = stop.value else { Issue.record("a STOP_LOSS order was priced: \(stop.value)"); return }
        // A limit sell below the market fills at the market: it is worth at least the market's value.
        guard case .order(let sell) = classify("POST", "/api/v3/order", body: "symbol=BTCUSDT&side=SELL&type=LIMIT&quantity=1&price=100")
        else { Issue.record("not an order"); return }
        #expect(sell.value == .atLeastMarket(amount: 100, quantity: 1, asset: "USDT", maxPayoff: nil))
    }

    @Test(arguments: [
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&quantity=100", ""),  // duplicate in the body
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&price=1", "quantity=1&symbol=ETHUSDT"),  // duplicate across query and body
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=1&Quantity=100", ""),  // unknown (case-changed) name
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&%71uantity=100&price=1", ""),  // encoded name
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1e3&price=1", ""),  // exponent
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=-1&price=1", ""),  // sign
        ("symbol=BTCUSDT&side=buy&type=LIMIT&quantity=1&price=1", ""),  // lower-case side
        ("symbol=btcusdt&side=BUY&type=LIMIT&quantity=1&price=1", ""),  // lower-case symbol
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&quoteOrderQty=10", ""),  // both sizes
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&quoteOrderQty=10&price=1", ""),  // quoteOrderQty on a LIMIT
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&price=1", ""),  // a price on a MARKET order
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0", ""),  // zero
        ("symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.000", ""),  // zero, written long
        // pegged: trades at the book
        ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=1&price=1&pegPriceType=MARKET_PEG", ""),
    ])
    func ambiguousOrdersAreInvalid(query: String, body: String) {
        guard case .invalid = classify("POST", "/api/v3/order", query: query, body: body) else {
            Issue.record("accepted: \(query) | \(body)")
            return
        }
    }

    @Test func knownReadsPassAndEverythingElseIsUnknown() {
        #expect(classify("GET", "/api/v3/ticker/price", query: "symbol=BTCUSDT") == .publicRead)
        #expect(classify("GET", "/api/v3/account", query: "timestamp=1") == .privateRead)
        #expect(classify("DELETE", "/api/v3/order", body: "symbol=BTCUSDT&orderId=1") == .cancel)
        #expect(classify("DELETE", "/api/v3/openOrders", body: "symbol=BTCUSDT") == .unknown)
        #expect(classify("POST", "/api/v3/account") == .unknown)
        #expect(classify("GET", "/API/v3/account") == .unknown)
        #expect(classify("GET", "/sapi/v1/rebate/taxQuery") == .unknown)
        #expect(classify("POST", "/sapi/v1/userDataStream") == .unknown)
    }

    /// The `/sapi` reads ccxt and python-binance make, written out here rather than read from the venue's
    /// table, so that an entry dropped or changed there fails.
    static let sapiPrivateReads = [
        "/sapi/v1/capital/config/getall", "/sapi/v1/capital/deposit/hisrec", "/sapi/v1/capital/deposit/address",
        "/sapi/v1/capital/withdraw/history", "/sapi/v1/asset/assetDetail", "/sapi/v1/asset/tradeFee", "/sapi/v1/asset/assetDividend",
        "/sapi/v1/asset/dribblet", "/sapi/v1/accountSnapshot", "/sapi/v1/account/status", "/sapi/v1/account/apiTradingStatus",
        "/sapi/v1/account/apiRestrictions", "/sapi/v1/margin/allPairs", "/sapi/v1/margin/allAssets", "/sapi/v1/margin/pair",
        "/sapi/v1/margin/asset", "/sapi/v1/margin/priceIndex", "/sapi/v1/margin/isolated/allPairs", "/sapi/v1/margin/isolated/pair",
        "/sapi/v1/margin/account", "/sapi/v1/margin/isolated/account", "/sapi/v1/margin/crossMarginData",
        "/sapi/v1/margin/interestHistory", "/sapi/v1/margin/interestRateHistory", "/sapi/v1/margin/openOrders",
        "/sapi/v1/margin/allOrders", "/sapi/v1/margin/order", "/sapi/v1/margin/myTrades",
    ]

    @Test func listedSapiReadsAreReadsOnlyByGetOnTheirExactPath() {
        #expect(classify("GET", "/sapi/v1/system/status") == .publicRead)
        #expect(classify("HEAD", "/sapi/v1/system/status") == .publicRead)
        #expect(BinanceVenue.sapiReads.count == Self.sapiPrivateReads.count + 1, "an endpoint was listed without a test")
        for path in Self.sapiPrivateReads {
            #expect(classify("GET", path, query: "recvWindow=5000&timestamp=1&signature=ab") == .privateRead, "GET \(path)")
            #expect(classify("HEAD", path) == .privateRead, "HEAD \(path)")
            // The same path written another way, or with a method that writes, is not the listed read: in a
            // money family it is fund movement.
            for method in ["POST", "PUT", "DELETE", "PATCH"] {
                #expect(classify(method, path, body: "asset=USDT&amount=1&timestamp=1") == .fundMovement, "\(method) \(path)")
            }
            #expect(classify("GET", path.uppercased()) == .fundMovement, "GET \(path.uppercased())")
            #expect(classify("GET", path + "/x") == .fundMovement, "GET \(path)/x")
        }
        // Ambiguous parameters are refused on a read as on an order.
        guard case .invalid = classify("GET", "/sapi/v1/margin/allPairs", query: "symbol=BTCUSDT", body: "symbol=ETHUSDT") else {
            Issue.record("a parameter named twice passed")
            return
        }
    }

    @Test(arguments: [
        // Borrowing and repaying
        ("POST", "/sapi/v1/margin/loan"), ("GET", "/sapi/v1/margin/loan"), ("POST", "/sapi/v1/margin/repay"),
        ("GET", "/sapi/v1/margin/repay"), ("POST", "/sapi/v1/margin/borrow-repay"), ("GET", "/sapi/v1/margin/borrow-repay"),
        ("POST", "/sapi/v1/margin/order"), ("DELETE", "/sapi/v1/margin/openOrders"), ("POST", "/sapi/v1/margin/isolated/account"),
        ("DELETE", "/sapi/v1/margin/isolated/account"), ("POST", "/sapi/v1/margin/max-leverage"), ("POST", "/sapi/v1/margin/allPairs"),
        ("GET", "/sapi/v1/margin/maxBorrowable"), ("POST", "/sapi/v1/loan/borrow"), ("POST", "/sapi/v2/loan/flexible/borrow"),
        ("POST", "/sapi/v1/loan/vip/borrow"),
        // Transfers and withdrawals
        ("POST", "/sapi/v1/margin/transfer"), ("GET", "/sapi/v1/margin/transfer"), ("POST", "/sapi/v1/capital/withdraw/apply"),
        ("GET", "/sapi/v1/capital/withdraw/apply"), ("POST", "/sapi/v1/capital/withdraw/history"),
        ("DELETE", "/sapi/v1/capital/withdraw/history"), ("GET", "/sapi/v1/capital/withdraw/History"),
        ("GET", "/sapi/v1/capital/WITHDRAW/history"), ("GET", "/sapi/v2/capital/withdraw/history"),
        ("POST", "/sapi/v1/asset/transfer"), ("GET", "/sapi/v1/asset/transfer"), ("POST", "/sapi/v1/asset/dust"),
        ("POST", "/sapi/v1/asset/dust-btc"), ("POST", "/sapi/v3/asset/getUserAsset"), ("POST", "/sapi/v1/asset/get-funding-asset"),
        ("POST", "/sapi/v1/capital/deposit/credit-apply"), ("POST", "/sapi/v1/capital/newAddress"),
        ("POST", "/sapi/v1/sub-account/virtualSubAccount"), ("POST", "/sapi/v1/managed-subaccount/deposit"),
        ("POST", "/sapi/v1/futures/transfer"), ("POST", "/sapi/v1/fiat/withdraw"), ("POST", "/sapi/v1/pay/transfer"),
        ("POST", "/sapi/v1/giftcard/createCode"), ("POST", "/sapi/v1/broker/subAccount"),
        // Converting, subscribing, redeeming, staking
        ("POST", "/sapi/v1/convert/getQuote"), ("POST", "/sapi/v1/convert/acceptQuote"), ("POST", "/sapi/v1/convert/limit/placeOrder"),
        ("POST", "/sapi/v1/simple-earn/flexible/subscribe"), ("POST", "/sapi/v1/simple-earn/flexible/redeem"),
        ("POST", "/sapi/v1/simple-earn/locked/subscribe"), ("POST", "/sapi/v1/simple-earn/locked/redeem"),
        ("POST", "/sapi/v1/staking/purchase"), ("POST", "/sapi/v2/eth-staking/eth/stake"), ("POST", "/sapi/v1/sol-staking/sol/redeem"),
        ("POST", "/sapi/v1/lending/daily/purchase"), ("POST", "/sapi/v1/bswap/liquidityAdd"), ("POST", "/sapi/v1/dci/product/subscribe"),
        ("POST", "/sapi/v1/blvt/subscribe"), ("POST", "/sapi/v1/portfolio/repay"), ("POST", "/sapi/v1/mining/hash-transfer/config"),
        ("POST", "/sapi/v1/nft/withdraw"),
        // Account settings
        ("POST", "/sapi/v1/account/enableFastWithdrawSwitch"), ("POST", "/sapi/v1/account/disableFastWithdrawSwitch"),
        ("POST", "/sapi/v1/account/apiRestrictions/ipRestriction"), ("GET", "/sapi/v1/account/apiRestrictions/ipRestriction"),
        ("POST", "/sapi/v1/account/status"), ("POST", "/sapi/v1/bnbBurn"), ("GET", "/sapi/v1/bnbBurn"),
        // Unlisted reads in a money family stay fund movement until listed
        ("GET", "/sapi/v1/capital/deposit/subAddress"), ("GET", "/sapi/v1/margin/newRead"), ("GET", "/sapi/v9/margin/allPairs"),
        ("GET", "/SAPI/V1/MARGIN/ALLPAIRS"), ("GET", "/wapi/v3/depositHistory.html"),
        // Other spellings of a money call: a format suffix, no version, a doubled prefix
        ("POST", "/sapi/v1/bnbBurn.json"), ("POST", "/sapi/v1/margin.json/borrow-repay"), ("POST", "/sapi/margin/borrow-repay"),
        ("POST", "/sapi/sapi/v1/margin/loan"), ("POST", "/sapi/v1/x/capital/withdraw.xml/apply"), ("POST", "/sapi/v1/wapi/any"),
    ])
    func sapiWritesAndUnlistedCallsInMoneyFamiliesAreFundMovement(method: String, path: String) {
        #expect(classify(method, path, body: method == "GET" ? "" : "asset=USDT&amount=1&timestamp=1") == .fundMovement)
    }

    @Test func aClientOrderIdGoesWhereTheParametersAre() throws {
        let order = OrderIntent(instrument: "BTCUSDT", side: .buy, quantity: 1, value: .usd(1), clientOrderID: nil)
        var inBody = request(query: "", body: "symbol=BTCUSDT")
        try venue.prepareOrder(order, clientOrderID: "wdn-1", in: &inBody, secret: [:], market: nil)
        #expect(String(decoding: inBody.body, as: UTF8.self) == "symbol=BTCUSDT&newClientOrderId=wdn-1")
        var inQuery = request(query: "symbol=BTCUSDT", body: "")
        try venue.prepareOrder(order, clientOrderID: "wdn-1", in: &inQuery, secret: [:], market: nil)
        #expect(inQuery.query == "symbol=BTCUSDT&newClientOrderId=wdn-1")
    }
}

/// Futures share Spot's signature; what differs is what a call is worth and what it may change.
@Suite struct BinanceFuturesVenueTests {
    let venue = BinanceFuturesVenue()

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    @Test func anOrderIsWorthItsNotionalAtTheMarkWhereItCanFillThere() {
        let order = "symbol=BTCUSDT&quantity=0.5&timestamp=1"
        #expect(
            classify("POST", "/fapi/v1/order", body: order + "&side=BUY&type=LIMIT&price=40000").orderValue
                == .quote(20000, asset: "USDT"))
        #expect(
            classify("POST", "/fapi/v1/order", body: order + "&side=SELL&type=LIMIT&price=40000").orderValue
                == .atLeastMarket(amount: 20000, quantity: 0.5, asset: "USDT", maxPayoff: nil))
        #expect(
            classify("POST", "/fapi/v1/order", query: order, body: "side=SELL&type=MARKET").orderValue
                == .atMarket(quantity: 0.5, asset: "USDT"))
        #expect(
            venue.priceQuery(
                for: OrderIntent(instrument: "ETHUSDC", side: .buy, quantity: 1, value: .usd(1), clientOrderID: nil), instrument: nil)
                == PublicQuery(path: "/fapi/v1/premiumIndex", query: "symbol=ETHUSDC"))
    }

    @Test(arguments: [
        "type=STOP_MARKET&stopPrice=1", "type=LIMIT&price=1&priceMatch=OPPONENT", "type=MARKET&closePosition=true",
        "type=TRAILING_STOP_MARKET&callbackRate=1", "type=STOP&price=1&stopPrice=1", "type=LIMIT", "type=MARKET&price=5",
        "type=MARKET&quoteOrderQty=5", "type=MARKET&leverage=5", "type=MARKET&reduceOnly=1", "type=market",
        "type=MARKET&quantity=2", "type=MARKET&side=BUY",
    ])
    func ordersWardenCannotValueOrThatBinanceWouldReadOtherwiseAreInvalid(extra: String) {
        let call = classify("POST", "/fapi/v1/order", body: "symbol=BTCUSDT&side=SELL&quantity=1&timestamp=1&" + extra)
        #expect(call.isInvalid, "\(extra): \(call)")
    }

    @Test func leverageIsAWholeNumberForOnePerpetual() {
        #expect(
            classify("POST", "/fapi/v1/leverage", body: "symbol=BTCUSDT&leverage=20&timestamp=1")
                == .leverage(LeverageChange(instrument: "BTCUSDT", leverage: 20)))
        for bad in [
            "symbol=BTCUSDT&leverage=+5", "symbol=BTCUSDT&leverage=5.0", "symbol=BTCUSDT&leverage=1e2", "symbol=BTCUSDT&leverage=0",
            "symbol=BTCUSDT&leverage=1000", "symbol=BTCUSDT&leverage=5&leverage=50", "symbol=BTCUSDT_250328&leverage=5",
            "symbol=btcusdt&leverage=5", "leverage=5", "symbol=BTCUSDT&leverage=5&dualSidePosition=true",
        ] {
            #expect(classify("POST", "/fapi/v1/leverage", body: bad).isInvalid, "\(bad)")
        }
        #expect(classify("POST", "/fapi/v1/leverage", query: "leverage=5", body: "symbol=BTCUSDT&leverage=50").isInvalid)
    }

    @Test func transfersNeverAndWhatIsNotListedIsUnknown() {
        for path in [
            "/sapi/v1/futures/transfer", "/fapi/v1/transfer", "/fapi/v1/Withdraw", "/sapi/v1/asset/transfer", "/wapi/v3/withdraw.html",
        ] {
            #expect(classify("POST", path, body: "asset=USDT&amount=1") == .fundMovement, "\(path)")
        }
        for (method, path) in [
            ("PUT", "/fapi/v1/order"), ("POST", "/fapi/v1/batchOrders"), ("POST", "/fapi/v1/algoOrder"), ("POST", "/fapi/v1/marginType"),
            ("POST", "/fapi/v1/positionMargin"), ("POST", "/fapi/v1/Leverage"), ("POST", "/fapi/v2/leverage"), ("GET", "/fapi/v1/leverage"),
            ("POST", "/fapi/v1/account"), ("POST", "/api/v3/order"),
        ] {
            #expect(classify(method, path) == .unknown, "\(method) \(path)")
        }
        #expect(classify("GET", "/fapi/v3/account") == .privateRead && classify("HEAD", "/fapi/v1/premiumIndex") == .publicRead)
        #expect(classify("DELETE", "/fapi/v1/allOpenOrders") == .cancel && classify("POST", "/fapi/v1/order/test") == .privateRead)
    }
}

extension CallClass {
    var orderValue: OrderValue? { if case .order(let order) = self { order.value } else { nil } }
    var isInvalid: Bool { if case .invalid = self { true } else { false } }
}

@Suite struct KrakenVenueTests {
    let venue = KrakenVenue()

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    /// The example of Kraken's REST authentication guide, nonce and signature included.
    @Test func signsAsKrakensGuideShows() throws {
        let secret = [
            "api_key": "key", "api_secret": "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==",
        ]
        var request = UpstreamRequest(
            method: "POST", path: "/0/private/AddOrder", query: "", headers: [:],
            body: Data("nonce=1&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25".utf8))
        try venue.sign(&request, secret: secret, nonce: 1_616_492_376_594)
        #expect(
            String(decoding: request.body, as: UTF8.self)
                == "nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25")
        #expect(
            request.headers[HTTPField.Name("API-Sign")!]
                == "4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==")
        #expect(throws: VenueError.self) { try venue.sign(&request, secret: secret, signed: true, now: Date()) }
        #expect(venue.nonceScope(secret) == venue.nonceScope(["api_key": "key", "api_secret": "other"]))
        #expect(venue.nonceScope(secret)?.contains("key") == false)
    }

    @Test func ordersAreValuedAndWhatKrakenCouldReadOtherwiseIsInvalid() {
        let order = "nonce=1&pair=XBTUSD&volume=0.5&"
        #expect(
            classify("POST", "/0/private/AddOrder", body: order + "type=buy&ordertype=limit&price=40000").orderValue
                == .quote(20000, asset: "USD"))
        #expect(
            classify("POST", "/0/private/AddOrder", body: order + "type=sell&ordertype=limit&price=40000").orderValue
                == .atLeastMarket(amount: 20000, quantity: 0.5, asset: "USD", maxPayoff: nil))
        #expect(
            classify("POST", "/0/private/AddOrder", body: "pair=XXBTZUSD&volume=2&type=buy&ordertype=market").orderValue
                == .atMarket(quantity: 2, asset: "USD"))
        for bad in [
            "type=buy&ordertype=market&leverage=2", "type=buy&ordertype=market&oflags=viqc", "type=buy&ordertype=market&oflags=post,viqc",
            "type=buy&ordertype=market&validate=true", "type=buy&ordertype=market&validate=1", "type=buy&ordertype=limit&price=%2B10",
            "type=buy&ordertype=limit&price=5%25", "type=buy&ordertype=stop-loss&price=1", "type=Buy&ordertype=market",
            "type=buy&ordertype=market&volume=9", "type=buy&ordertype=market&close%5Bordertype%5D=limit",
            "type=buy&ordertype=market&price=1",
            "type=buy&ordertype=market&displayvol=1", "type=buy&ordertype=market&reduce_only=yes", "type=buy&ordertype=market&pair=XBTEUR",
        ] {
            #expect(classify("POST", "/0/private/AddOrder", body: order + bad).isInvalid, "\(bad)")
        }
        #expect(classify("POST", "/0/private/AddOrder", query: "volume=9", body: order + "type=buy&ordertype=market").isInvalid)
    }

    @Test func fundMovementNeverAndWebSocketTokensAreUnknown() {
        for name in ["Withdraw", "WithdrawCancel", "WalletTransfer", "Stake", "Unstake", "Earn/Allocate", "CreateSubaccount", "withdraw"] {
            #expect(classify("POST", "/0/private/" + name, body: "nonce=1") == .fundMovement, "\(name)")
        }
        for name in ["GetWebSocketsToken", "AddOrderBatch", "EditOrder", "AmendOrder", "balance"] {
            #expect(classify("POST", "/0/private/" + name, body: "nonce=1") == .unknown, "\(name)")
        }
        #expect(
            classify("GET", "/0/private/Balance") == .unknown && classify("POST", "/0/private/Balance", body: "nonce=1") == .privateRead)
        #expect(
            classify("GET", "/0/public/Ticker", query: "pair=XBTUSD") == .publicRead && classify("POST", "/0/public/Ticker") == .unknown)
        #expect(classify("POST", "/0/private/CancelOrder", body: "nonce=1&txid=O1") == .cancel)
    }
}

@Suite struct BybitVenueTests {
    let venue = BybitVenue()

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    func order(_ fields: String) -> CallClass {
        classify("POST", "/v5/order/create", body: "{\"symbol\":\"BTCUSDT\",\(fields)}")
    }

    @Test func signsTimestampKeyWindowAndPayload() throws {
        let secret = ["api_key": "key", "api_secret": "secret"]
        var request = UpstreamRequest(
            method: "POST", path: "/v5/order/create", query: "", headers: [HTTPField.Name("X-BAPI-SIGN")!: "agent"],
            body: Data("{\"a\":1}".utf8))
        try venue.sign(&request, secret: secret, signed: true, now: Date(timeIntervalSince1970: 1_700_000_000))
        let expected = HMAC<SHA256>.authenticationCode(
            for: Data("1700000000000key5000{\"a\":1}".utf8), using: SymmetricKey(data: Data("secret".utf8)))
        #expect(request.headers[HTTPField.Name("X-BAPI-SIGN")!] == expected.map { String(format: "%02x", $0) }.joined())
        #expect(
            request.headers[HTTPField.Name("X-BAPI-API-KEY")!] == "key"
                && request.headers[HTTPField.Name("X-BAPI-TIMESTAMP")!] == "1700000000000")
    }

    @Test func aSpotMarketBuyCountsItsQuantityInTheQuoteCoin() {
        #expect(
            order("\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"40\"").orderValue == .quote(40, asset: "USDT"))
        #expect(
            order("\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"2\",\"marketUnit\":\"baseCoin\"").orderValue
                == .atMarket(quantity: 2, asset: "USDT"))
        #expect(
            order("\"category\":\"spot\",\"side\":\"Sell\",\"orderType\":\"Market\",\"qty\":\"2\"").orderValue
                == .atMarket(quantity: 2, asset: "USDT"))
        #expect(
            order("\"category\":\"spot\",\"side\":\"Sell\",\"orderType\":\"Market\",\"qty\":\"9\",\"marketUnit\":\"quoteCoin\"").orderValue
                == .quote(9, asset: "USDT"))
        #expect(
            order("\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"2\"").orderValue
                == .atMarket(quantity: 2, asset: "USDT"))
        #expect(
            order("\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"2\",\"marketUnit\":\"quoteCoin\"").isInvalid)
    }

    @Test func whatBybitCouldReadOtherwiseIsInvalid() {
        for fields in [
            "\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":40",
            "\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"40\",\"qty\":\"4000\"",
            "\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"40\",\"isLeverage\":1",
            "\"category\":\"spot\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"40\",\"isLeverage\":false",
            "\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"1\",\"reduceOnly\":\"true\"",
            "\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"1\",\"stopLoss\":\"1\"",
            "\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Limit\",\"qty\":\"1\",\"price\":\"1\",\"bboSideType\":\"Queue\"",
            "\"category\":\"option\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"1\"",
            "\"category\":\"linear\",\"side\":\"BUY\",\"orderType\":\"Market\",\"qty\":\"1\"",
            "\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"1\",\"orderFilter\":\"StopOrder\"",
            "\"category\":\"linear\",\"side\":\"Buy\",\"orderType\":\"Market\",\"qty\":\"1\",\"positionIdx\":\"1\"",
        ] {
            #expect(order(fields).isInvalid, "\(fields)")
        }
        #expect(
            classify(
                "POST", "/v5/position/set-leverage",
                body: "{\"category\":\"linear\",\"symbol\":\"BTCPERP\",\"buyLeverage\":\"2\",\"sellLeverage\":\"7.5\"}")
                == .leverage(LeverageChange(instrument: "BTCPERP", leverage: 7.5)))
        #expect(
            classify(
                "POST", "/v5/position/set-leverage",
                body: "{\"category\":\"linear\",\"symbol\":\"BTCUSDT\",\"buyLeverage\":\"2\",\"sellLeverage\":2}"
            ).isInvalid)
        #expect(classify("POST", "/v5/order/create", query: "qty=1", body: "{}").isInvalid)
    }

    @Test func moneyFamiliesAreFundMovementExceptTheirListedReads() {
        for path in [
            "/v5/asset/transfer/inter-transfer", "/v5/asset/withdraw/create", "/v5/user/create-sub-api", "/v5/crypto-loan/borrow",
            "/v5/ASSET/x",
        ] {
            #expect(classify("POST", path, body: "{}") == .fundMovement, "\(path)")
        }
        #expect(
            classify("GET", "/v5/asset/coin/query-info") == .privateRead && classify("POST", "/v5/asset/coin/query-info") == .fundMovement)
        #expect(classify("GET", "/v5/user/query-api") == .privateRead && classify("GET", "/v5/user/sub-apikeys") == .fundMovement)
        #expect(
            classify("POST", "/v5/order/amend", body: "{}") == .unknown
                && classify("GET", "/v5/market/tickers", query: "category=spot") == .publicRead)
        #expect(venue.refusalStatus == .ok)
    }
}

@Suite struct OKXVenueTests {
    let venue = OKXVenue()

    func classify(_ method: String, _ path: String, query: String = "", body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: query, body: Data(body.utf8)))
    }

    func order(_ fields: String) -> CallClass { classify("POST", "/api/v5/trade/order", body: "{\(fields)}") }

    /// OKX's prehash: the ISO timestamp with milliseconds + method + request path with its query + body.
    @Test func signsTimestampMethodPathAndBody() throws {
        let secret = ["api_key": "k", "api_secret": "22582BD0CFF14C41EDBF1AB98506286D", "passphrase": "p"]
        var request = UpstreamRequest(method: "GET", path: "/api/v5/account/balance", query: "ccy=BTC", headers: [:], body: Data())
        let now = ISO8601DateFormatter().date(from: "2020-12-08T09:08:57Z")!.addingTimeInterval(0.715)
        try venue.sign(&request, secret: secret, signed: true, now: now)
        #expect(request.headers[HTTPField.Name("OK-ACCESS-TIMESTAMP")!] == "2020-12-08T09:08:57.715Z")
        let expected = HMAC<SHA256>.authenticationCode(
            for: Data("2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC".utf8),
            using: SymmetricKey(data: Data(secret["api_secret"]!.utf8)))
        #expect(request.headers[HTTPField.Name("OK-ACCESS-SIGN")!] == Data(expected).base64EncodedString())
        #expect(
            request.headers[HTTPField.Name("OK-ACCESS-PASSPHRASE")!] == "p"
                && request.headers[HTTPField.Name("x-simulated-trading")!] == nil)
        var demo = request
        try venue.sign(&demo, secret: secret.merging(["demo": "true"]) { $1 }, signed: true, now: now)
        #expect(demo.headers[HTTPField.Name("x-simulated-trading")!] == "1")
    }

    @Test func sizesAreReadAsOKXReadsThem() {
        let spot = "\"instId\":\"BTC-USDT\",\"tdMode\":\"cash\",\"ordType\":\"market\","
        #expect(order(spot + "\"side\":\"buy\",\"sz\":\"40\",\"px\":\"\",\"tgtCcy\":\"\"").orderValue == .quote(40, asset: "USDT"))
        #expect(order(spot + "\"side\":\"buy\",\"sz\":\"2\",\"tgtCcy\":\"base_ccy\"").orderValue == .atMarket(quantity: 2, asset: "USDT"))
        #expect(order(spot + "\"side\":\"sell\",\"sz\":\"2\"").orderValue == .atMarket(quantity: 2, asset: "USDT"))
        let swap = "\"instId\":\"BTC-USDT-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\","
        guard case .order(let contracts) = order(swap + "\"ordType\":\"market\",\"sz\":\"3\"") else { Issue.record("not an order"); return }
        #expect(contracts.value == .atMarket(quantity: 3, asset: "USDT"))
        #expect(
            venue.contractQuery(for: contracts)
                == PublicQuery(path: "/api/v5/public/instruments", query: "instType=SWAP&instId=BTC-USDT-SWAP"))
        let instrument = Data(#"{"code":"0","data":[{"instId":"BTC-USDT-SWAP","ctType":"linear","ctVal":"0.01","ctMult":"1"}]}"#.utf8)
        #expect(venue.parseContractSize(instrument, for: contracts) == Decimal(string: "0.01"))
        let inverse = Data(#"{"code":"0","data":[{"instId":"BTC-USDT-SWAP","ctType":"inverse","ctVal":"100"}]}"#.utf8)
        #expect(venue.parseContractSize(inverse, for: contracts) == nil)
        guard case .orders(let batch) = classify("POST", "/api/v5/trade/batch-orders", body: "[{\(spot)\"side\":\"buy\",\"sz\":\"10\"}]")
        else {
            Issue.record("not a batch"); return
        }
        #expect(batch.map(\.value) == [.quote(10, asset: "USDT")])
    }

    @Test func whatOKXCouldReadOtherwiseIsInvalid() {
        for fields in [
            "\"instId\":\"BTC-USDT\",\"tdMode\":\"cash\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":10",
            "\"instId\":\"BTC-USDT\",\"tdMode\":\"cash\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"10\",\"sz\":\"900\"",
            "\"instId\":\"BTC-USDT\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"10\"",
            "\"instId\":\"BTC-USDT\",\"tdMode\":\"cash\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"10\",\"reduceOnly\":\"true\"",
            "\"instId\":\"BTC-USDT\",\"tdMode\":\"cash\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"10\",\"reduceOnly\":1",
            "\"instId\":\"BTC-USD-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\"",
            "\"instId\":\"BTC-USDT-250328\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\"",
            "\"instId\":\"BTC-USDT-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\",\"tgtCcy\":\"quote_ccy\"",
            "\"instId\":\"BTC-USDT-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"optimal_limit_ioc\",\"sz\":\"1\"",
            "\"instId\":\"BTC-USDT-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\",\"attachAlgoOrds\":[{\"tpTriggerPx\":\"1\"}]",
            "\"instId\":\"btc-usdt\",\"tdMode\":\"cash\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\"",
        ] {
            #expect(order(fields).isInvalid, "\(fields)")
        }
        #expect(
            classify("POST", "/api/v5/account/set-leverage", body: #"{"instId":"BTC-USDT-SWAP","lever":3,"mgnMode":"cross"}"#)
                == .leverage(LeverageChange(instrument: "BTC-USDT-SWAP", leverage: 3)))
        for body in [#"{"instId":"BTC-USDT-SWAP","lever":true}"#, #"{"ccy":"USDT","lever":"2"}"#, #"{"instId":"BTC-USDT","lever":"2"}"#] {
            #expect(classify("POST", "/api/v5/account/set-leverage", body: body).isInvalid, "\(body)")
        }
    }

    @Test func moneyFamiliesAreFundMovementExceptTheirListedReads() {
        for path in [
            "/api/v5/asset/transfer", "/api/v5/asset/withdrawal", "/api/v5/users/subaccount/apikey", "/api/v5/account/borrow-repay",
            "/api/v5/FINANCE/x",
        ] {
            #expect(classify("POST", path, body: "{}") == .fundMovement, "\(path)")
        }
        #expect(
            classify("GET", "/api/v5/asset/currencies") == .privateRead
                && classify("POST", "/api/v5/asset/currencies", body: "{}") == .fundMovement)
        #expect(
            classify("POST", "/api/v5/trade/amend-order", body: "{}") == .unknown
                && classify("POST", "/api/v5/trade/close-position", body: "{}") == .unknown)
        #expect(classify("GET", "/api/v5/market/ticker", query: "instId=BTC-USDT") == .publicRead)
    }
}

@Suite struct CoinbaseVenueTests {
    let venue = CoinbaseVenue()

    func classify(_ method: String, _ path: String, body: String = "") -> CallClass {
        venue.classify(ExchangeCall(method: method, path: path, query: "", body: Data(body.utf8)))
    }

    func order(_ configuration: String, side: String = "BUY", product: String = "BTC-USD") -> CallClass {
        classify(
            "POST", "/api/v3/brokerage/orders",
            body:
                "{\"client_order_id\":\"c\",\"product_id\":\"\(product)\",\"side\":\"\(side)\",\"order_configuration\":{\(configuration)}}")
    }

    func jwt(_ request: UpstreamRequest) throws -> (header: [String: Any], claims: [String: Any], signed: Data, signature: Data) {
        let token = try #require(request.headers[.authorization]?.dropFirst("Bearer ".count))
        let parts = token.split(separator: ".").map(String.init)
        try #require(parts.count == 3)
        let decoded = parts.compactMap(Base64URL.decode)
        try #require(decoded.count == 3)
        let header = try #require(VenueJSON.object(decoded[0]))
        let claims = try #require(VenueJSON.object(decoded[1]))
        return (header, claims, Data((parts[0] + "." + parts[1]).utf8), decoded[2])
    }

    @Test func signsAnES256AndAnEdDSAJWTNamingTheKeyMethodHostAndPath() throws {
        let ec = P256.Signing.PrivateKey()
        var request = UpstreamRequest(method: "POST", path: "/api/v3/brokerage/orders", query: "", headers: [:], body: Data("{}".utf8))
        request.authority = "api.coinbase.com"
        try venue.sign(
            &request, secret: ["api_key": "organizations/o/apiKeys/k", "api_secret": ec.pemRepresentation], signed: true,
            now: Date(timeIntervalSince1970: 1_700_000_000))
        let es = try jwt(request)
        #expect(es.header["alg"] as? String == "ES256" && es.header["kid"] as? String == "organizations/o/apiKeys/k")
        #expect(es.claims["uri"] as? String == "POST api.coinbase.com/api/v3/brokerage/orders" && es.claims["iss"] as? String == "cdp")
        #expect(es.claims["nbf"] as? Int == 1_700_000_000 && es.claims["exp"] as? Int == 1_700_000_120)
        #expect(ec.publicKey.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: es.signature), for: es.signed))
        let ed = Curve25519.Signing.PrivateKey()
        try venue.sign(
            &request,
            secret: ["api_key": "k", "api_secret": (ed.rawRepresentation + ed.publicKey.rawRepresentation).base64EncodedString()],
            signed: true, now: Date())
        let eddsa = try jwt(request)
        #expect(eddsa.header["alg"] as? String == "EdDSA" && ed.publicKey.isValidSignature(eddsa.signature, for: eddsa.signed))
        #expect(throws: SecretFieldError.self) { try venue.checkSecret(["api_key": "k", "api_secret": "not a key"]) }
    }

    @Test func theAgentKeyIsTheNameInTheSDKsToken() throws {
        let throwaway = P256.Signing.PrivateKey()
        var request = UpstreamRequest(method: "GET", path: "/api/v3/brokerage/accounts", query: "", headers: [:], body: Data())
        try venue.sign(&request, secret: ["api_key": "wdn_agent", "api_secret": throwaway.pemRepresentation], signed: true, now: Date())
        #expect(venue.agentKey(in: request.headers) == "wdn_agent")
        #expect(venue.agentKey(in: [.authorization: "Bearer wdn_plain"]) == "wdn_plain")
        #expect(venue.agentKey(in: [HTTPField.Name("CB-ACCESS-KEY")!: "wdn_legacy"]) == "wdn_legacy")
    }

    @Test func ordersAreValuedByTheirConfiguration() {
        #expect(order("\"market_market_ioc\":{\"quote_size\":\"40\"}").orderValue == .quote(40, asset: "USD"))
        #expect(order("\"market_market_ioc\":{\"base_size\":\"2\"}", side: "SELL").orderValue == .atMarket(quantity: 2, asset: "USD"))
        #expect(
            order("\"limit_limit_gtc\":{\"base_size\":\"2\",\"limit_price\":\"10\",\"post_only\":false}").orderValue
                == .quote(20, asset: "USD"))
        #expect(
            order("\"limit_limit_gtc\":{\"base_size\":\"2\",\"limit_price\":\"10\"}", side: "SELL").orderValue
                == .atLeastMarket(amount: 20, quantity: 2, asset: "USD", maxPayoff: nil))
        for bad in [
            "\"market_market_ioc\":{\"quote_size\":\"40\",\"base_size\":\"1\"}", "\"market_market_ioc\":{\"quote_size\":40}",
            "\"limit_limit_gtc\":{\"base_size\":\"2\",\"limit_price\":\"10\",\"post_only\":\"false\"}",
            "\"stop_limit_stop_limit_gtc\":{\"base_size\":\"1\"}", "\"market_market_ioc\":{\"quote_size\":\"1\"},\"limit_limit_gtc\":{}",
            "\"market_market_ioc\":{\"quote_size\":\"1e3\"}",
        ] {
            #expect(order(bad).isInvalid, "\(bad)")
        }
        #expect(order("\"market_market_ioc\":{\"quote_size\":\"4\"}", side: "buy").isInvalid)
        #expect(order("\"market_market_ioc\":{\"quote_size\":\"4\"}", product: "BTC-EUR").isInvalid)
    }

    @Test func sendsWithdrawalsAndPortfolioMovesAreFundMovement() {
        for path in [
            "/v2/accounts/a/transactions", "/v2/accounts/a/withdrawals", "/v2/accounts/a/deposits",
            "/api/v3/brokerage/portfolios/move_funds",
            "/api/v3/brokerage/convert/trade", "/api/v3/brokerage/cfm/sweeps/schedule",
        ] {
            #expect(classify("POST", path, body: "{}") == .fundMovement, "\(path)")
        }
        #expect(classify("GET", "/v2/accounts") == .privateRead && classify("GET", "/v2/accounts/a/transactions") == .fundMovement)
        #expect(classify("GET", "/api/v3/brokerage/transaction_summary") == .privateRead)
        #expect(classify("GET", "/api/v3/brokerage/orders/historical/batch") == .privateRead)
        #expect(
            classify("POST", "/api/v3/brokerage/orders/edit", body: "{}") == .unknown
                && classify("GET", "/api/v3/brokerage/market/products/BTC-USD") == .publicRead)
    }
}

@Suite struct KalshiVenueTests {
    let venue = KalshiVenue()

    func order(_ json: String) -> CallClass {
        venue.classify(ExchangeCall(method: "POST", path: "/trade-api/v2/portfolio/orders", query: "", body: Data(json.utf8)))
    }

    @Test func signsTimestampMethodAndPathWithRSAPSS() throws {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        var r = UpstreamRequest(
            method: "GET", path: "/trade-api/v2/portfolio/balance", query: "limit=5",
            headers: [HTTPField.Name("KALSHI-ACCESS-KEY")!: "wdn_agent"], body: Data())
        let now = Date(timeIntervalSince1970: 1_700_000_000.123)
        try venue.sign(&r, secret: ["key_id": "real-key-id", "private_key_pem": key.pemRepresentation], signed: true, now: now)
        #expect(r.headers[HTTPField.Name("KALSHI-ACCESS-KEY")!] == "real-key-id")
        #expect(r.headers[HTTPField.Name("KALSHI-ACCESS-TIMESTAMP")!] == "1700000000123")
        let signature = try #require(r.headers[HTTPField.Name("KALSHI-ACCESS-SIGNATURE")!].flatMap { Data(base64Encoded: $0) })
        let message = Data("1700000000123GET/trade-api/v2/portfolio/balance".utf8)
        #expect(key.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: message, padding: .PSS))
        #expect(
            !key.publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: Data("x".utf8), padding: .PSS))
    }

    @Test func pricesContractsOnTheirOwnSide() {
        let cases: [(String, Decimal)] = [
            (#"{"ticker":"T","action":"buy","side":"yes","count":10,"yes_price":46}"#, Decimal(string: "4.6")!),
            (#"{"ticker":"T","action":"buy","side":"no","count":10,"no_price":56}"#, Decimal(string: "5.6")!),
            (#"{"ticker":"T","action":"buy","side":"no","count":10,"yes_price":46}"#, Decimal(string: "5.4")!),
            (#"{"ticker":"T","action":"buy","side":"no","count":2,"yes_price_dollars":"0.7000"}"#, Decimal(string: "0.6")!),
            (#"{"ticker":"T","action":"buy","side":"yes","count":7,"type":"market"}"#, 7),
            (#"{"ticker":"T","action":"buy","side":"yes","count":7,"type":"market","buy_max_cost":350}"#, Decimal(string: "3.5")!),
            (#"{"ticker":"T","action":"buy","side":"yes","count":7,"type":"limit","yes_price":40,"buy_max_cost":100}"#, 1),
            (#"{"ticker":"T","action":"buy","side":"no","count":7,"type":"market","no_price":1,"buy_max_cost":100000}"#, 7),
        ]
        for (json, usd) in cases {
            guard case .order(let intent) = order(json) else { Issue.record("not an order: \(json)"); continue }
            #expect(intent.value == .usd(usd), "\(json)")
        }
        guard case .invalid = order(#"{"ticker":"T","action":"buy","side":"yes","count":7,"type":"limit"}"#)
        else { Issue.record("a limit order without a price was priced"); return }
        // A sell is worth at least its limit and up to the market, at most 1 USD a contract; never its buy_max_cost.
        guard case .order(let sell) = order(#"{"ticker":"T","action":"sell","side":"yes","count":4,"yes_price_dollars":"0.2500"}"#),
            case .order(let marketSell) = order(#"{"ticker":"T","action":"sell","side":"no","count":3,"type":"market"}"#)
        else { Issue.record("sells were not orders"); return }
        // Selling YES at 25c without the position buys NO at 75c: 4 × 0.75.
        #expect(sell.value == .atLeastMarket(amount: 3, quantity: 4, asset: "USD", maxPayoff: 1))
        #expect(marketSell.value == .usd(3))
        // Contradictions are refused, never resolved by picking one.
        for json in [
            #"{"ticker":"T","action":"buy","side":"yes","count":1,"yes_price":40,"no_price":60}"#,
            #"{"ticker":"T","action":"buy","side":"yes","count":1,"yes_price":40,"yes_price_dollars":"0.41"}"#,
            #"{"ticker":"T","action":"buy","side":"yes","count":1,"yes_price":40,"yes_price":90}"#,
            #"{"ticker":"T","action":"sell","side":"yes","count":1,"type":"market","buy_max_cost":100}"#,
            #"{"ticker":"T","action":"buy","side":"yes","count":1,"yes_price":40,"subaccount":2}"#,
        ] {
            guard case .invalid = order(json) else { Issue.record("passed: \(json)"); continue }
        }
    }

    @Test func refusesWhatKalshiWouldReadOtherwise() {
        for json in [
            #"{"ticker":"T","action":"buy","side":"yes","count":1.5,"yes_price":46}"#,
            #"{"ticker":"T","action":"buy","side":"maybe","count":1,"yes_price":46}"#,
            #"{"ticker":"T","action":"buy","side":"yes","count":1,"yes_price":146}"#,
            #"{"ticker":"T","action":"buy","side":"yes","count":-1,"yes_price":46}"#, "count=1",
        ] {
            guard case .invalid = order(json) else { Issue.record("accepted \(json)"); continue }
        }
        #expect(
            venue.classify(ExchangeCall(method: "POST", path: "/trade-api/v2/portfolio/transfer", query: "", body: Data())) == .fundMovement
        )
        #expect(
            venue.classify(ExchangeCall(method: "POST", path: "/trade-api/v2/portfolio/orders/batched", query: "", body: Data()))
                == .unknown)
    }

    /// `/portfolio/orders/batched` is Kalshi's batch endpoint, not an order called "batched": an order-id
    /// wildcard never stands for it (or another route word), in any case.
    @Test func orderIdWildcardsNeverMatchKalshisRouteWords() {
        func classify(_ method: String, _ path: String) -> CallClass {
            venue.classify(ExchangeCall(method: method, path: "/trade-api/v2" + path, query: "", body: Data()))
        }
        #expect(classify("DELETE", "/portfolio/orders/batched") == .cancel)
        #expect(classify("DELETE", "/portfolio/orders/BATCHED") == .cancel)
        #expect(classify("DELETE", "/portfolio/orders/ord-1") == .cancel)
        #expect(classify("POST", "/portfolio/orders/ord-1/decrease") == .cancel)
        for (method, path) in [
            ("POST", "/portfolio/orders/batched"), ("POST", "/portfolio/orders/Batched"),
            ("POST", "/portfolio/orders/batched/decrease"), ("POST", "/portfolio/orders/amend/decrease"),
            ("GET", "/portfolio/orders/batched"), ("POST", "/portfolio/orders/ord-1/amend"),
        ] {
            #expect(classify(method, path) == .unknown, "\(method) \(path)")
        }
        #expect(classify("GET", "/portfolio/orders/ord-1") == .privateRead)
        #expect(classify("GET", "/portfolio/orders/queue_positions") == .privateRead)
    }

    /// What kalshi-python's read methods call, by the class Kalshi's OpenAPI description gives them.
    @Test func theSDKsReadsAreReadsAndTheirWriteTwinsAreNot() {
        func classify(_ method: String, _ path: String) -> CallClass {
            venue.classify(ExchangeCall(method: method, path: "/trade-api/v2" + path, query: "", body: Data()))
        }
        let publicReads = [
            "/exchange/status", "/exchange/schedule", "/exchange/announcements", "/exchange/user_data_timestamp", "/markets",
            "/markets/KXFAKE-26DEC31-T50", "/markets/trades", "/markets/candlesticks", "/events", "/events/KXFAKE-26DEC31",
            "/events/multivariate", "/events/KXFAKE-26DEC31/metadata", "/series", "/series/KXFAKE", "/series/fee_changes",
            "/series/KXFAKE/markets/KXFAKE-26DEC31-T50/candlesticks", "/series/KXFAKE/events/KXFAKE-26DEC31/candlesticks",
            "/milestones", "/milestones/m-1", "/live_data/batch", "/live_data/game/milestone/m-1", "/structured_targets",
            "/structured_targets/t-1", "/multivariate_event_collections", "/multivariate_event_collections/KXMVE",
            "/multivariate_event_collections/KXMVE/lookup", "/incentive_programs", "/search/tags_by_categories",
            "/search/filters_by_sport",
        ]
        let privateReads = [
            "/markets/KXFAKE-26DEC31-T50/orderbook", "/series/KXFAKE/events/KXFAKE-26DEC31/forecast_percentile_history",
            "/portfolio/balance", "/portfolio/positions", "/portfolio/orders", "/portfolio/orders/ord-1",
            "/portfolio/orders/ord-1/queue_position", "/portfolio/orders/queue_positions", "/portfolio/fills",
            "/portfolio/settlements", "/portfolio/summary/total_resting_order_value", "/portfolio/order_groups",
            "/portfolio/order_groups/g-1",
        ]
        for path in publicReads {
            #expect(classify("GET", path) == .publicRead, "GET \(path)")
            #expect(classify("POST", path) != .publicRead && classify("POST", path) != .privateRead, "POST \(path)")
        }
        for path in privateReads {
            #expect(classify("GET", path) == .privateRead, "GET \(path)")
            #expect(classify("PUT", path) == .unknown, "PUT \(path)")
        }
        // Writes the SDK can make that are not orders stay off Warden's list.
        for (method, path) in [
            ("POST", "/portfolio/order_groups/create"), ("DELETE", "/portfolio/order_groups/g-1"),
            ("PUT", "/portfolio/order_groups/g-1/reset"), ("PUT", "/multivariate_event_collections/KXMVE/lookup"),
            ("POST", "/multivariate_event_collections/KXMVE"), ("POST", "/communications/rfqs"),
            ("PUT", "/communications/quotes/q-1/accept"), ("GET", "/api_keys"), ("POST", "/api_keys/generate"),
            ("GET", "/portfolio/orders/batched/queue_position"), ("GET", "/markets/x/orderbook/y"),
        ] {
            #expect(classify(method, path) == .unknown, "\(method) \(path)")
        }
        #expect(classify("GET", "/portfolio/withdrawals") == .fundMovement)
    }

    @Test func theClientOrderIdIsWrittenIntoTheBody() throws {
        var r = UpstreamRequest(
            method: "POST", path: "/trade-api/v2/portfolio/orders", query: "", headers: [:],
            body: Data(#"{"ticker":"T","count":1}"#.utf8))
        try venue.prepareOrder(
            OrderIntent(instrument: "T", side: .buy, quantity: 1, value: .usd(1), clientOrderID: nil), clientOrderID: "wdn-9", in: &r,
            secret: [:], market: nil)
        let json = try #require(try JSONSerialization.jsonObject(with: r.body) as? [String: Any])
        #expect(json["client_order_id"] as? String == "wdn-9")
    }
}

@Suite struct PolymarketVenueTests {
    let venue = PolymarketVenue()
    let secret = [
        "api_key": "real-api-key", "api_secret": "c2VjcmV0LWJ5dGVzLWZvci10aGUtdGVzdC1vbmx5IQ==",
        "passphrase": "real-pass", "address": "0x1111111111111111111111111111111111111111",
    ]

    @Test func signsLevelTwoHeadersAndRewritesTheOrderOwner() throws {
        let body = #"{"order":{"side":"BUY"},"owner":"wdn_agent_key","orderType":"GTC"}"#
        var r = UpstreamRequest(method: "POST", path: "/order", query: "", headers: [:], body: Data(body.utf8))
        try venue.sign(&r, secret: secret, signed: true, now: Date(timeIntervalSince1970: 1_700_000_000))
        let sent = String(decoding: r.body, as: UTF8.self)
        #expect(!sent.contains("wdn_agent_key") && sent.contains(#""owner":"real-api-key""#))
        let key = SymmetricKey(data: try #require(Data(base64Encoded: secret["api_secret"]!)))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(("1700000000POST/order" + sent).utf8), using: key)
        let expected = Data(mac).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        #expect(r.headers[HTTPField.Name("POLY_SIGNATURE")!] == expected)
        #expect(r.headers[HTTPField.Name("POLY_ADDRESS")!] == secret["address"])
        #expect(r.headers[HTTPField.Name("POLY_API_KEY")!] == "real-api-key")
        #expect(r.headers[HTTPField.Name("POLY_PASSPHRASE")!] == "real-pass")
        #expect(r.headers[HTTPField.Name("POLY_TIMESTAMP")!] == "1700000000")
    }

    @Test func aBuyIsWorthItsMakerAmountAndASellItsTakerAmount() {
        func intent(_ side: String) -> OrderIntent? {
            let body =
                #"{"order":{"salt":42,"tokenId":"123","makerAmount":"5000000","takerAmount":"10000000","side":"\#(side)"},"owner":"k"}"#
            guard case .order(let intent) = venue.classify(ExchangeCall(method: "POST", path: "/order", query: "", body: Data(body.utf8)))
            else { return nil }
            return intent
        }
        #expect(intent("BUY")?.value == .usd(5))
        #expect(intent("BUY")?.quantity == 10)
        #expect(intent("SELL")?.value == .atLeastMarket(amount: 10, quantity: 5, asset: "USDC", maxPayoff: 1))
        // The exchange never fills the same signed fields twice: that identity is the retry fingerprint.
        #expect(intent("BUY")?.fingerprint != nil && intent("BUY")?.fingerprint == intent("BUY")?.fingerprint)
        #expect(intent("BUY")?.fingerprint != intent("SELL")?.fingerprint)
        #expect(intent("BUY")?.clientOrderID == "salt-42")
        #expect(intent("buy") == nil)
    }

    /// What py-clob-client's read methods call.
    @Test func theSDKsReadsAreReadsAndTheirWriteTwinsAreNot() {
        func classify(_ method: String, _ path: String, _ body: String = "") -> CallClass {
            venue.classify(ExchangeCall(method: method, path: path, query: "", body: Data(body.utf8)))
        }
        let condition = "0x" + String(repeating: "ab", count: 32)
        for path in [
            "/", "/time", "/markets", "/markets/" + condition, "/sampling-markets", "/simplified-markets",
            "/sampling-simplified-markets", "/book", "/price", "/midpoint", "/spread", "/last-trade-price", "/tick-size",
            "/neg-risk", "/fee-rate", "/live-activity/events/" + condition,
        ] {
            #expect(classify("GET", path) == .publicRead, "GET \(path)")
        }
        for path in ["/books", "/prices", "/midpoints", "/spreads", "/last-trades-prices"] {
            #expect(classify("POST", path, #"[{"token_id":"1"}]"#) == .publicRead, "POST \(path)")
        }
        for path in [
            "/data/orders", "/data/order/0xabc", "/data/trades", "/balance-allowance", "/balance-allowance/update",
            "/notifications", "/auth/api-keys", "/auth/ban-status/closed-only", "/order-scoring",
        ] {
            #expect(classify("GET", path) == .privateRead, "GET \(path)")
        }
        #expect(classify("POST", "/orders-scoring", #"["0xabc"]"#) == .privateRead)
        #expect(classify("GET", "/orders-scoring") == .unknown)
        for (method, path) in [
            ("POST", "/live-activity/events/" + condition), ("POST", "/auth/ban-status/closed-only"),
            ("POST", "/auth/readonly-api-key"), ("GET", "/auth/readonly-api-keys"), ("DELETE", "/auth/readonly-api-key"),
            ("DELETE", "/notifications"), ("POST", "/v1/heartbeats"), ("DELETE", "/cancel-all"),
            ("DELETE", "/cancel-market-orders"), ("POST", "/rfq/request"), ("POST", "/order-scoring"),
        ] {
            #expect(classify(method, path) == .unknown, "\(method) \(path)")
        }
    }

    @Test func aBatchIsEachOfItsOrders() {
        func classify(_ body: String) -> CallClass {
            venue.classify(ExchangeCall(method: "POST", path: "/orders", query: "", body: Data(body.utf8)))
        }
        let item = #"{"order":{"salt":1,"tokenId":"123","makerAmount":"5000000","takerAmount":"10000000","side":"BUY"},"owner":"k"}"#
        guard case .orders(let orders) = classify("[\(item),\(item.replacingOccurrences(of: "BUY", with: "SELL"))]") else {
            Issue.record("a batch was not classified as orders")
            return
        }
        #expect(orders.map(\.value) == [.usd(5), .atLeastMarket(amount: 10, quantity: 5, asset: "USDC", maxPayoff: 1)])
        guard
            case .invalid = classify(
                #"[{"order":{"salt":1,"salt":2,"tokenId":"123","makerAmount":"5000000","takerAmount":"1","side":"BUY"}}]"#)
        else { Issue.record("a field named twice passed"); return }
        guard case .invalid = classify("[\(item),{\"order\":{\"side\":\"BUY\"}}]") else {
            Issue.record("a bad order passed in a batch"); return
        }
        guard case .invalid = classify("[]") else { Issue.record("an empty batch passed"); return }
        guard case .invalid = classify("[" + Array(repeating: item, count: 16).joined(separator: ",") + "]") else {
            Issue.record("a batch of 16 passed")
            return
        }
    }
}

@Suite struct StreamRouteTests {
    @Test func venuesServeStreamsOnlyWhereTheirClientsOpenThem() {
        #expect(OpenAIVenue().stream(at: "/v1/realtime") == .realtime)
        #expect(OpenAIVenue().stream(at: "/v1/chat/completions") == nil)
        #expect(KalshiVenue().stream(at: "/trade-api/ws/v2") == .signedHandshake)
        #expect(KalshiVenue().stream(at: "/trade-api/v2/portfolio/orders") == nil)
        #expect(BinanceVenue().stream(at: "/ws/btcusdt@trade") == .marketData)
        #expect(BinanceVenue().stream(at: "/stream") == .marketData)
        #expect(BinanceVenue().stream(at: "/api/v3/order") == nil)
        #expect(AnthropicVenue().stream(at: "/v1/messages") == nil)
        let service = { (websocket: Bool) in
            RESTServiceVenue(name: "s", baseURL: "https://s.test", authHeader: "X-Token", authValuePrefix: "", websocket: websocket)
        }
        #expect(service(true).stream(at: "/anything") == .relay)
        #expect(service(false).stream(at: "/anything") == nil)
    }

    @Test(arguments: [
        (#"{"id":1,"cmd":"subscribe","params":{"channels":["fill"]}}"#, true),
        (#"{"id":1,"cmd":"unsubscribe","params":{"sids":[1]}}"#, true),
        (#"{"id":1,"cmd":"list_subscriptions"}"#, true),
        (#"{"id":1,"cmd":"create_order","params":{}}"#, false),
        (#"{"id":1,"cmd":"Subscribe"}"#, false),
        (#"{"id":1,"cmd":"subscribe","cmd":"create_order"}"#, false),
        (#"{"id":1,"cmd":"create_order","cmd":"subscribe"}"#, false),
        (#"{"id":1,"cmd":"sub\u0073cribe"}"#, true),
        (#"{"id":1,"c\u006dd":"create_order","cmd":"subscribe"}"#, false),
        (#"{"id":1}"#, false),
        (#"["subscribe"]"#, false),
        (#"{"id":1,"cmd":"subscribe"} {"cmd":"create_order"}"#, false),
        ("not json", false),
    ])
    func kalshiStreamsTakeOnlySubscriptionCommands(command: String, passes: Bool) {
        let taken = KalshiVenue().streamCommand(Data(command.utf8))
        #expect((taken == .read) == passes, "\(command)")
    }

    @Test func aRefusedKalshiCommandIsAnsweredInKalshisErrorShapeWithItsID() throws {
        let answer = KalshiVenue().streamError("no", to: Data(#"{"id":7,"cmd":"x"}"#.utf8))
        let json = try #require(try JSONSerialization.jsonObject(with: answer) as? [String: Any])
        #expect(json["id"] as? Int == 7 && json["type"] as? String == "error")
        #expect((json["msg"] as? [String: Any])?["msg"] as? String == "no")
    }
}

@Suite struct BinanceWebSocketAPITests {
    let venue = BinanceVenue()

    /// Binance's documentation's example of a signed WebSocket API request: this key, secret and these
    /// parameters give this signature.
    @Test func aRequestIsSignedAsBinancesDocumentationShows() throws {
        let secret = [
            "api_key": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
            "api_secret": "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
        ]
        let signed = UpstreamRequest(
            method: "POST", path: "/api/v3/order", query: "",
            headers: [:],
            body: Data(
                ("symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=0.01000000&price=52000.00&newOrderRespType=ACK"
                    + "&recvWindow=100&timestamp=1645423376532&signature=0000").utf8))
        let id = try #require(StreamRequestID("4885f793-e5ad-4c3b-8f6c-55d891472b71"))
        let message = try venue.streamMessage(id: id, method: "order.place", from: signed, secret: secret)
        let json = try #require(try JSONSerialization.jsonObject(with: message) as? [String: Any])
        let params = try #require(json["params"] as? [String: String])
        #expect(params["signature"] == "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a")
        #expect(params["apiKey"] == secret["api_key"] && params["quantity"] == "0.01000000" && params.count == 11)
        #expect(json["id"] as? String == "4885f793-e5ad-4c3b-8f6c-55d891472b71" && json["method"] as? String == "order.place")
    }

    @Test func anOrderIsTakenAsItsRESTTwinWithoutTheAgentsSigningParameters() throws {
        let message =
            #"{"id":7,"method":"order.place","params":{"symbol":"BTCUSDT","side":"BUY","type":"LIMIT","quantity":0.001,"price":"50000","apiKey":"wdn_x","timestamp":1,"signature":"ab"}}"#
        guard
            case .rest(let id, _, let method, let path, let form, let apiKey) = venue.streamRequest(Data(message.utf8), forwardAs: "wdn-1")
        else {
            Issue.record("not taken as a REST call")
            return
        }
        #expect(id.json == "7" && method == "POST" && path == "/api/v3/order" && apiKey == "wdn_x")
        #expect(form == "price=50000&quantity=0.001&side=BUY&symbol=BTCUSDT&type=LIMIT")
    }

    @Test(arguments: [
        (#"{"id":1,"method":"sor.order.place","params":{}}"#, "does not relay"),
        (#"{"id":1,"method":"order.place","method":"ping","params":{}}"#, "naming each member once"),
        (#"{"id":{"a":1},"method":"ping"}"#, "id must be"),
        (#"{"id":""# + String(repeating: "i", count: 65) + #"","method":"ping"}"#, "at most 64 bytes"),
        (#"{"id":1,"method":"order.place","params":{"price":"1&quantity=9"}}"#, "letters, digits"),
        (#"{"id":1,"method":"order.place","params":{"quantity":[1]}}"#, "params must be"),
        (#"{"id":1,"method":"order.place","params":{"q_ty":"1"}}"#, "plain letters"),
        (#"{"id":1,"method":"ping","extra":true}"#, "unknown member"),
        (#"[1]"#, "one JSON object"),
    ])
    func malformedOrUnlistedRequestsAreRefused(message: String, reason: String) {
        guard case .refused(_, let why) = venue.streamRequest(Data(message.utf8), forwardAs: "wdn-1") else {
            Issue.record("\(message) was taken")
            return
        }
        #expect(why.contains(reason), "\(why)")
    }

    @Test func publicRequestsGoWithoutTheAgentsKey() throws {
        let message = #"{"id":"p","method":"ticker.price","params":{"symbol":"BTCUSDT","apiKey":"wdn_secret","signature":"s"}}"#
        guard case .publicData(_, let forwarded) = venue.streamRequest(Data(message.utf8), forwardAs: "wdn-1") else {
            Issue.record("not public")
            return
        }
        #expect(!String(decoding: forwarded, as: UTF8.self).contains("wdn_secret"))
        #expect(String(decoding: forwarded, as: UTF8.self).contains(#""id":"wdn-1""#))
        #expect(String(decoding: forwarded, as: UTF8.self).contains("BTCUSDT"))
    }

    @Test func anAnswerNamesItsRequestAndStatus() throws {
        let answer = venue.streamAnswerStatus(Data(#"{"id":"o1","status":400,"error":{"code":-2010,"msg":"x"}}"#.utf8))
        #expect(answer?.id == StreamRequestID("o1") && answer?.status == 400)
        #expect(venue.streamAnswerStatus(Data(#"{"subscriptionId":0,"event":{}}"#.utf8)) == nil)
    }
}
