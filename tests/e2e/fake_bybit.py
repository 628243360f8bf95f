"""A local fake of Bybit's v5 API (spot and linear perpetuals) on 127.0.0.1.

Private calls are checked as Bybit checks them: `X-BAPI-API-KEY` must be the planted real key, the timestamp
within the receive window, and `X-BAPI-SIGN` the hex HMAC-SHA256 of timestamp + key + receive window + the
query string (GET) or the raw body (POST). Like Bybit, every answer is HTTP 200 with `retCode` (0 for success).
Every request is recorded with its verdict under "auth"; an order the fake took is marked "accepted".
state: usdt (wallet USDT, a string), prices (last price by symbol), leverage (by symbol), orders (orderId → order).
"""
import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import parse_qsl, urlsplit

from fake_exchanges import Venue, _mark, _single_headers
from fakes import send_json

REAL_BYBIT_KEY = "PLANTEDrealBybitKey3xQ9"
REAL_BYBIT_SECRET = "PLANTEDrealBybitSecret7Lm2Np5Rs8Tv1Wx4Yz6Ab9Cd"
BYBIT_REJECT_QTY = "999"
BYBIT_PRICES = {"BTCUSDT": "50000", "ETHUSDT": "2500"}


def bybit_sign(timestamp, window, payload, key=REAL_BYBIT_KEY, secret=REAL_BYBIT_SECRET):
    return hmac.new(secret.encode(), f"{timestamp}{key}{window}{payload}".encode(), hashlib.sha256).hexdigest()


def now_ms():
    return int(time.time() * 1000)


