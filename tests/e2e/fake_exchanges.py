"""Local fake exchanges on 127.0.0.1: Binance Spot, Kalshi Trade API v2 and the Polymarket CLOB.

Each fake verifies the request's authentication exactly as the real venue does (Binance HMAC-SHA256 over the
raw query string and form body; Kalshi RSA-PSS over timestamp + method + path; Polymarket level-2 HMAC over
timestamp + method + path + body) against the planted real credentials below, and rejects anything else with
401 in the venue's error shape. Every request is recorded in `fake.requests` (rejected ones included), as in
`fakes.Fake`, with the fake's verdict on its authentication under "auth": "ok", "public" or "rejected: …".
Each fake has a `state` dict the tests may change (balances) and read (orders). Like the real CLOB, the Polymarket
fake also refuses an order whose "owner" is not the real API key. Polymarket order signatures (EIP-712) are checked
only when the fake is given a wallet (`polymarket(wallet_address=…)`, or `state["wallet"]`): then, like the CTF
Exchange, it recovers each order's signer (on the neg-risk exchange's domain for the tokens in
`state["neg_risk_tokens"]`) and accepts only that wallet; and its level-1 endpoints (`POST /auth/api-key`,
`GET /auth/derive-api-key`) recover the ClobAuth signer and mint level-2 credentials that replace the old ones.
"""
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from fakes import Fake, send_json

# Planted real credentials: only Warden may hold them; the agent and its SDK never see them.
REAL_BINANCE_KEY = "PLANTEDrealBinanceKey0vmX2k8qTz5Lw9NcY3bRfH7dJ1sA4pG6uE0iO2yK8hV3"
REAL_BINANCE_SECRET = "PLANTEDrealBinanceSecret7Qw2Er9Ty4Ui1Op6As3Df8Gh5Jk0Lz2Xc7Vb4Nm9"
REAL_KALSHI_KEY_ID = "a3c1f0de-5eed-4b1d-9c2a-70a1ed5ca1e1"
_KALSHI_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
REAL_KALSHI_PRIVATE_KEY_PEM = _KALSHI_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
REAL_POLY_API_KEY = "5eedf00d-7a1e-4b0b-8c1a-c0ffee000001"
REAL_POLY_API_SECRET = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
REAL_POLY_PASSPHRASE = secrets.token_hex(32)
# The wallet behind the Polymarket API key. Warden stores only its address; the key itself is here so the fake can
# be checked with py-clob-client directly (which puts its signer's address in POLY_ADDRESS).
_POLY_WALLET = Account.create()
REAL_POLY_WALLET_KEY = _POLY_WALLET.key.hex() if _POLY_WALLET.key.hex().startswith("0x") else "0x" + _POLY_WALLET.key.hex()
REAL_POLY_ADDRESS = _POLY_WALLET.address

# Markers that make a venue reject an order (a venue-side refusal, after Warden let it through).
BINANCE_REJECT_QUANTITY = "999"
KALSHI_REJECT_COUNT = 999
POLY_REJECT_MAKER_AMOUNT = "9990000"  # a BUY of 19.98 shares at 0.50

BINANCE_PRICES = {"BTCUSDT": "50000.00", "ETHUSDT": "2500.00", "ETHBTC": "0.05", "BNBUSDT": "600"}
KALSHI_TICKER = "KXFAKE-26DEC31-T50"
KALSHI_MARKET_PRICES = {"yes_bid": 44, "yes_ask": 46, "no_bid": 54, "no_ask": 56, "last_price": 45}
POLY_TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
# A token of a neg-risk market: its orders are signed for the neg-risk CTF Exchange's EIP-712 domain.
POLY_NEG_RISK_TOKEN_ID = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
POLY_CONDITION_ID = "0x" + "ab" * 32
POLY_PRICES = {"bid": "0.48", "ask": "0.52", "mid": "0.50", "last": "0.50"}


def now_ms():
    return int(time.time() * 1000)


class Venue(Fake):
    """A Fake with mutable `state` and a lock for it."""

    def __init__(self, handler, state):
        self.state = state
        self.lock = threading.Lock()
        super().__init__(handler)

    def seen(self, method=None, path_prefix=""):
        """Requests received, optionally filtered by method and path prefix."""
        return [r for r in self.requests
                if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)]


def _mark(h, verdict):
    """Notes on the recorded request how its authentication was judged: "ok", "public" or "rejected: …"."""
    record = getattr(h, "record", None)
    if record is not None:
        record["auth"] = verdict


def _single_headers(h, names):
    """The values of these headers, or None when one is sent more than once (a venue would not guess)."""
    values = {}
    for name in names:
        got = h.headers.get_all(name) or []
        if len(got) > 1:
            return None
        values[name] = got[0] if got else None
    return values


def _b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------------------------------- Binance Spot

BINANCE_PUBLIC = {"/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo", "/api/v3/ticker/price", "/api/v3/depth",
                  "/api/v3/klines", "/api/v3/ticker/24hr", "/api/v3/avgPrice", "/api/v3/trades", "/sapi/v1/system/status",
                  # Binance's futures hosts (fapi., dapi.): public market data only, answered here so that an SDK
                  # loading futures markets too (ccxt's default) reaches nothing outside the machine.
                  "/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"}
# What the wallet knows of each coin: (name, networks as (network, withdraw fee, withdraw min)).
BINANCE_COINS = {"USDT": ("TetherUS", [("ETH", "4", "10"), ("BSC", "0.8", "10")]), "BTC": ("Bitcoin", [("BTC", "0.0002", "0.001")]),
                 "ETH": ("Ethereum", [("ETH", "0.0016", "0.01")]), "BNB": ("BNB", [("BSC", "0.0005", "0.01")])}
BINANCE_WITHDRAWALS = [{"id": "b6ae22b3aa844210a7041aee7589627c", "amount": "8.91000000", "transactionFee": "0.004",
                        "coin": "USDT", "status": 6, "address": "0x94df8b352de7f46f64b01d3666bf6e936e44ce60",
                        "txId": "0xb5ef8c13b968a406cc62a93a8bd80f9e9a906ef1b3fcf20a2e48573c17659268",
                        "applyTime": "2026-01-05 12:00:00", "network": "ETH", "transferType": 0, "info": "",
                        "confirmNo": 12, "walletType": 0, "txKey": "", "completeTime": "2026-01-05 12:05:00"}]


def binance_sign(query_and_body, secret=REAL_BINANCE_SECRET):
    """The signature Binance expects: hex HMAC-SHA256 of totalParams."""
    return hmac.new(secret.encode(), query_and_body.encode(), hashlib.sha256).hexdigest()


