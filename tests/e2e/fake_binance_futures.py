"""A local fake of Binance USDⓈ-M futures (`fapi.binance.com`) on 127.0.0.1.

It checks signed calls exactly as Binance does, with the Spot fake's `binance_authenticate` (the same API key
header and HMAC-SHA256 over the query string and form body, against the planted real credential), and records
every request with its verdict, as the other fakes do. state: usdt (the wallet's USDT, a string), marks (mark
price by symbol, strings the tests may move), leverage (by symbol; Binance's default is 20), orders
(orderId → order), positions (symbol → signed quantity as a float).
"""
import itertools
from urllib.parse import parse_qsl, urlsplit

from fake_exchanges import BINANCE_REJECT_QUANTITY, Venue, _mark, binance_authenticate, binance_error, now_ms
from fakes import send_json

FUTURES_MARKS = {"BTCUSDT": "50000.00", "ETHUSDT": "2500.00"}


def _symbol_info(symbol):
    return {"symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": symbol[:-4], "quoteAsset": "USDT",
            "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
            "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
            "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000, "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "4529764", "tickSize": "0.10"},
                        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
                        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MIN_NOTIONAL", "notional": "5"},
                        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
                         "multiplierDecimal": "4"}]}


def binance_futures(usdt="1000.00"):
    state = {"usdt": usdt, "marks": dict(FUTURES_MARKS), "leverage": {s: 20 for s in FUTURES_MARKS}, "orders": {},
             "positions": {}, "ids": itertools.count(8_000_001)}
    venue = None

    def order_view(order):
        return dict(order)

    def new_order(h, p):
        for field in ("symbol", "side", "type", "quantity"):
            if not p.get(field):
                return binance_error(h, 400, -1102, f"Mandatory parameter '{field}' was not sent, was empty/null, or malformed.")
        symbol = p["symbol"]
        if symbol not in state["marks"]:
            return binance_error(h, 400, -1121, "Invalid symbol.")
        if p["quantity"] == BINANCE_REJECT_QUANTITY:
            return binance_error(h, 400, -2019, "Margin is insufficient.")
        try:
            qty, mark = float(p["quantity"]), float(state["marks"][symbol])
            float(p.get("price", "0"))
        except ValueError:
            return binance_error(h, 400, -1100, "Illegal characters found in a parameter.")
        if p["type"] == "MARKET":
            status, price, avg, executed = "FILLED", "0", f"{mark:.2f}", qty
        elif p["type"] == "LIMIT":
            if not p.get("price"):
                return binance_error(h, 400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            status, price, avg, executed = "NEW", p["price"], "0.00", 0.0
        else:
            return binance_error(h, 400, -1116, "Invalid orderType.")
        with venue.lock:
            order_id = next(state["ids"])
            order = {"orderId": order_id, "symbol": symbol, "status": status,
                     "clientOrderId": p.get("newClientOrderId") or f"fake{order_id}", "price": price, "avgPrice": avg,
                     "origQty": p["quantity"], "executedQty": f"{executed:.3f}", "cumQty": f"{executed:.3f}",
                     "cumQuote": f"{executed * mark:.5f}", "timeInForce": p.get("timeInForce", "GTC"), "type": p["type"],
                     "reduceOnly": p.get("reduceOnly") == "true", "closePosition": False, "side": p["side"],
                     "positionSide": p.get("positionSide", "BOTH"), "stopPrice": "0", "workingType": "CONTRACT_PRICE",
                     "priceProtect": False, "origType": p["type"], "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
                     "goodTillDate": 0, "updateTime": now_ms()}
            state["orders"][order_id] = order
            if executed:
                signed = executed if p["side"] == "BUY" else -executed
                state["positions"][symbol] = state["positions"].get(symbol, 0.0) + signed
        send_json(h, 200, order_view(order))

    def find_order(p):
        with venue.lock:
            for order in state["orders"].values():
                if order["symbol"] == p.get("symbol") and (
                        str(order["orderId"]) == p.get("orderId") or order["clientOrderId"] == p.get("origClientOrderId")):
                    return order
        return None

    def balances():
        return [{"accountAlias": "SgsR", "asset": "USDT", "balance": state["usdt"], "crossWalletBalance": state["usdt"],
                 "crossUnPnl": "0.00000000", "availableBalance": state["usdt"], "maxWithdrawAmount": state["usdt"],
                 "marginAvailable": True, "updateTime": now_ms()}]

    def positions(symbol=None):
        with venue.lock:
            held = dict(state["positions"])
        return [{"symbol": s, "positionSide": "BOTH", "positionAmt": f"{amount:.3f}", "entryPrice": state["marks"][s],
                 "breakEvenPrice": "0.0", "markPrice": state["marks"][s], "unRealizedProfit": "0.00000000",
                 "liquidationPrice": "0", "isolatedMargin": "0.00000000", "notional": f"{amount * float(state['marks'][s]):.8f}",
                 "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": "0", "maintMargin": "0",
                 "positionInitialMargin": "0", "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0",
                 "askNotional": "0", "leverage": str(state["leverage"][s]), "marginType": "cross", "updateTime": now_ms()}
                for s, amount in held.items() if symbol in (None, s)]

    def public(h, path, p):
        _mark(h, "public")
        if path == "/fapi/v1/ping":
            return send_json(h, 200, {})
        if path == "/fapi/v1/time":
            return send_json(h, 200, {"serverTime": now_ms()})
        if path == "/fapi/v1/exchangeInfo":
            return send_json(h, 200, {"timezone": "UTC", "serverTime": now_ms(), "futuresType": "U_MARGINED",
                                      "rateLimits": [], "exchangeFilters": [],
                                      "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
                                      "symbols": [_symbol_info(s) for s in state["marks"]]})
        if path == "/fapi/v1/premiumIndex":
            def index(s):
                return {"symbol": s, "markPrice": state["marks"][s], "indexPrice": state["marks"][s],
                        "estimatedSettlePrice": state["marks"][s], "lastFundingRate": "0.00010000",
                        "interestRate": "0.00010000", "nextFundingTime": now_ms() + 3_600_000, "time": now_ms()}
            if "symbol" in p:
                if p["symbol"] not in state["marks"]:
                    return binance_error(h, 400, -1121, "Invalid symbol.")
                return send_json(h, 200, index(p["symbol"]))
            return send_json(h, 200, [index(s) for s in state["marks"]])
        if path in ("/fapi/v1/ticker/price", "/fapi/v2/ticker/price"):
            tickers = [{"symbol": s, "price": v, "time": now_ms()} for s, v in state["marks"].items() if p.get("symbol") in (None, s)]
            return send_json(h, 200, tickers[0] if "symbol" in p else tickers)
        if path == "/fapi/v1/ticker/24hr":
            tickers = [{"symbol": s, "priceChange": "0", "priceChangePercent": "0", "weightedAvgPrice": v, "lastPrice": v,
                        "lastQty": "0.010", "openPrice": v, "highPrice": v, "lowPrice": v, "volume": "1000",
                        "quoteVolume": "1000000", "openTime": now_ms() - 86_400_000, "closeTime": now_ms(), "firstId": 1,
                        "lastId": 2, "count": 2} for s, v in state["marks"].items() if p.get("symbol") in (None, s)]
            return send_json(h, 200, tickers[0] if "symbol" in p else tickers)
        if path == "/fapi/v1/depth":
            mark = float(state["marks"].get(p.get("symbol"), "1"))
            return send_json(h, 200, {"lastUpdateId": 1, "E": now_ms(), "T": now_ms(),
                                      "bids": [[f"{mark - 1:.2f}", "1.000"]], "asks": [[f"{mark + 1:.2f}", "1.000"]]})
        return binance_error(h, 404, -1000, "Unknown endpoint.")

    def handle(h, body):
        path, method = urlsplit(h.path).path, h.command
        if method == "GET" and path in PUBLIC:
            return public(h, path, dict(parse_qsl(urlsplit(h.path).query, keep_blank_values=True)))
        p = binance_authenticate(h, body)
        if p is None:
            return
        if method == "GET" and path in ("/fapi/v2/balance", "/fapi/v3/balance"):
            return send_json(h, 200, balances())
        if method == "GET" and path in ("/fapi/v2/account", "/fapi/v3/account"):
            return send_json(h, 200, {"totalWalletBalance": state["usdt"], "totalUnrealizedProfit": "0.00000000",
                                      "totalMarginBalance": state["usdt"], "availableBalance": state["usdt"],
                                      "maxWithdrawAmount": state["usdt"], "totalInitialMargin": "0", "totalMaintMargin": "0",
                                      "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0",
                                      "totalCrossWalletBalance": state["usdt"], "totalCrossUnPnl": "0",
                                      "assets": [dict(b, walletBalance=b["balance"], unrealizedProfit="0", marginBalance=b["balance"],
                                                      maintMargin="0", initialMargin="0", positionInitialMargin="0",
                                                      openOrderInitialMargin="0") for b in balances()],
                                      "positions": positions()})
        if method == "GET" and path in ("/fapi/v2/positionRisk", "/fapi/v3/positionRisk"):
            return send_json(h, 200, positions(p.get("symbol")))
        if method == "POST" and path == "/fapi/v1/leverage":
            if p.get("symbol") not in state["marks"]:
                return binance_error(h, 400, -1121, "Invalid symbol.")
            try:
                leverage = int(p.get("leverage", ""))
            except ValueError:
                return binance_error(h, 400, -1100, "Illegal characters found in parameter 'leverage'.")
            if not 1 <= leverage <= 125:
                return binance_error(h, 400, -4028, "Leverage is not valid")
            state["leverage"][p["symbol"]] = leverage
            return send_json(h, 200, {"leverage": leverage, "maxNotionalValue": "80000000", "symbol": p["symbol"]})
        if path == "/fapi/v1/order":
            if method == "POST":
                return new_order(h, p)
            order = find_order(p)
            if order is None:
                return binance_error(h, 400, -2013, "Order does not exist.")
            if method == "DELETE":
                if order["status"] != "NEW":
                    return binance_error(h, 400, -2011, "Unknown order sent.")
                order["status"] = "CANCELED"
            return send_json(h, 200, order_view(order))
        if method == "GET" and path == "/fapi/v1/openOrders":
            with venue.lock:
                found = [o for o in state["orders"].values() if o["status"] == "NEW" and p.get("symbol") in (None, o["symbol"])]
            return send_json(h, 200, [order_view(o) for o in found])
        if method == "DELETE" and path == "/fapi/v1/allOpenOrders":
            with venue.lock:
                for o in state["orders"].values():
                    if o["status"] == "NEW" and o["symbol"] == p.get("symbol"):
                        o["status"] = "CANCELED"
            return send_json(h, 200, {"code": 200, "msg": "The operation of cancel all open order is done."})
        # Anything else that is signed (transfers, margin changes, batches): answered if it ever arrives. Tests
        # assert what must never do.
        send_json(h, 200, {"code": 200, "msg": "success", "tranId": 1})

    venue = Venue(handle, state)
    return venue


PUBLIC = {"/fapi/v1/ping", "/fapi/v1/time", "/fapi/v1/exchangeInfo", "/fapi/v1/premiumIndex", "/fapi/v1/ticker/price",
          "/fapi/v2/ticker/price", "/fapi/v1/ticker/24hr", "/fapi/v1/depth"}