def bybit(usdt="1000"):
    state = {"usdt": usdt, "prices": dict(BYBIT_PRICES), "leverage": {s: "10" for s in BYBIT_PRICES}, "orders": {},
             "ids": itertools.count(1)}
    venue = None

    def ok(h, result):
        send_json(h, 200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now_ms()})

    def fail(h, code, message):
        send_json(h, 200, {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": now_ms()})

    def authenticate(h, payload):
        headers = _single_headers(h, ["X-BAPI-API-KEY", "X-BAPI-SIGN", "X-BAPI-TIMESTAMP", "X-BAPI-RECV-WINDOW"])
        if headers is None or headers["X-BAPI-API-KEY"] != REAL_BYBIT_KEY:
            _mark(h, "rejected: key")
            fail(h, 10003, "API key is invalid.")
            return False
        try:
            timestamp, window = int(headers["X-BAPI-TIMESTAMP"]), int(headers["X-BAPI-RECV-WINDOW"] or "5000")
        except (TypeError, ValueError):
            _mark(h, "rejected: timestamp")
            fail(h, 10002, "invalid request, please check your timestamp")
            return False
        if not (now_ms() - window <= timestamp < now_ms() + 1000):
            _mark(h, "rejected: timestamp")
            fail(h, 10002, "invalid request, please check your server timestamp or recv_window param")
            return False
        expected = bybit_sign(headers["X-BAPI-TIMESTAMP"], headers["X-BAPI-RECV-WINDOW"], payload)
        if not hmac.compare_digest((headers["X-BAPI-SIGN"] or "").encode(), expected.encode()):
            _mark(h, "rejected: signature")
            fail(h, 10004, "error sign!")
            return False
        _mark(h, "ok")
        return True

    def instrument(symbol, category):
        base = symbol[:-4]
        info = {"symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "status": "Trading",
                "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048",
                                  "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000",
                                  "qtyStep": "0.001", "maxMktOrderQty": "100", "minNotionalValue": "5"},
                "priceFilter": {"tickSize": "0.01", "minPrice": "0.10", "maxPrice": "199999.80"}}
        if category == "linear":
            info.update({"contractType": "LinearPerpetual", "settleCoin": "USDT", "launchTime": "1585526400000",
                         "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": "2", "unifiedMarginTrade": True,
                         "fundingInterval": 480, "copyTrading": "both", "upperFundingRate": "0.00375",
                         "lowerFundingRate": "-0.00375", "isPreListing": False,
                         "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"}})
        else:
            info.update({"innovation": "0", "marginTrading": "both", "stTag": "0",
                         "riskParameters": {"limitParameter": "0.05", "marketParameter": "0.05"}})
        return info

    def ticker(symbol, category):
        p = state["prices"][symbol]
        t = {"symbol": symbol, "lastPrice": p, "bid1Price": p, "ask1Price": p, "bid1Size": "1", "ask1Size": "1",
             "prevPrice24h": p, "price24hPcnt": "0", "highPrice24h": p, "lowPrice24h": p, "turnover24h": "1000000",
             "volume24h": "100", "usdIndexPrice": p}
        if category == "linear":
            t.update({"markPrice": p, "indexPrice": p, "openInterest": "100", "fundingRate": "0.0001",
                      "nextFundingTime": str(now_ms() + 3_600_000)})
        return t

    def public(h, path, p):
        _mark(h, "public")
        category = p.get("category", "spot")
        if path == "/v5/market/time":
            return ok(h, {"timeSecond": str(int(time.time())), "timeNano": str(time.time_ns())})
        if path == "/v5/market/instruments-info":
            symbols = [s for s in state["prices"] if p.get("symbol") in (None, s)] if category in ("spot", "linear") else []
            return ok(h, {"category": category, "list": [instrument(s, category) for s in symbols], "nextPageCursor": ""})
        if path == "/v5/market/tickers":
            if "symbol" in p and p["symbol"] not in state["prices"]:
                return fail(h, 10001, "Not supported symbols")
            symbols = [s for s in state["prices"] if p.get("symbol") in (None, s)]
            return ok(h, {"category": category, "list": [ticker(s, category) for s in symbols]})
        return fail(h, 10001, "unknown public endpoint")

    def create_order(h, body):
        try:
            o = json.loads(body)
        except ValueError:
            return fail(h, 10001, "request body is not JSON")
        symbol, category = o.get("symbol"), o.get("category")
        if category not in ("spot", "linear") or symbol not in state["prices"]:
            return fail(h, 10001, "params error: symbol invalid")
        if o.get("qty") == BYBIT_REJECT_QTY:
            return fail(h, 110007, "ab not enough for new order")
        try:
            qty, price = float(o["qty"]), float(o.get("price") or 0)
        except (KeyError, TypeError, ValueError):
            return fail(h, 10001, "params error: qty invalid")
        if o.get("orderType") not in ("Market", "Limit") or (o["orderType"] == "Limit" and not price):
            return fail(h, 10001, "params error: orderType invalid")
        order_id = f"fake-{next(state['ids']):08d}"
        with venue.lock:
            state["orders"][order_id] = dict(o, orderId=order_id, orderStatus="Filled" if o["orderType"] == "Market" else "New")
        h.record["accepted"] = True
        ok(h, {"orderId": order_id, "orderLinkId": o.get("orderLinkId", "")})

    def handle(h, body):
        split = urlsplit(h.path)
        path, method = split.path, h.command
        if method == "GET" and path.startswith(("/v5/market/", "/v5/announcements/")):
            return public(h, path, dict(parse_qsl(split.query, keep_blank_values=True)))
        payload = split.query if method == "GET" else body.decode("latin-1")
        if not authenticate(h, payload):
            return
        p = dict(parse_qsl(split.query, keep_blank_values=True))
        if method == "GET" and path == "/v5/account/wallet-balance":
            return ok(h, {"list": [{"accountType": "UNIFIED", "totalEquity": state["usdt"], "totalWalletBalance": state["usdt"],
                                    "totalAvailableBalance": state["usdt"],
                                    "coin": [{"coin": "USDT", "equity": state["usdt"], "walletBalance": state["usdt"],
                                              "usdValue": state["usdt"], "locked": "0", "availableToWithdraw": state["usdt"],
                                              "unrealisedPnl": "0", "cumRealisedPnl": "0", "totalOrderIM": "0",
                                              "totalPositionIM": "0", "borrowAmount": "0"}]}]})
        if method == "GET" and path == "/v5/user/query-api":
            # As Bybit documents it: the key the call was signed with, described (its secret blank).
            return ok(h, {"id": "13770661", "note": "bot", "apiKey": REAL_BYBIT_KEY, "readOnly": 0, "secret": "",
                          "permissions": {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": [],
                                          "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [],
                                          "Exchange": [], "NFT": []},
                          "ips": ["*"], "type": 1, "deadlineDay": 66, "expiredAt": "2027-02-09T05:05:36Z",
                          "createdAt": "2026-12-05T05:05:36Z", "unified": 0, "uta": 1, "userID": 24617703,
                          "inviterID": 0, "vipLevel": "No VIP", "mktMakerLevel": "0", "affiliateID": 0, "isMaster": True,
                          "parentUid": "0", "kycLevel": "LEVEL_DEFAULT", "kycRegion": ""})
        if method == "GET" and path == "/v5/order/realtime":
            with venue.lock:
                found = [o for o in state["orders"].values() if o["orderStatus"] == "New" and p.get("symbol") in (None, o["symbol"])]
            return ok(h, {"list": found, "nextPageCursor": "", "category": p.get("category", "spot")})
        if method == "GET" and path == "/v5/position/list":
            return ok(h, {"list": [{"symbol": s, "leverage": state["leverage"][s], "size": "0", "side": "", "positionIdx": 0,
                                    "avgPrice": "0", "markPrice": state["prices"][s], "positionValue": "0"}
                                   for s in state["prices"] if p.get("symbol") in (None, s)],
                          "category": p.get("category", "linear"), "nextPageCursor": ""})
        if method == "POST" and path == "/v5/order/create":
            return create_order(h, body)
        if method == "POST" and path == "/v5/order/cancel":
            o = json.loads(body or b"{}")
            with venue.lock:
                order = state["orders"].get(o.get("orderId"))
                if order is None or order["orderStatus"] != "New":
                    return fail(h, 110001, "order not exists or too late to cancel")
                order["orderStatus"] = "Cancelled"
            return ok(h, {"orderId": o["orderId"], "orderLinkId": order.get("orderLinkId", "")})
        if method == "POST" and path == "/v5/position/set-leverage":
            o = json.loads(body or b"{}")
            if o.get("symbol") not in state["prices"]:
                return fail(h, 10001, "params error: symbol invalid")
            state["leverage"][o["symbol"]] = o.get("buyLeverage")
            return ok(h, {})
        # Transfers, withdrawals, sub-account keys…: answered if they ever arrive. Tests assert they never do.
        return ok(h, {"transferId": "fake"})

    venue = Venue(handle, state)
    return venue