def _split_params(raw):
    """Raw 'a=1&b=2' into (pairs without the signature, the raw string without it, signature values)."""
    kept, sigs = [], []
    for part in raw.split("&") if raw else []:
        name = part.split("=", 1)[0]
        if name == "signature":
            sigs.append(part.split("=", 1)[1] if "=" in part else "")
        else:
            kept.append(part)
    return parse_qsl("&".join(kept), keep_blank_values=True), "&".join(kept), sigs


def binance_error(h, status, code, msg):
    if getattr(h, "record", {}).get("auth") is None:
        _mark(h, f"rejected: {msg}")
    send_json(h, status, {"code": code, "msg": msg})


def binance_ticker(symbol):
    last = BINANCE_PRICES[symbol]
    return {"symbol": symbol, "priceChange": "0.00000000", "priceChangePercent": "0.000", "weightedAvgPrice": last,
            "prevClosePrice": last, "lastPrice": last, "lastQty": "0.01000000", "bidPrice": last, "bidQty": "1.00000000",
            "askPrice": last, "askQty": "1.00000000", "openPrice": last, "highPrice": last, "lowPrice": last,
            "volume": "100.00000000", "quoteVolume": "1000.00000000", "openTime": now_ms() - 86_400_000, "closeTime": now_ms(),
            "firstId": 1, "lastId": 100, "count": 100}


def binance_trade(order, fill):
    quote = f"{float(fill['price']) * float(fill['qty']):.8f}"
    return {"symbol": order["symbol"], "id": fill["tradeId"], "orderId": order["orderId"], "orderListId": -1,
            "price": fill["price"], "qty": fill["qty"], "quoteQty": quote, "commission": fill["commission"],
            "commissionAsset": fill["commissionAsset"], "time": order["transactTime"], "isBuyer": order["side"] == "BUY",
            "isMaker": False, "isBestMatch": True}


def _binance_coin(coin):
    name, networks = BINANCE_COINS[coin]
    return {"coin": coin, "depositAllEnable": True, "withdrawAllEnable": True, "name": name, "free": "0", "locked": "0",
            "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False,
            "trading": True,
            "networkList": [{"network": network, "coin": coin, "withdrawIntegerMultiple": "0.00000001",
                             "isDefault": i == 0, "depositEnable": True, "withdrawEnable": True, "depositDesc": "",
                             "withdrawDesc": "", "specialTips": "", "specialWithdrawTips": "", "name": network,
                             "resetAddressStatus": False, "addressRegex": "^(0x)[0-9A-Fa-f]{40}$", "memoRegex": "",
                             "withdrawFee": fee, "withdrawMin": minimum, "withdrawMax": "9999999999",
                             "withdrawInternalMin": "0.00000001", "depositDust": "0.00000001", "minConfirm": 12,
                             "unLockConfirm": 0, "sameAddress": False, "withdrawTag": False, "estimatedArrivalTime": 5,
                             "busy": False, "contractAddressUrl": "", "contractAddress": ""}
                            for i, (network, fee, minimum) in enumerate(networks)]}


def _binance_margin_pairs(params):
    pairs = [{"id": 351637150141315861 + i, "symbol": s, "base": s[:3], "quote": s[3:], "isMarginTrade": True,
              "isBuyAllowed": True, "isSellAllowed": True} for i, s in enumerate(BINANCE_PRICES)]
    return [p for p in pairs if params.get("symbol") in (None, p["symbol"])]


def _binance_isolated_pairs(params):
    return [{"symbol": s, "base": s[:3], "quote": s[3:], "isMarginTrade": True, "isBuyAllowed": True, "isSellAllowed": True}
            for s in BINANCE_PRICES if params.get("symbol") in (None, s)]


# The /sapi reads the fake answers (signed, GET), in the shapes of Binance's API reference.
BINANCE_SAPI_READS = {
    "/sapi/v1/capital/config/getall": lambda p: [_binance_coin(c) for c in BINANCE_COINS],
    "/sapi/v1/capital/withdraw/history": lambda p: [w for w in BINANCE_WITHDRAWALS if p.get("coin") in (None, w["coin"])],
    "/sapi/v1/capital/deposit/hisrec": lambda p: [],
    "/sapi/v1/margin/allPairs": _binance_margin_pairs,
    "/sapi/v1/margin/isolated/allPairs": _binance_isolated_pairs,
    "/sapi/v1/margin/allAssets": lambda p: [{"assetFullName": BINANCE_COINS[c][0], "assetName": c, "isBorrowable": True,
                                             "isMortgageable": True, "userMinBorrow": "0", "userMinRepay": "0"}
                                            for c in BINANCE_COINS],
    "/sapi/v1/asset/assetDetail": lambda p: {c: {"minWithdrawAmount": n[1][0][2], "depositStatus": True,
                                                 "withdrawFee": float(n[1][0][1]), "withdrawStatus": True, "depositTip": ""}
                                             for c, n in BINANCE_COINS.items() if p.get("asset") in (None, c)},
    "/sapi/v1/asset/tradeFee": lambda p: [{"symbol": s, "makerCommission": "0.001", "takerCommission": "0.001"}
                                          for s in BINANCE_PRICES if p.get("symbol") in (None, s)],
    "/sapi/v1/account/status": lambda p: {"data": "Normal"},
    "/sapi/v1/account/apiTradingStatus": lambda p: {"data": {"isLocked": False, "plannedRecoverTime": 0, "triggerCondition":
                                                             {"GCR": 150, "IFER": 150, "UFR": 300}, "updateTime": now_ms()}},
    "/sapi/v1/account/apiRestrictions": lambda p: {"ipRestrict": True, "createTime": 1_700_000_000_000, "enableReading": True,
                                                   "enableSpotAndMarginTrading": True, "enableWithdrawals": False,
                                                   "enableInternalTransfer": False, "enableMargin": False,
                                                   "enableFutures": False, "permitsUniversalTransfer": False,
                                                   "enableVanillaOptions": False, "enablePortfolioMarginTrading": False},
}


def binance_authenticate(h, body):
    """Checks a signed Binance call (Spot or futures) as Binance does; returns its parameters, or None after
    answering with Binance's error."""
    raw_query = urlsplit(h.path).query
    query, query_wo_sig, query_sigs = _split_params(raw_query)
    raw_body = body.decode("latin-1")
    form, body_wo_sig, body_sigs = _split_params(raw_body)
    names = [k for k, _ in query + form]
    if len(names) != len(set(names)) or len(query_sigs) + len(body_sigs) > 1:
        binance_error(h, 400, -1101, "Duplicate values for a parameter detected.")
        return None
    params = dict(query + form)
    headers = _single_headers(h, ["X-MBX-APIKEY"])
    if headers is None:
        binance_error(h, 401, -2015, "Invalid API-key, IP, or permissions for action.")
        return None
    key = headers["X-MBX-APIKEY"]
    if not key:
        binance_error(h, 401, -2014, "API-key format invalid.")
        return None
    if not hmac.compare_digest(key.encode(), REAL_BINANCE_KEY.encode()):
        binance_error(h, 401, -2015, "Invalid API-key, IP, or permissions for action.")
        return None
    if "timestamp" not in params:
        binance_error(h, 400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        return None
    try:
        timestamp, window = int(params["timestamp"]), int(params.get("recvWindow", "5000"))
    except ValueError:
        binance_error(h, 400, -1100, "Illegal characters found in a parameter.")
        return None
    server = now_ms()
    if window > 60000 or timestamp >= server + 1000 or server - timestamp > window:
        binance_error(h, 400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return None
    sigs = query_sigs + body_sigs
    expected = binance_sign(query_wo_sig + body_wo_sig)
    if not sigs or not hmac.compare_digest(sigs[0].encode(), expected.encode()):
        binance_error(h, 401, -1022, "Signature for this request is not valid.")
        return None
    _mark(h, "ok")
    return params


def binance(usdt="1000.00"):
    """A fake Binance Spot REST API. state: usdt (free USDT as a string), orders (orderId → order)."""
    state = {"usdt": usdt, "orders": {}, "ids": itertools.count(1001)}
    venue = None

    def public_params(h):
        return dict(parse_qsl(urlsplit(h.path).query, keep_blank_values=True))

    def order_view(order, full=False):
        view = {k: order[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime", "price",
                                      "origQty", "executedQty", "origQuoteOrderQty", "cummulativeQuoteQty", "status",
                                      "timeInForce", "type", "side", "workingTime", "selfTradePreventionMode")}
        if full:
            view["fills"] = order["fills"]
        return view

    def new_order(h, p):
        for field in ("symbol", "side", "type"):
            if not p.get(field):
                return binance_error(h, 400, -1102, f"Mandatory parameter '{field}' was not sent, was empty/null, or malformed.")
        symbol = p["symbol"]
        if symbol not in BINANCE_PRICES:
            return binance_error(h, 400, -1121, "Invalid symbol.")
        if p.get("quantity") == BINANCE_REJECT_QUANTITY:
            return binance_error(h, 400, -2010, "Account has insufficient balance for requested action.")
        last = float(BINANCE_PRICES[symbol])
        order_type = p["type"]
        if order_type == "MARKET":
            if p.get("quoteOrderQty"):
                quote = float(p["quoteOrderQty"])
                qty = quote / last
            elif p.get("quantity"):
                qty = float(p["quantity"])
                quote = qty * last
            else:
                return binance_error(h, 400, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
            status, price, executed = "FILLED", "0.00000000", qty
            fills = [{"price": f"{last:.8f}", "qty": f"{qty:.8f}", "commission": "0.00000000", "commissionAsset": "BNB",
                      "tradeId": next(state["ids"])}]
        else:
            if not p.get("quantity") or not p.get("price"):
                return binance_error(h, 400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            qty, quote = float(p["quantity"]), 0.0
            status, price, executed, fills = "NEW", p["price"], 0.0, []
        with venue.lock:
            order_id = next(state["ids"])
            order = {"symbol": symbol, "orderId": order_id, "orderListId": -1,
                     "clientOrderId": p.get("newClientOrderId") or f"fake{order_id}", "transactTime": now_ms(),
                     "price": price, "origQty": f"{qty:.8f}", "executedQty": f"{executed:.8f}",
                     "origQuoteOrderQty": p.get("quoteOrderQty", "0.00000000"), "cummulativeQuoteQty": f"{quote:.8f}",
                     "status": status, "timeInForce": p.get("timeInForce", "GTC"), "type": order_type, "side": p["side"],
                     "workingTime": now_ms(), "selfTradePreventionMode": "EXPIRE_MAKER", "fills": fills}
            state["orders"][order_id] = order
        send_json(h, 200, order_view(order, full=True))

    def find_order(p):
        with venue.lock:
            for order in state["orders"].values():
                if order["symbol"] == p.get("symbol") and (
                        str(order["orderId"]) == p.get("orderId") or order["clientOrderId"] == p.get("origClientOrderId")):
                    return order
        return None

    def cancel_order(h, p):
        order = find_order(p)
        if order is None or order["status"] != "NEW":
            return binance_error(h, 400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        view = order_view(order)
        view["origClientOrderId"] = view["clientOrderId"]
        view["clientOrderId"] = p.get("newClientOrderId") or f"cancel{order['orderId']}"
        send_json(h, 200, view)

    def handle(h, body):
        path = urlsplit(h.path).path
        method = h.command
        if path in BINANCE_PUBLIC and method == "GET":
            _mark(h, "public")
            p = public_params(h)
            if path == "/api/v3/ping":
                return send_json(h, 200, {})
            if path == "/api/v3/time":
                return send_json(h, 200, {"serverTime": now_ms()})
            if path == "/api/v3/exchangeInfo":
                symbols = [{"symbol": s, "status": "TRADING", "baseAsset": s[:3], "quoteAsset": s[3:],
                            "baseAssetPrecision": 8, "quotePrecision": 8, "quoteAssetPrecision": 8,
                            "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                            "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                            "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
                                         "tickSize": "0.01000000"},
                                        {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                                         "stepSize": "0.00001000"}]}
                           for s in BINANCE_PRICES if "symbol" not in p or p["symbol"] == s]
                return send_json(h, 200, {"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [],
                                          "exchangeFilters": [], "symbols": symbols})
            if path == "/api/v3/ticker/price":
                if "symbol" in p:
                    if p["symbol"] not in BINANCE_PRICES:
                        return binance_error(h, 400, -1121, "Invalid symbol.")
                    return send_json(h, 200, {"symbol": p["symbol"], "price": BINANCE_PRICES[p["symbol"]]})
                return send_json(h, 200, [{"symbol": s, "price": v} for s, v in BINANCE_PRICES.items()])
            if path == "/api/v3/ticker/24hr":
                if "symbol" in p and p["symbol"] not in BINANCE_PRICES:
                    return binance_error(h, 400, -1121, "Invalid symbol.")
                tickers = [binance_ticker(s) for s in BINANCE_PRICES if p.get("symbol") in (None, s)]
                return send_json(h, 200, tickers[0] if "symbol" in p else tickers)
            if path == "/sapi/v1/system/status":
                return send_json(h, 200, {"status": 0, "msg": "normal"})
            if path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
                return send_json(h, 200, {"timezone": "UTC", "serverTime": now_ms(), "rateLimits": [], "exchangeFilters": [],
                                          "assets": [], "symbols": []})
            if path == "/api/v3/depth":
                return send_json(h, 200, {"lastUpdateId": 1027024, "bids": [["49999.00", "1.50000000"]],
                                          "asks": [["50001.00", "2.00000000"]]})
            if path == "/api/v3/klines":
                start = 1_700_000_000_000
                return send_json(h, 200, [[start + i * 60000, "50000.00", "50100.00", "49900.00", "50050.00", "12.5",
                                           start + i * 60000 + 59999, "625000.00", 120, "6.0", "300000.00", "0"]
                                          for i in range(2)])
            return send_json(h, 200, {})
        if path == "/api/v3/userDataStream":  # USER_STREAM: the API key, no signature
            if h.headers.get("X-MBX-APIKEY") != REAL_BINANCE_KEY:
                return binance_error(h, 401, -2015, "Invalid API-key, IP, or permissions for action.")
            _mark(h, "ok")
            if method == "POST":
                listen_key = secrets.token_hex(30)
                state.setdefault("listen_keys", set()).add(listen_key)
                return send_json(h, 200, {"listenKey": listen_key})
            form = dict(parse_qsl(body.decode("latin-1")) + parse_qsl(urlsplit(h.path).query))
            if form.get("listenKey") not in state.get("listen_keys", set()):
                return binance_error(h, 400, -1125, "This listenKey does not exist.")
            if method == "DELETE":
                state["listen_keys"].discard(form["listenKey"])
            return send_json(h, 200, {})
        params = binance_authenticate(h, body)
        if params is None:
            return
        if path == "/api/v3/account" and method == "GET":
            return send_json(h, 200, {
                "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
                "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
                "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now_ms(), "accountType": "SPOT",
                "balances": [{"asset": "USDT", "free": state["usdt"], "locked": "0.00000000"},
                             {"asset": "BNB", "free": "0.00000000", "locked": "0.00000000"}],
                "permissions": ["SPOT"], "uid": 354937868})
        if path == "/api/v3/order":
            if method == "POST":
                return new_order(h, params)
            if method == "DELETE":
                return cancel_order(h, params)
            if method == "GET":
                order = find_order(params)
                if order is None:
                    return binance_error(h, 400, -2013, "Order does not exist.")
                return send_json(h, 200, order_view(order))
        if path == "/api/v3/openOrders":
            with venue.lock:
                open_orders = [o for o in state["orders"].values()
                               if o["status"] == "NEW" and params.get("symbol") in (None, o["symbol"])]
            if method == "GET":
                return send_json(h, 200, [order_view(o) for o in open_orders])
            if method == "DELETE":
                if not params.get("symbol"):
                    return binance_error(h, 400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
                for o in open_orders:
                    o["status"] = "CANCELED"
                return send_json(h, 200, [dict(order_view(o), origClientOrderId=o["clientOrderId"]) for o in open_orders])
        if path == "/api/v3/myTrades" and method == "GET":
            with venue.lock:
                trades = [binance_trade(o, f) for o in state["orders"].values() for f in o["fills"]
                          if params.get("symbol") in (None, o["symbol"])]
            return send_json(h, 200, trades)
        if method == "GET" and path in BINANCE_SAPI_READS:
            return send_json(h, 200, BINANCE_SAPI_READS[path](params))
        if path.startswith("/sapi/"):
            # Withdrawals, transfers and the rest of the wallet API: answered if they ever arrive. Tests assert
            # they never do.
            return send_json(h, 200, {"id": uuid.uuid4().hex, "tranId": 1})
        binance_error(h, 404, -1000, "Unknown endpoint.")

    venue = Venue(handle, state)
    return venue


# --------------------------------------------------------------------------------------------- Kalshi v2

KALSHI_PREFIX = "/trade-api/v2"


def kalshi_sign(private_key, timestamp, method, path):
    """The signature Kalshi expects: base64 RSA-PSS (SHA-256, MGF1 SHA-256, salt = digest length)."""
    message = f"{timestamp}{method}{path}".encode()
    return base64.b64encode(private_key.sign(message, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                                             hashes.SHA256())).decode()


def kalshi_error(h, status, code, message):
    if getattr(h, "record", {}).get("auth") is None:
        _mark(h, f"rejected: {message}")
    send_json(h, status, {"error": {"code": code, "message": message, "service": "fake"}})


def _dollars(cents):
    return f"{cents / 100:.4f}"


def kalshi_market(ticker=KALSHI_TICKER):
    prices = KALSHI_MARKET_PRICES
    market = {
        "ticker": ticker, "event_ticker": ticker.rsplit("-", 1)[0], "market_type": "binary",
        "title": "Will the fake index close above 50?", "subtitle": "Above 50", "yes_sub_title": "Above 50",
        "no_sub_title": "50 or below", "created_time": "2026-01-01T00:00:00Z", "open_time": "2026-01-01T00:00:00Z",
        "close_time": "2026-12-31T21:00:00Z", "expected_expiration_time": "2026-12-31T22:00:00Z",
        "expiration_time": "2027-01-07T22:00:00Z", "latest_expiration_time": "2027-01-07T22:00:00Z",
        "settlement_timer_seconds": 1800, "status": "active", "response_price_units": "usd_cent",
        "volume": 1200, "volume_24h": 300, "result": "", "can_close_early": True, "open_interest": 800,
        "notional_value": 100, "notional_value_dollars": "1.0000", "previous_yes_bid": 43,
        "previous_yes_bid_dollars": "0.4300", "previous_yes_ask": 47, "previous_yes_ask_dollars": "0.4700",
        "previous_price": 45, "previous_price_dollars": "0.4500", "liquidity": 100000, "liquidity_dollars": "1000.0000",
        "expiration_value": "", "category": "Economics", "risk_limit_cents": 0, "tick_size": 1,
        "strike_type": "greater", "floor_strike": 50, "rules_primary": "Resolves YES if the fake index closes above 50.",
        "rules_secondary": "", "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0100", "end": "0.9900", "step": "0.0100"}],
    }
    for name, cents in prices.items():
        market[name] = cents
        market[name + "_dollars"] = _dollars(cents)
    return market


def kalshi(balance_cents=100_000):
    """A fake Kalshi Trade API v2. state: balance_cents, orders (order_id → order)."""
    state = {"balance_cents": balance_cents, "orders": {}}
    public_key = _KALSHI_KEY.public_key()
    venue = None

    def authenticate(h, path):
        names = ("KALSHI-ACCESS-KEY", "KALSHI-ACCESS-TIMESTAMP", "KALSHI-ACCESS-SIGNATURE")
        headers = _single_headers(h, names)
        if headers is None:
            kalshi_error(h, 401, "authentication_error", "authentication header sent twice")
            return False
        key, ts, sig = (headers[n] for n in names)
        if not key or not ts or not sig:
            kalshi_error(h, 401, "missing_parameters", "missing authentication headers")
            return False
        if not hmac.compare_digest(key.encode(), REAL_KALSHI_KEY_ID.encode()):
            kalshi_error(h, 401, "authentication_error", "unknown api key")
            return False
        if not ts.isdigit() or abs(now_ms() - int(ts)) > 60_000:
            kalshi_error(h, 401, "authentication_error", "timestamp outside the allowed window")
            return False
        try:
            public_key.verify(base64.b64decode(sig, validate=True), f"{ts}{h.command}{path}".encode(),
                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        except (InvalidSignature, ValueError):
            kalshi_error(h, 401, "authentication_error", "invalid signature")
            return False
        _mark(h, "ok")
        return True

    def create_order(h, body):
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return kalshi_error(h, 400, "bad_request", "invalid JSON body")
        for field in ("ticker", "side", "action", "count"):
            if field not in req:
                return kalshi_error(h, 400, "bad_request", f"missing field {field}")
        if req["side"] not in ("yes", "no") or req["action"] not in ("buy", "sell"):
            return kalshi_error(h, 400, "bad_request", "invalid side or action")
        if req["ticker"] != KALSHI_TICKER:
            return kalshi_error(h, 404, "market_not_found", "market not found")
        if req["count"] == KALSHI_REJECT_COUNT:
            return kalshi_error(h, 400, "insufficient_balance", "insufficient balance")
        yes = req.get("yes_price")
        if yes is None and req.get("yes_price_dollars"):
            yes = round(float(req["yes_price_dollars"]) * 100)
        no = req.get("no_price")
        if no is None and req.get("no_price_dollars"):
            no = round(float(req["no_price_dollars"]) * 100)
        if yes is None and no is None:
            return kalshi_error(h, 400, "bad_request", "a price is required")
        yes = yes if yes is not None else 100 - no
        no = no if no is not None else 100 - yes
        order = {
            "order_id": str(uuid.uuid4()), "user_id": "fake-user-0001",
            "client_order_id": req.get("client_order_id") or str(uuid.uuid4()), "ticker": req["ticker"],
            "side": req["side"], "action": req["action"], "type": req.get("type") or "limit", "status": "resting",
            "yes_price": yes, "no_price": no, "yes_price_dollars": _dollars(yes), "no_price_dollars": _dollars(no),
            "fill_count": 0, "remaining_count": req["count"], "initial_count": req["count"], "taker_fees": 0,
            "maker_fees": 0, "taker_fill_cost": 0, "maker_fill_cost": 0, "taker_fill_cost_dollars": "0.0000",
            "maker_fill_cost_dollars": "0.0000", "queue_position": 0, "taker_fees_dollars": "0.0000",
            "maker_fees_dollars": "0.0000", "created_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "last_update_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        with venue.lock:
            state["orders"][order["order_id"]] = order
        send_json(h, 201, {"order": dict(order)})

    def handle(h, body):
        path = urlsplit(h.path).path
        method = h.command
        if not path.startswith(KALSHI_PREFIX + "/"):
            return kalshi_error(h, 404, "not_found", "not found")
        rest = path[len(KALSHI_PREFIX):]
        event = KALSHI_TICKER.rsplit("-", 1)[0]
        if method == "GET" and ((rest == "/markets" or rest.startswith("/markets/")) and not rest.endswith("/orderbook")
                                or rest in ("/exchange/status", "/exchange/user_data_timestamp", f"/events/{event}/metadata")):
            _mark(h, "public")
            if rest == "/exchange/status":
                return send_json(h, 200, {"exchange_active": True, "trading_active": True})
            if rest == "/exchange/user_data_timestamp":
                return send_json(h, 200, {"as_of_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            if rest == f"/events/{event}/metadata":
                return send_json(h, 200, {"image_url": "/images/fake.png", "competition": None,
                                          "market_details": [{"market_ticker": KALSHI_TICKER, "image_url": "/images/fake-t50.png",
                                                              "color_code": "#00AA55"}],
                                          "settlement_sources": [{"name": "Fake Index", "url": "https://example.com/index"}]})
            if rest == "/markets":
                return send_json(h, 200, {"markets": [kalshi_market()], "cursor": ""})
            parts = rest.split("/")
            if parts[2] != KALSHI_TICKER:
                return kalshi_error(h, 404, "not_found", "market not found")
            if len(parts) == 3:
                return send_json(h, 200, {"market": kalshi_market()})
            return kalshi_error(h, 404, "not_found", "not found")
        if not authenticate(h, path):
            return
        if method == "GET" and rest == f"/markets/{KALSHI_TICKER}/orderbook":  # authenticated in Kalshi's OpenAPI
            p = KALSHI_MARKET_PRICES
            return send_json(h, 200, {"orderbook": {"yes": [[p["yes_bid"], 100]], "no": [[p["no_bid"], 100]],
                                                    "yes_dollars": [[_dollars(p["yes_bid"]), "100"]],
                                                    "no_dollars": [[_dollars(p["no_bid"]), "100"]]}})
        if rest == "/portfolio/order_groups" and method == "GET":
            return send_json(h, 200, {"order_groups": [{"id": "og-1", "is_auto_cancel_enabled": False}]})
        if rest.startswith("/portfolio/orders/") and rest.endswith("/queue_position") and rest.count("/") == 4 and method == "GET":
            with venue.lock:
                known = rest.split("/")[3] in state["orders"]
            if not known:
                return kalshi_error(h, 404, "not_found", "order not found")
            return send_json(h, 200, {"queue_position": 3})
        if rest == "/portfolio/balance" and method == "GET":
            return send_json(h, 200, {"balance": state["balance_cents"], "portfolio_value": 0, "updated_ts": int(time.time())})
        if rest == "/portfolio/positions" and method == "GET":
            return send_json(h, 200, {"market_positions": [], "event_positions": [], "cursor": ""})
        if rest == "/portfolio/orders" and method == "POST":
            return create_order(h, body)
        if rest == "/portfolio/orders" and method == "GET":
            with venue.lock:
                orders = [dict(o) for o in state["orders"].values()]
            return send_json(h, 200, {"orders": orders, "cursor": ""})
        if rest.startswith("/portfolio/orders/") and rest.count("/") == 3:
            order_id = rest.rsplit("/", 1)[1]
            with venue.lock:
                order = state["orders"].get(order_id)
                if order is None:
                    return kalshi_error(h, 404, "not_found", "order not found")
                if method == "GET":
                    return send_json(h, 200, {"order": dict(order)})
                if method == "DELETE":
                    reduced = order["remaining_count"]
                    order.update(status="canceled", remaining_count=0)
                    return send_json(h, 200, {"order": dict(order), "reduced_by": reduced})
        kalshi_error(h, 404, "not_found", "not found")

    venue = Venue(handle, state)
    return venue


# ------------------------------------------------------------------------------------------ Polymarket CLOB

POLY_L2_PREFIXES = ("/balance-allowance", "/data/", "/order", "/orders", "/cancel-all", "/cancel-market-orders",
                    "/notifications", "/auth/", "/order-scoring", "/orders-scoring", "/v1/heartbeats")
POLY_L1_ENDPOINTS = {("POST", "/auth/api-key"): "create", ("GET", "/auth/derive-api-key"): "derive"}

# The EIP-712 domains the CLOB checks orders and level-1 headers against (Polygon mainnet, published addresses).
POLY_CHAIN_ID = 137
POLY_EXCHANGE = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
POLY_NEG_RISK_EXCHANGE = "0xC5d563A36AE78145C45a50134d48A1215220f80a"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_DOMAIN_FIELDS = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                  {"name": "chainId", "type": "uint256"}]
_ORDER_FIELDS = [("salt", "uint256"), ("maker", "address"), ("signer", "address"), ("taker", "address"),
                 ("tokenId", "uint256"), ("makerAmount", "uint256"), ("takerAmount", "uint256"),
                 ("expiration", "uint256"), ("nonce", "uint256"), ("feeRateBps", "uint256"),
                 ("side", "uint8"), ("signatureType", "uint8")]
_ORDER_DECIMAL_STRINGS = ("tokenId", "makerAmount", "takerAmount", "expiration", "nonce", "feeRateBps")


def _is_address(value):
    return isinstance(value, str) and len(value) == 42 and value[:2] == "0x" and all(
        c in "0123456789abcdefABCDEF" for c in value[2:])


def _typed_digest(domain, primary, fields, message):
    full = {"types": {"EIP712Domain": _DOMAIN_FIELDS + ([{"name": "verifyingContract", "type": "address"}]
                                                        if "verifyingContract" in domain else []),
                      primary: [{"name": n, "type": t} for n, t in fields]},
            "primaryType": primary, "domain": domain, "message": message}
    return bytes(_hash_eip191_message(encode_typed_data(full_message=full)))


def poly_order_digest(order, exchange=POLY_EXCHANGE, chain_id=POLY_CHAIN_ID):
    """The EIP-712 digest of an order as the CLOB receives it (the JSON of POST /order: `salt` a number, amounts as
    decimal strings, `side` "BUY"|"SELL", `signatureType` a number). ValueError when a field is malformed."""
    if not isinstance(order.get("salt"), int) or isinstance(order["salt"], bool) or order["salt"] < 0:
        raise ValueError("salt")
    for field in ("maker", "signer", "taker"):
        if not _is_address(order.get(field)):
            raise ValueError(field)
    for field in _ORDER_DECIMAL_STRINGS:
        value = order.get(field)
        if not isinstance(value, str) or not value.isascii() or not value.isdigit():
            raise ValueError(field)
    if order.get("side") not in ("BUY", "SELL"):
        raise ValueError("side")
    if order.get("signatureType") not in (0, 1, 2) or isinstance(order["signatureType"], bool):
        raise ValueError("signatureType")
    message = {"salt": order["salt"], "maker": order["maker"], "signer": order["signer"], "taker": order["taker"],
               **{field: int(order[field]) for field in _ORDER_DECIMAL_STRINGS},
               "side": 0 if order["side"] == "BUY" else 1, "signatureType": order["signatureType"]}
    domain = {"name": "Polymarket CTF Exchange", "version": "1", "chainId": chain_id, "verifyingContract": exchange}
    return _typed_digest(domain, "Order", _ORDER_FIELDS, message)


def clob_auth_digest(address, timestamp, nonce, chain_id=POLY_CHAIN_ID):
    """The EIP-712 digest of the level-1 ClobAuth message (timestamp is a string, nonce an integer)."""
    return _typed_digest({"name": "ClobAuthDomain", "version": "1", "chainId": chain_id}, "ClobAuth",
                         [("address", "address"), ("timestamp", "string"), ("nonce", "uint256"), ("message", "string")],
                         {"address": address, "timestamp": str(timestamp), "nonce": int(nonce),
                          "message": CLOB_AUTH_MESSAGE})


def recover_signer(digest, signature):
    """The checksummed address that made `signature` (0x-hex r || s || v) over `digest`, or None when it is not a
    signature the exchange contract would take: 65 bytes, v 27 or 28, low s (as OpenZeppelin's ECDSA.recover)."""
    if not isinstance(signature, str) or len(signature) != 132 or signature[:2] != "0x":
        return None
    try:
        raw = bytes.fromhex(signature[2:])
    except ValueError:
        return None
    r, s, v = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if v not in (27, 28) or not 0 < s <= _SECP256K1_HALF_N or r == 0:
        return None
    try:
        return Account._recover_hash(digest, signature=raw)
    except Exception:
        return None


def poly_sign(secret, timestamp, method, path, body=b""):
    """The signature Polymarket expects: URL-safe base64 HMAC-SHA256 under the URL-safe-base64-decoded secret."""
    message = f"{timestamp}{method}{path}".encode() + body
    return base64.urlsafe_b64encode(hmac.new(_b64url_decode(secret), message, hashlib.sha256).digest()).decode()


def poly_error(h, status, message):
    if getattr(h, "record", {}).get("auth") is None:
        _mark(h, f"rejected: {message}")
    send_json(h, status, {"error": message})


def polymarket(usdc_micro="1000000000", wallet_address=None):
    """A fake Polymarket CLOB.

    state: usdc_micro (collateral balance, 6 decimals); orders (orderID → order); creds (the level-2 API credentials
    it accepts, at first the planted REAL_POLY_*); wallet (None, or the address whose signatures it requires);
    neg_risk_tokens (token ids whose markets are neg-risk); api_keys (nonce → credentials minted at level 1);
    signatures (what it recovered: one entry per order checked and per level-1 call).

    With a wallet: POST /order and /orders accept an order only if `maker` == `signer` == the wallet,
    `signatureType` == 0 (EOA), and the EIP-712 signature recovers to the wallet on the CTF Exchange domain (the
    neg-risk exchange's for a neg-risk token), else 400 {"error": "invalid signature"}. Level-2 headers must carry
    the wallet in POLY_ADDRESS (without a wallet, REAL_POLY_ADDRESS).

    Level 1 (POLY_ADDRESS, POLY_SIGNATURE, POLY_TIMESTAMP, POLY_NONCE; the ClobAuth signature must recover to that
    address, which must be the wallet, and the timestamp be within 60 s): POST /auth/api-key mints new
    credentials for the nonce (400 if that nonce already has some, like the real CLOB), GET /auth/derive-api-key
    returns the nonce's credentials (400 if none). Either way the answer becomes the ONLY level-2 credentials the
    fake accepts from then on, so a test can tell the rotated credentials are in use. `state["l1_answer"]`, when set,
    is called with the minted credentials (api_key, secret, passphrase) and returns (status, body bytes): the answer
    sent instead of the well-formed one (the credentials are minted all the same), for a venue answering oddly.
    """
    state = {"usdc_micro": usdc_micro, "orders": {}, "wallet": wallet_address,
             "creds": {"api_key": REAL_POLY_API_KEY, "secret": REAL_POLY_API_SECRET, "passphrase": REAL_POLY_PASSPHRASE},
             "neg_risk_tokens": {POLY_NEG_RISK_TOKEN_ID}, "api_keys": {}, "signatures": [], "l1_answer": None}
    venue = None

    def owner_address():
        return state["wallet"] or REAL_POLY_ADDRESS

    def note(h, entry):
        with venue.lock:
            state["signatures"].append(entry)
        record = getattr(h, "record", None)
        if record is not None:
            record.setdefault("signatures", []).append(entry)

    def authenticate(h, path, body):
        headers = _single_headers(h, ("POLY_ADDRESS", "POLY_API_KEY", "POLY_PASSPHRASE", "POLY_TIMESTAMP", "POLY_SIGNATURE"))
        if headers is None or not all(headers.values()):
            poly_error(h, 401, "Unauthorized/Invalid api key")
            return False
        with venue.lock:
            creds = dict(state["creds"])
        if (headers["POLY_ADDRESS"].lower() != owner_address().lower()
                or not hmac.compare_digest(headers["POLY_API_KEY"].encode(), creds["api_key"].encode())
                or not hmac.compare_digest(headers["POLY_PASSPHRASE"].encode(), creds["passphrase"].encode())):
            poly_error(h, 401, "Unauthorized/Invalid api key")
            return False
        ts = headers["POLY_TIMESTAMP"]
        if not ts.isdigit() or abs(time.time() - int(ts)) > 60:
            poly_error(h, 401, "Unauthorized/Invalid api key")
            return False
        expected = poly_sign(creds["secret"], ts, h.command, path, body)
        if not hmac.compare_digest(headers["POLY_SIGNATURE"].encode(), expected.encode()):
            poly_error(h, 401, "Unauthorized/Invalid api key")
            return False
        _mark(h, "ok")
        return True

    def level_one(h, action):
        """POST /auth/api-key and GET /auth/derive-api-key, authenticated by the wallet's ClobAuth signature."""
        headers = _single_headers(h, ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP", "POLY_NONCE"))
        if headers is None or not all(headers[n] for n in ("POLY_ADDRESS", "POLY_SIGNATURE", "POLY_TIMESTAMP")):
            return poly_error(h, 401, "Invalid L1 Request headers")
        address, ts, nonce = headers["POLY_ADDRESS"], headers["POLY_TIMESTAMP"], headers["POLY_NONCE"] or "0"
        if (not _is_address(address) or not ts.isascii() or not ts.isdigit() or not nonce.isascii()
                or not nonce.isdigit() or abs(time.time() - int(ts)) > 60):
            return poly_error(h, 401, "Invalid L1 Request headers")
        signer = recover_signer(clob_auth_digest(address, ts, int(nonce)), headers["POLY_SIGNATURE"])
        ok = signer is not None and signer.lower() == address.lower() == owner_address().lower()
        note(h, {"kind": action, "signer": signer, "address": address, "nonce": int(nonce), "timestamp": ts,
                 "accepted": ok})
        if not ok:
            return poly_error(h, 401, "Invalid L1 Request headers")
        _mark(h, "ok")
        with venue.lock:
            existing = state["api_keys"].get(int(nonce))
            if action == "create":
                if existing is not None:
                    minted = None
                else:
                    minted = {"api_key": str(uuid.uuid4()),
                              "secret": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                              "passphrase": secrets.token_hex(32)}
                    state["api_keys"][int(nonce)] = minted
            else:
                minted = existing
            if minted is not None:
                state["creds"] = dict(minted)
        if minted is None:
            return poly_error(h, 400, "Could not create api key" if action == "create" else "Could not derive api key!")
        if state.get("l1_answer") is not None:
            status, data = state["l1_answer"](minted)
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            return
        send_json(h, 200, {"apiKey": minted["api_key"], "secret": minted["secret"], "passphrase": minted["passphrase"]})

    def check_signature(h, order):
        """None when the order is signed by the configured wallet (or no wallet is configured), else the error."""
        wallet = state["wallet"]
        if not wallet:
            return None
        neg_risk = order.get("tokenId") in state["neg_risk_tokens"]
        try:
            digest = poly_order_digest(order, POLY_NEG_RISK_EXCHANGE if neg_risk else POLY_EXCHANGE)
        except ValueError as e:
            note(h, {"kind": "order", "signer": None, "domain": "neg_risk" if neg_risk else "exchange",
                     "token_id": order.get("tokenId"), "accepted": False, "malformed": str(e)})
            return f"Invalid order payload: {e}"
        signer = recover_signer(digest, order.get("signature"))
        ok = (signer is not None and signer.lower() == wallet.lower() and order["maker"].lower() == wallet.lower()
              and order["signer"].lower() == wallet.lower() and order["signatureType"] == 0)
        note(h, {"kind": "order", "signer": signer, "domain": "neg_risk" if neg_risk else "exchange",
                 "token_id": order["tokenId"], "maker": order["maker"], "order_signer": order["signer"],
                 "signature_type": order["signatureType"], "salt": order["salt"], "accepted": ok})
        return None if ok else "invalid signature"

    def accept_order(h, item):
        """Returns (status, response) for one {order, owner, orderType} entry."""
        if not isinstance(item, dict) or not isinstance(item.get("order"), dict):
            return 400, {"error": "Invalid order payload"}
        if item.get("owner") != state["creds"]["api_key"]:
            return 400, {"error": "the order owner has to be the owner of the API KEY"}
        order = item["order"]
        for field in ("salt", "maker", "signer", "taker", "tokenId", "makerAmount", "takerAmount", "expiration",
                      "nonce", "feeRateBps", "side", "signatureType", "signature"):
            if field not in order:
                return 400, {"error": f"Invalid order payload: missing {field}"}
        problem = check_signature(h, order)
        if problem:
            return 400, {"error": problem}
        if order["makerAmount"] == POLY_REJECT_MAKER_AMOUNT:
            return 400, {"error": "not enough balance / allowance"}
        order_id = "0x" + secrets.token_hex(32)
        with venue.lock:
            state["orders"][order_id] = {
                "id": order_id, "status": "LIVE", "owner": item["owner"], "maker_address": order["maker"],
                "market": POLY_CONDITION_ID, "asset_id": order["tokenId"], "side": order["side"],
                "original_size": order["takerAmount"] if order["side"] == "BUY" else order["makerAmount"],
                "size_matched": "0", "price": POLY_PRICES["mid"], "outcome": "Yes", "order_type": item.get("orderType", "GTC"),
                "created_at": int(time.time()), "expiration": order["expiration"], "associate_trades": []}
        return 200, {"success": True, "errorMsg": "", "orderID": order_id, "transactionsHashes": [], "status": "live",
                     "takingAmount": "", "makingAmount": ""}

    def cancel(ids):
        canceled, not_canceled = [], {}
        with venue.lock:
            for order_id in ids:
                order = state["orders"].get(order_id)
                if order and order["status"] == "LIVE":
                    order["status"] = "CANCELED"
                    canceled.append(order_id)
                else:
                    not_canceled[order_id] = "order not found or already canceled"
        return {"canceled": canceled, "not_canceled": not_canceled}

    def book(token):
        return {"market": POLY_CONDITION_ID, "asset_id": token, "timestamp": str(now_ms()), "hash": "0" * 40,
                "bids": [{"price": POLY_PRICES["bid"], "size": "1000"}], "asks": [{"price": POLY_PRICES["ask"], "size": "1000"}],
                "min_order_size": "5", "tick_size": "0.01", "neg_risk": token in state["neg_risk_tokens"],
                "last_trade_price": POLY_PRICES["last"]}

    def handle(h, body):
        split = urlsplit(h.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        method = h.command
        if method == "GET" and not path.startswith(POLY_L2_PREFIXES):
            _mark(h, "public")
            token = query.get("token_id", POLY_TOKEN_ID)
            if path == "/":
                return send_json(h, 200, "OK")
            if path == "/time":
                return send_json(h, 200, int(time.time()))
            if token != POLY_TOKEN_ID and token not in state["neg_risk_tokens"]:
                return poly_error(h, 404, "market not found")
            if path == "/tick-size":
                return send_json(h, 200, {"minimum_tick_size": 0.01})
            if path == "/neg-risk":
                return send_json(h, 200, {"neg_risk": token in state["neg_risk_tokens"]})
            if path == "/fee-rate":
                return send_json(h, 200, {"base_fee": 0})
            if path == "/book":
                return send_json(h, 200, book(token))
            if path == "/price":
                return send_json(h, 200, {"price": POLY_PRICES["ask"] if query.get("side", "").upper() == "BUY" else POLY_PRICES["bid"]})
            if path == "/midpoint":
                return send_json(h, 200, {"mid": POLY_PRICES["mid"]})
            if path == "/last-trade-price":
                return send_json(h, 200, {"price": POLY_PRICES["last"], "side": "BUY"})
            if path == "/live-activity/events/" + POLY_CONDITION_ID:
                return send_json(h, 200, [{"event_type": "trade", "market": POLY_CONDITION_ID, "asset_id": POLY_TOKEN_ID,
                                           "side": "BUY", "price": POLY_PRICES["last"], "size": "10", "timestamp": str(now_ms())}])
            if path in ("/markets/" + POLY_CONDITION_ID, "/markets"):
                market = {"condition_id": POLY_CONDITION_ID, "question": "Will the fake index close above 50?",
                          "active": True, "closed": False, "accepting_orders": True, "minimum_order_size": 5,
                          "minimum_tick_size": 0.01, "neg_risk": False,
                          "tokens": [{"token_id": POLY_TOKEN_ID, "outcome": "Yes", "price": float(POLY_PRICES["mid"])}]}
                if path == "/markets":
                    return send_json(h, 200, {"data": [market], "next_cursor": "LTE=", "limit": 100, "count": 1})
                return send_json(h, 200, market)
            return poly_error(h, 404, "not found")
        if (method, path) in POLY_L1_ENDPOINTS:
            return level_one(h, POLY_L1_ENDPOINTS[(method, path)])
        if not authenticate(h, path, body):
            return
        if path == "/balance-allowance" and method == "GET":
            return send_json(h, 200, {"balance": state["usdc_micro"], "allowance": "115792089237316195423570985008687907853269984665640564039457584007913129639935",
                                      "allowances": {"0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E": "115792089237316195423570985008687907853269984665640564039457584007913129639935"}})
        if path == "/data/orders" and method == "GET":
            with venue.lock:
                live = [dict(o) for o in state["orders"].values() if o["status"] == "LIVE"]
            return send_json(h, 200, {"data": live, "next_cursor": "LTE=", "limit": 100, "count": len(live)})
        if path == "/auth/ban-status/closed-only" and method == "GET":
            return send_json(h, 200, {"closed_only": False})
        if path == "/orders-scoring" and method == "POST":
            try:
                ids = json.loads(body)
            except ValueError:
                return poly_error(h, 400, "Invalid payload")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                return poly_error(h, 400, "Invalid payload")
            with venue.lock:
                return send_json(h, 200, {i: False for i in ids if i in state["orders"]})
        if path.startswith("/data/order/") and method == "GET":
            with venue.lock:
                order = state["orders"].get(path.rsplit("/", 1)[1])
            return send_json(h, 200, dict(order) if order else None)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return poly_error(h, 400, "Invalid order payload")
        if path == "/order" and method == "POST":
            status, result = accept_order(h, payload)
            return send_json(h, status, result)
        if path == "/orders" and method == "POST":
            if not isinstance(payload, list):
                return poly_error(h, 400, "Invalid order payload")
            results = [accept_order(h, item)[1] for item in payload]
            return send_json(h, 200, [r if "success" in r else {"success": False, "errorMsg": r["error"], "orderID": ""}
                                      for r in results])
        if path == "/order" and method == "DELETE":
            return send_json(h, 200, cancel([(payload or {}).get("orderID")]))
        if path == "/orders" and method == "DELETE":
            return send_json(h, 200, cancel(payload or []))
        if path == "/cancel-all" and method == "DELETE":
            with venue.lock:
                ids = [i for i, o in state["orders"].items() if o["status"] == "LIVE"]
            return send_json(h, 200, cancel(ids))
        poly_error(h, 404, "not found")

    venue = Venue(handle, state)
    return venue
