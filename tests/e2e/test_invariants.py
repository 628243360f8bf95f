"""Invariants under generated traffic: what the venues could execute or bill never exceeds the owner's limits.

Each scenario drives randomly generated requests through the real `warden` binary to local fakes, then checks the
fakes' own records (never Warden's answer codes) against the owner's limits:

1. exchange orders (Binance Spot and USDⓈ-M futures, Bybit, OKX, Coinbase, Kraken, Alpaca, Hyperliquid, Kalshi;
   paper then live): every order a venue accepted, valued
   at what it can trade for, is within `max_leg_usd`, the day's accepted orders sum to at most `daily_cap_usd`, and
   no leverage the futures venue accepted is above `max_leverage`;
2. LLM calls (OpenAI, Anthropic): what the venues billed each budget (a key with its children) is within its
   `daily_budget_usd`, and Warden's own usage is never negative;
3. REST service `blocked_endpoints`: the service never received a request that a typical upstream would route to a
   blocked endpoint;
4. key families: after a parent's revoke returned, no descendant's call reaches the venue; a family together stays
   within the service's `rate_limit`.

The seed is fixed; run longer with another one:
    WARDEN_FUZZ_SEED=12345 WARDEN_FUZZ_SCALE=5 pytest tests/e2e/test_invariants.py
(WARDEN_FUZZ_SCALE multiplies every scenario's request count.) Each failure message names the seed and the
smallest reproducing requests found.
"""
import base64
import collections
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import math
import os
import random
import re
import threading
import time
import urllib.parse

import pytest
import requests

import fake_alpaca as fa
import fake_billing
import fake_binance_futures as ff
import fake_bybit as fb
import fake_coinbase as fcb
import fake_exchanges as fx
import fake_hyperliquid as fh
import fake_kraken as fk
import fake_okx as fo
import fakes
from conftest import warden

SEED = int(os.environ.get("WARDEN_FUZZ_SEED", "20261203"))
SCALE = float(os.environ.get("WARDEN_FUZZ_SCALE", "1"))
THREADS = 16
OWNER_PASSWORD = "fuzz-owner-password-1"
THROWAWAY_SECRET = "agent-throwaway-secret-0000000000000000000000000000000000000000"


def count(n):
    return max(1, int(n * SCALE))


def tagged(message):
    return f"[WARDEN_FUZZ_SEED={SEED} WARDEN_FUZZ_SCALE={SCALE}] {message}"


def rng_for(name):
    return random.Random(f"{SEED}/{name}")


# --------------------------------------------------------------------------------------------------- plumbing

class Client:
    """Raw HTTP/1.1 to one Warden, one keep-alive connection per thread; sends exactly the bytes it is given."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def _connection(self, fresh=False):
        conn = getattr(self.local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return conn

    def send(self, method, target, headers=(), body=b"", read=True):
        """(status, body); with read=False, the answer's head only, then the connection is dropped (a client
        that goes away mid-answer)."""
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", f"127.0.0.1:{self.port}")
                for name, value in headers:
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                if attempt:
                    raise
                continue  # the kept connection was closed under us before any answer: once more, fresh
            if not read:
                response.read(1)
                self._connection(fresh=True)
                return response.status, b""
            data = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self._connection(fresh=True)
            return response.status, data


def run_all(jobs, threads=THREADS):
    """Runs the callables on a thread pool; returns their results in order (exceptions as values)."""
    def one(job):
        try:
            return job()
        except Exception as e:  # a cut connection etc.: the fakes' records decide, not this
            return e
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, jobs))


class World:
    """One `warden serve` with a config, an owner logged in."""

    def __init__(self, start, tmp_path, master_key, name, config_text):
        directory = tmp_path / name
        directory.mkdir()
        self.config = directory / "warden.toml"
        self.config.write_text(config_text)
        self.env = {"WARDEN_MASTER_KEY": master_key}
        self.email = f"owner-{name}@example.com"
        made = warden("user", "create", self.email, OWNER_PASSWORD, "--no-reset", "--data-dir", str(directory / "data"),
                      "--config", str(self.config), env=self.env)
        assert made.returncode == 0, made.stderr
        self.server = start(self.env, data_dir=directory / "data", args=("--config", str(self.config)))
        self.api = self.server.url + "/api/v1"
        r = requests.post(self.api + "/auth/login", json={"email": self.email, "password": OWNER_PASSWORD})
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        self.client = Client(self.server.port)
        self.creds = {}

    def credential(self, venue, secret):
        r = requests.post(self.api + "/credentials", headers=self.auth, json={"venue": venue, "label": venue, "secret": secret})
        assert r.status_code == 201, r.text
        self.creds[venue] = r.json()["id"]

    def key(self, venues, access="trade", budget=None):
        body = {"name": "fuzz", "credential_ids": [self.creds[v] for v in venues], "access": access}
        if budget is not None:
            body["daily_budget_usd"] = budget
        r = requests.post(self.api + "/agent-keys", headers=self.auth, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def child(self, parent_key, venues=None):
        body = {"ttl_seconds": 3600, "name": "fuzz-child"}
        if venues:
            body["venues"] = venues
        r = requests.post(self.api + "/agent-keys/child", headers={"X-Warden-Key": parent_key}, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def audit(self, action):
        """Every audit row of this action, oldest first."""
        rows, before = [], None
        while True:
            params = {"action": action, "limit": 500, **({"before": before} if before else {})}
            r = requests.get(self.api + "/audit", headers=self.auth, params=params)
            assert r.status_code == 200, r.text
            rows += r.json()["entries"]
            before = r.json().get("next_before")
            if not before:
                return rows[::-1]

    def usage(self):
        r = requests.get(self.api + "/usage", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def record_status(monkeypatch):
    """The exchange fakes note on each recorded request the status they answered with ("status")."""
    def send_json(h, status, obj, headers=()):
        record = getattr(h, "record", None)
        if record is not None:
            record["status"] = status
        return fakes.send_json(h, status, obj, headers)
    monkeypatch.setattr(fx, "send_json", send_json)
    monkeypatch.setattr(ff, "send_json", send_json)


def quiet(fake):
    """A fake whose handler fails on a request it cannot read drops the connection (the caller sees no answer)
    without printing a traceback for each."""
    fake.server.handle_error = lambda request, address: None
    return fake


def finite(text):
    """A venue's most lenient reading of a number (Python's float: signs, exponents, spaces, '_', other scripts'
    digits); the magnitude, or infinity when it is not finite. None when it is not a number at all."""
    if isinstance(text, bool):
        return 1.0
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        return None
    return abs(value) if math.isfinite(value) else math.inf


# ===================================================================================== 1. exchange orders

MAX_LEG_USD, DAILY_CAP_USD = 50.0, 200.0
DESKS = 8  # each desk a server, an owner and fakes of its own: a fresh day's cap to race for
TOLERANCE = 1e-6
BTC_USD = float(fx.BINANCE_PRICES["BTCUSDT"])


def usd_per_quote(symbol):
    return BTC_USD if symbol.endswith("BTC") else 1.0


def number_text(rng, value):
    """`value` written as an agent could write it, from the plain to the hostile."""
    plain = f"{value:.8f}".rstrip("0").rstrip(".") or "0"
    roll = rng.random()
    if roll < 0.55:
        return plain
    return rng.choice([
        lambda: "00" + plain,                                   # leading zeros
        lambda: f"{value:e}",                                   # exponent
        lambda: f"{value:E}".replace("E-0", "E-"),
        lambda: "+" + plain,                                    # sign ('+' is a space in a form)
        lambda: "%2B" + plain,
        lambda: "-" + plain,
        lambda: " " + plain,
        lambda: plain + "%20",
        lambda: plain.replace(".", "%2E"),                       # encoded dot
        lambda: plain.replace("0", "\u0660").encode("utf-8").decode("latin-1"),  # Arabic-Indic zero, as raw bytes
        lambda: urllib.parse.quote(plain.replace("0", "\u0660")),
        lambda: plain + "_0" if "." in plain else plain + "_0",  # Python reads 1_0 as 10
        lambda: "NaN",
        lambda: "Infinity",
        lambda: "1e308",
        lambda: str(2 ** 53 + 1),
        lambda: str(2 ** 64 + 7),
        lambda: plain + "0" * 30,
        lambda: "0x" + format(max(1, int(value)), "x"),
        lambda: plain + ".",
        lambda: plain + "abc",
    ])()


def binance_order_params(rng, symbol, side, kind, client_id):
    """The parameters of one order, with a notional (in USD) drawn around the limits."""
    market = float(fx.BINANCE_PRICES.get(symbol.upper(), "50000"))
    to_usd = usd_per_quote(symbol.upper())
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
    params = [("symbol", symbol), ("side", side), ("type", kind)]
    if kind.upper() == "MARKET":
        mode = rng.choice(["quantity", "quote", "quote", "both"])
        qty, quote = target_usd / to_usd / market, target_usd / to_usd
        if mode == "both":  # one small, one large: which does the venue honour?
            qty, quote = (qty, quote / 50) if rng.random() < 0.5 else (qty / 50, quote)
        if mode in ("quantity", "both"):
            params.append(("quantity", number_text(rng, qty)))
        if mode in ("quote", "both"):
            params.append(("quoteOrderQty", number_text(rng, quote)))
    else:
        where = rng.random()
        factor = rng.uniform(0.9, 1.1) if where < 0.6 else (rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        price = market * factor
        qty = target_usd / to_usd / price
        if rng.random() < 0.2:  # quantity at market value, the price far off
            qty = target_usd / to_usd / market
        params += [("timeInForce", "GTC"), ("quantity", number_text(rng, qty)), ("price", number_text(rng, price))]
        if "STOP" in kind.upper() or "TAKE" in kind.upper():
            params.append(("stopPrice", number_text(rng, market * rng.uniform(0.5, 1.5))))
        if rng.random() < 0.02:  # the venue refuses this one
            params = [(k, fx.BINANCE_REJECT_QUANTITY if k == "quantity" else v) for k, v in params]
    if client_id is not None:
        params.append(("newClientOrderId", client_id))
    return params


def gen_binance_request(rng, key, id_pool):
    symbol = rng.choice(["BTCUSDT"] * 5 + ["ETHUSDT"] * 3 + ["ETHBTC", "BNBUSDT", "btcusdt"])
    side = rng.choice(["BUY", "SELL"] * 6 + ["buy", "Sell"])
    kind = rng.choice(["MARKET"] * 4 + ["LIMIT"] * 4 + ["LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT",
                                                         "STOP_LOSS", "TAKE_PROFIT", "limit"])
    roll = rng.random()
    client_id = rng.choice(id_pool) if roll < 0.3 else (None if roll < 0.5 else f"fz-{rng.getrandbits(40):x}")
    params = binance_order_params(rng, symbol, side, kind, client_id)
    return binance_signed(rng, "/proxy/binance/api/v3/order", params, key)


def binance_signed(rng, path, params, key):
    """A signed Binance call (Spot or futures) with `params` spread over query and body as an agent might, now and
    then with a parameter twice or a name percent-encoded."""
    params = list(params)
    params.append(("timestamp", str(int(time.time() * 1000))))
    if rng.random() < 0.3:
        params.append(("recvWindow", rng.choice(["5000", "60000", "05000", "5e3"])))
    twins = [p for p in params if p[0] in ("quantity", "price", "quoteOrderQty", "side", "type", "leverage")]
    if twins and rng.random() < 0.08:  # a parameter twice, with another value
        name, value = rng.choice(twins)
        other = finite(dict(params).get(name))
        other = min(other, 1e12) if other and math.isfinite(other) else 1.0
        params.insert(rng.randrange(len(params) + 1),
                      (name, number_text(rng, other * rng.choice([10, 100, 0.01])) if name not in ("side", "type")
                       else rng.choice(["SELL", "BUY", "MARKET", "LIMIT"])))
    if rng.random() < 0.03:  # a percent-encoded parameter name
        i = rng.randrange(len(params))
        name = params[i][0]
        j = rng.randrange(len(name))
        params[i] = (name[:j] + f"%{ord(name[j]):02X}" + name[j + 1:], params[i][1])
    encoded = [f"{k}={v if any(c in v for c in '%+ ') or not v.isascii() else urllib.parse.quote(v, safe='.-_')}"
               for k, v in params]
    placement = rng.random()
    if placement < 0.35:
        query, body = encoded, []
    elif placement < 0.7:
        query, body = [], encoded
    else:
        cut = rng.randrange(len(encoded) + 1)
        query, body = encoded[:cut], encoded[cut:]
    query = [urllib.parse.quote(item, safe="=&%+;/:,.-_~!$'()*") for item in query]  # the request line is ASCII
    signed = "&".join(query) + "&".join(body)
    signature = "signature=" + hmac.new(THROWAWAY_SECRET.encode(), signed.encode("latin-1"), hashlib.sha256).hexdigest()
    (body if body else query).append(signature)
    target = path + ("?" + "&".join(query) if query else "")
    headers = [("X-MBX-APIKEY", key)]
    if body:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    return "POST", target, headers, "&".join(body).encode("latin-1")


MAX_LEVERAGE = 5


def gen_futures_request(rng, key, id_pool):
    """A futures order (Spot's generator, with futures' own hostile extras), or now and then a leverage change."""
    if rng.random() < 0.2:
        leverage = rng.choice([1, 2, MAX_LEVERAGE, MAX_LEVERAGE, MAX_LEVERAGE + 1, 10, 20, 125, 126, 0])
        params = [("symbol", rng.choice(["BTCUSDT", "BTCUSDT", "ETHUSDT", "btcusdt"])),
                  ("leverage", number_text(rng, leverage) if rng.random() < 0.3 else str(leverage))]
        return binance_signed(rng, "/proxy/binance-futures/fapi/v1/leverage", params, key)
    symbol = rng.choice(["BTCUSDT"] * 5 + ["ETHUSDT"] * 3 + ["BTCUSDT_250328", "btcusdt"])
    side = rng.choice(["BUY", "SELL"] * 6 + ["buy", "Sell"])
    kind = rng.choice(["MARKET"] * 4 + ["LIMIT"] * 4 + ["STOP", "STOP_MARKET", "TAKE_PROFIT", "TRAILING_STOP_MARKET", "limit"])
    roll = rng.random()
    client_id = rng.choice(id_pool) if roll < 0.3 else (None if roll < 0.5 else f"ff-{rng.getrandbits(40):x}")
    params = binance_order_params(rng, symbol, side, kind, client_id)
    for extra in (("reduceOnly", "true"), ("positionSide", "BOTH"), ("priceMatch", "OPPONENT"), ("closePosition", "true"),
                  ("callbackRate", "1")):
        if rng.random() < 0.05:
            params.append(extra)
    return binance_signed(rng, "/proxy/binance-futures/fapi/v1/order", params, key)


def futures_value(p):
    """USD an accepted futures order can trade: its notional, MARKET at the mark, a LIMIT BUY at its price, a
    LIMIT SELL at max(price, mark); anything Warden does not value (other types, quoteOrderQty, price matching,
    closing a whole position) could trade any amount."""
    mark = float(ff.FUTURES_MARKS[p["symbol"]])
    qty, price = finite(p.get("quantity")), finite(p["price"]) if "price" in p else None
    if qty is None or (price is None and "price" in p) or {"quoteOrderQty", "priceMatch", "closePosition", "callbackRate"} & set(p):
        return math.inf
    if p["type"] == "MARKET":
        return qty * mark
    if p["type"] != "LIMIT" or price is None:
        return math.inf
    return price * qty if p["side"] == "BUY" else max(price, mark) * qty if p["side"] == "SELL" else max(price, mark) * qty


def leverage_over(fake):
    """Leverage changes the futures fake accepted above MAX_LEVERAGE."""
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].split("?")[0] == "/fapi/v1/leverage"
            and r.get("status") == 200 and int(binance_params(r)["leverage"]) > MAX_LEVERAGE]


def gen_kraken_request(rng, key, id_pool):
    """An AddOrder as an agent might write it: Kraken's own hostile spellings besides the numbers'."""
    pair = rng.choice(["XBTUSD"] * 4 + ["XXBTZUSD", "ETHUSD", "ETHUSD", "XBTUSDT", "xbtusd", "XBTEUR"])
    key_name = fk._pair(pair.upper()) or "XXBTZUSD"
    market = float(fk.KRAKEN_PAIRS[key_name][3])
    side = rng.choice(["buy", "sell"] * 6 + ["Buy"])
    kind = rng.choice(["market"] * 4 + ["limit"] * 4 + ["stop-loss", "take-profit-limit", "Limit", "iceberg"])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
    params = [("pair", pair), ("type", side), ("ordertype", kind)]
    if kind.lower() == "market":
        params.append(("volume", number_text(rng, target_usd / market)))
    else:
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        params += [("volume", number_text(rng, target_usd / price)), ("price", number_text(rng, price))]
        if rng.random() < 0.1:
            params[-1] = ("price", rng.choice(["+10", "-5", "#2", "10%25", "+1%25"]))
    for extra in (("oflags", rng.choice(["post", "viqc", "fciq,viqc", "nompp"])), ("leverage", rng.choice(["2", "none", "5:1"])),
                  ("validate", rng.choice(["false", "False", "true", "1"])), ("reduce_only", "true"), ("displayvol", "0.0001"),
                  ("close%5Bordertype%5D", "limit")):
        if rng.random() < 0.05:
            params.append(extra)
    roll = rng.random()
    if roll < 0.3:
        params.append(("cl_ord_id", rng.choice(id_pool)))
    elif roll < 0.4:
        params.append(("userref", str(rng.randint(1, 10**6))))
    if rng.random() < 0.05:
        params.append(("volume", number_text(rng, 10 * target_usd / market)))  # twice, larger
    params.insert(rng.randrange(len(params) + 1), ("nonce", str(rng.getrandbits(50))))
    body = "&".join(f"{k}={v if any(c in v for c in '%+') else urllib.parse.quote(v, safe='.-_,:#')}" for k, v in params)
    query = "?volume=" + urllib.parse.quote(number_text(rng, target_usd / market * 10), safe="%+") if rng.random() < 0.03 else ""
    path = rng.choice(["/proxy/kraken/0/private/AddOrder", "/0/private/AddOrder"]) + query
    headers = [("API-Key", key), ("API-Sign", "agent-signature"), ("Content-Type", "application/x-www-form-urlencoded")]
    return "POST", path, headers, body.encode()


def kraken_value(record):
    """USD an accepted Kraken order can trade: market at the market, a limit buy at its price, a limit sell at
    max(price, market); anything Warden does not value (other types, viqc, leverage, relative prices) any amount."""
    p = dict(urllib.parse.parse_qsl(record["body"].decode("latin-1"), keep_blank_values=True))
    market = float(fk.KRAKEN_PAIRS[fk._pair(p["pair"])][3])
    volume, price = finite(p.get("volume")), finite(p["price"]) if "price" in p else None
    if volume is None or ("price" in p and price is None) or {"leverage", "displayvol", "close[ordertype]"} & set(p) \
            or "viqc" in p.get("oflags", ""):
        return math.inf
    if p["ordertype"] == "market":
        return volume * market
    if p["ordertype"] != "limit" or price is None:
        return math.inf
    return price * volume if p["type"] == "buy" else max(price, market) * volume


def gen_bybit_request(rng, key, id_pool):
    """A v5 order (spot or linear) or now and then a leverage change, as an agent might write it."""
    category = rng.choice(["spot", "spot", "linear", "linear", "inverse"])
    symbol = rng.choice(["BTCUSDT"] * 4 + ["ETHUSDT", "ETHUSDT", "btcusdt"])
    if rng.random() < 0.15:
        fields = [("category", json.dumps("linear")), ("symbol", json.dumps(symbol))]
        for side in ("buyLeverage", "sellLeverage"):
            value = rng.choice([1, 2, MAX_LEVERAGE, MAX_LEVERAGE + 0.5, 10, 100])
            fields.append((side, json.dumps(str(value)) if rng.random() < 0.9 else json.dumps(value)))
        return bybit_post(rng, key, "/v5/position/set-leverage", fields)
    market = float(fb.BYBIT_PRICES.get(symbol.upper(), "50000"))
    side = rng.choice(["Buy", "Sell"] * 6 + ["buy", "BUY"])
    kind = rng.choice(["Market"] * 4 + ["Limit"] * 4 + ["market", "Stop"])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
    fields = [("category", json.dumps(category)), ("symbol", json.dumps(symbol)), ("side", json.dumps(side)),
              ("orderType", json.dumps(kind))]
    unit = rng.choice([None, None, None, "baseCoin", "quoteCoin"])
    if kind == "Limit":
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        fields += [("qty", json.dumps(number_text(rng, target_usd / price))), ("price", json.dumps(number_text(rng, price)))]
    else:
        in_quote = unit == "quoteCoin" or (unit is None and side == "Buy" and rng.random() < 0.5)
        fields.append(("qty", json.dumps(number_text(rng, target_usd if in_quote else target_usd / market))))
    if unit and rng.random() < 0.5:
        fields.append(("marketUnit", json.dumps(unit)))
    for extra in (("isLeverage", rng.choice(["0", "1", "true"])), ("reduceOnly", rng.choice(["true", '"true"'])),
                  ("takeProfit", '"60000"'), ("triggerPrice", '"40000"'), ("bboSideType", '"Queue"'), ("orderIv", '"0.5"')):
        if rng.random() < 0.04:
            fields.append(extra)
    if rng.random() < 0.3:
        fields.append(("orderLinkId", json.dumps(rng.choice(id_pool))))
    if rng.random() < 0.05:  # a field twice: which one does the venue keep?
        fields.append(("qty", json.dumps(number_text(rng, 100 * target_usd))))
    return bybit_post(rng, key, "/v5/order/create", fields)


def bybit_post(rng, key, path, fields):
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields) + "}"
    if rng.random() < 0.02:
        body = "\ufeff" + body
    headers = [("X-BAPI-API-KEY", key), ("X-BAPI-SIGN", "agent"), ("X-BAPI-TIMESTAMP", "1"), ("Content-Type", "application/json")]
    return "POST", "/proxy/bybit" + path, headers, body.encode()


def bybit_value(order):
    """USD an accepted Bybit order can trade, read as the fake (Python's json: the last twin wins) read it: a spot
    market buy counts qty in the quote coin unless marketUnit is baseCoin, a spot market sell in the base coin unless
    it is quoteCoin; limit buys at their price, limit sells at max(price, market); anything Warden does not value
    (triggers, take-profit, stop-loss, book prices, margin) any amount."""
    market = float(fb.BYBIT_PRICES[order["symbol"]])
    qty, price = finite(order.get("qty")), finite(order["price"]) if "price" in order else None
    if qty is None or ("price" in order and price is None) or order.get("isLeverage") not in (None, 0) \
            or {"takeProfit", "triggerPrice", "bboSideType", "orderIv", "stopLoss"} & set(order):
        return math.inf
    if order["orderType"] == "Market":
        unit = order.get("marketUnit") or ("quoteCoin" if order["category"] == "spot" and order["side"] == "Buy" else "baseCoin")
        return qty if order["category"] == "spot" and unit == "quoteCoin" else qty * market
    if order["orderType"] != "Limit" or price is None:
        return math.inf
    return price * qty if order["side"] == "Buy" else max(price, market) * qty


def gen_okx_order(rng, id_pool):
    """One v5 order object (spot or swap), with python-okx's empty fields now and then."""
    inst = rng.choice(["BTC-USDT"] * 3 + ["ETH-USDT", "BTC-USDT-SWAP", "BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP", "btc-usdt"])
    swap = inst.endswith("SWAP")
    market = float(fo.OKX_PRICES.get(inst.upper(), "50000")) * (float(fo.OKX_CT_VAL.get(inst, "1")) if swap else 1)
    side = rng.choice(["buy", "sell"] * 6 + ["Buy"])
    kind = rng.choice(["market"] * 4 + ["limit"] * 3 + ["post_only", "ioc", "optimal_limit_ioc", "Limit"])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
    order = {"instId": inst, "tdMode": rng.choice(["cross"] * 6 + ["isolated", "cash"]) if swap else rng.choice(["cash"] * 8 + ["cross"]),
             "side": side, "ordType": kind}
    target = rng.choice([None, None, None, "base_ccy", "quote_ccy", ""])
    if kind in ("market", "optimal_limit_ioc"):
        in_quote = not swap and (target == "quote_ccy" or (target in (None, "") and side == "buy"))
        order["sz"] = number_text(rng, target_usd if in_quote else target_usd / market)
    else:
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        order["sz"] = number_text(rng, target_usd / price)
        order["px"] = number_text(rng, price / (float(fo.OKX_CT_VAL.get(inst, "1")) if swap else 1))
    if target is not None:
        order["tgtCcy"] = target
    if rng.random() < 0.3:  # python-okx's shape: every field, empty when not given
        for name in ("ccy", "clOrdId", "tag", "posSide", "px", "reduceOnly", "tgtCcy", "stpMode", "pxUsd", "pxVol", "banAmend"):
            order.setdefault(name, "")
        order["attachAlgoOrds"] = None
    for name, value in (("reduceOnly", rng.choice([True, "true", 1])), ("ccy", "USDT"), ("pxUsd", "100"),
                        ("attachAlgoOrds", [{"tpTriggerPx": "60000", "tpOrdPx": "-1"}])):
        if rng.random() < 0.04:
            order[name] = value
    if rng.random() < 0.3:
        order["clOrdId"] = rng.choice(id_pool)
    return order


def gen_okx_request(rng, key, id_pool):
    headers = [("OK-ACCESS-KEY", key), ("OK-ACCESS-SIGN", "agent"), ("OK-ACCESS-PASSPHRASE", "agent"),
               ("Content-Type", "application/json")]
    if rng.random() < 0.15:
        lever = rng.choice(["2", str(MAX_LEVERAGE), str(MAX_LEVERAGE + 1), "50", 3, 10, "5.5"])
        body = json.dumps({"instId": rng.choice(["BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USDT"]), "lever": lever, "mgnMode": "cross"})
        return "POST", "/proxy/okx/api/v5/account/set-leverage", headers, body.encode()
    if rng.random() < 0.2:
        body = json.dumps([gen_okx_order(rng, id_pool) for _ in range(rng.randint(1, 4))])
        return "POST", "/proxy/okx/api/v5/trade/batch-orders", headers, body.encode()
    body = json.dumps(gen_okx_order(rng, id_pool))
    if rng.random() < 0.05:  # a field twice: which one does the venue keep?
        body = body[:-1] + ', "sz": "' + number_text(rng, 5000) + '"}'
    return "POST", "/proxy/okx/api/v5/trade/order", headers, body.encode()


def okx_value(order):
    """USD an accepted OKX order can trade, read as the fake read it (Python's json: the last twin wins; "", null and
    [] are absent): spot market buys in the quote unless tgtCcy is base_ccy, sells in the base unless quote_ccy; a
    swap's sz in contracts of ctVal; limit buys at px, limit sells at max(px, market); anything Warden does not value
    any amount."""
    order = {k: v for k, v in order.items() if v not in ("", None, [])}
    inst = order["instId"]
    swap = inst.endswith("SWAP")
    size = float(fo.OKX_CT_VAL[inst]) if swap else 1.0
    market = float(fo.OKX_PRICES[inst])
    sz, px = finite(order.get("sz")), finite(order["px"]) if "px" in order else None
    if sz is None or ("px" in order and px is None) or {"ccy", "pxUsd", "attachAlgoOrds"} & set(order) \
            or order.get("tdMode") not in ("cash", "cross", "isolated"):
        return math.inf
    if order["ordType"] == "market":
        target = order.get("tgtCcy") or ("quote_ccy" if not swap and order["side"] == "buy" else "base_ccy")
        return sz if not swap and target == "quote_ccy" else sz * size * market
    if order["ordType"] not in ("limit", "post_only", "ioc", "fok") or px is None:
        return math.inf
    return (px * sz if order["side"] == "buy" else max(px, market) * sz) * size


def gen_coinbase_request(rng, key, id_pool):
    """An Advanced Trade order, its configuration drawn around the limits, now and then two at once or twin fields."""
    product = rng.choice(["BTC-USD"] * 4 + ["ETH-USD", "BTC-USDC", "btc-usd", "BTC-EUR"])
    market = float(fcb.COINBASE_PRICES.get(product.upper(), "50000"))
    side = rng.choice(["BUY", "SELL"] * 6 + ["buy"])
    kind = rng.choice(["market_market_ioc"] * 3 + ["market_market_fok", "limit_limit_gtc", "limit_limit_gtc", "limit_limit_fok",
                                                   "sor_limit_ioc", "stop_limit_stop_limit_gtc", "trigger_bracket_gtc"])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
    if kind.startswith("market"):
        fields = ([("quote_size", number_text(rng, target_usd))] if rng.random() < 0.5
                  else [("base_size", number_text(rng, target_usd / market))])
        if rng.random() < 0.05:
            fields.append(("base_size" if fields[0][0] == "quote_size" else "quote_size", number_text(rng, 10 * target_usd)))
    else:
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        fields = [("base_size", number_text(rng, target_usd / price)), ("limit_price", number_text(rng, price))]
        if rng.random() < 0.2:
            fields.append(("post_only", rng.choice(["false", '"false"', "true"])))
    inner = "{" + ",".join(f'"{k}":' + (v if k == "post_only" else json.dumps(v)) for k, v in fields) + "}"
    if rng.random() < 0.05:  # a twin: which one does the venue keep?
        inner = inner[:-1] + ',"' + fields[0][0] + '":' + json.dumps(number_text(rng, 100 * target_usd)) + "}"
    configuration = f'"{kind}":{inner}'
    if rng.random() < 0.03:
        configuration += ',"market_market_ioc":{"quote_size":"5000"}'
    order = {"product_id": product, "side": side}
    if rng.random() < 0.7:
        order["client_order_id"] = rng.choice(id_pool) if rng.random() < 0.4 else f"cb-{rng.getrandbits(40):x}"
    if rng.random() < 0.03:
        order["leverage"] = "5"
    body = json.dumps(order)[:-1] + f', "order_configuration": {{{configuration}}}}}'
    headers = [("X-Warden-Key", key), ("Content-Type", "application/json")]
    return "POST", "/proxy/coinbase/api/v3/brokerage/orders", headers, body.encode()


def coinbase_value(order):
    """USD an accepted Coinbase order can trade, read as the fake read it (the last twin wins): market by quote_size,
    or base_size × the price; a limit buy at limit_price, a limit sell at max(limit_price, price); anything else any amount."""
    market = float(fcb.COINBASE_PRICES[order["product_id"]])
    configuration = order.get("order_configuration", {})
    if len(configuration) != 1 or "leverage" in order:
        return math.inf
    kind, fields = next(iter(configuration.items()))
    numbers = {k: finite(v) for k, v in fields.items() if k in ("quote_size", "base_size", "limit_price")}
    if any(v is None for v in numbers.values()):
        return math.inf
    if kind.startswith("market"):
        return max(numbers.get("quote_size", 0), numbers.get("base_size", 0) * market)
    if kind not in ("limit_limit_gtc", "limit_limit_fok", "sor_limit_ioc", "limit_limit_gtd") or "limit_price" not in numbers:
        return math.inf
    size, price = numbers.get("base_size", math.inf), numbers["limit_price"]
    return price * size if order["side"] == "BUY" else max(price, market) * size


def gen_alpaca_request(rng, key, id_pool):
    """A Trading API order (stocks and crypto), its numbers strings or JSON numbers, now and then a twin or a field
    Warden does not value."""
    symbol = rng.choice(["AAPL"] * 3 + ["BTC/USD"] * 3 + ["BRK.B", "aapl", "BTC/EUR", "BTCUSD"])
    market = float(fa.ALPACA_PRICES.get(symbol, "50000"))
    side = rng.choice(["buy", "sell"] * 6 + ["Buy"])
    kind = rng.choice(["market"] * 4 + ["limit"] * 4 + ["stop", "trailing_stop"])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)

    def number(value):
        return json.dumps(value) if rng.random() < 0.4 else json.dumps(number_text(rng, value))
    fields = [("symbol", json.dumps(symbol)), ("side", json.dumps(side)), ("type", json.dumps(kind)),
              ("time_in_force", json.dumps(rng.choice(["day", "gtc", "ioc", "fok", "day", "gtc", "opg"])))]
    if kind == "limit":
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        fields += [("qty", number(target_usd / price)), ("limit_price", number(price))]
    elif rng.random() < 0.5:
        fields.append(("notional", number(target_usd)))
    else:
        fields.append(("qty", number(target_usd / market)))
    for extra in (("stop_price", '"1"'), ("order_class", rng.choice(['"bracket"', '"simple"'])), ("extended_hours", "true"),
                  ("take_profit", '{"limit_price": "1"}'), ("notional", '"5000"'), ("trail_percent", '"1"')):
        if rng.random() < 0.04:
            fields.append(extra)
    if rng.random() < 0.3:
        fields.append(("client_order_id", json.dumps(rng.choice(id_pool))))
    if rng.random() < 0.05:  # a field twice: which one does the venue keep?
        fields.append((rng.choice(["qty", "notional"]), number(100 * target_usd / market)))
    body = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields) + "}"
    headers = [("APCA-API-KEY-ID", key), ("APCA-API-SECRET-KEY", "agent"), ("Content-Type", "application/json")]
    return "POST", "/proxy/alpaca/v2/orders", headers, body.encode()


def alpaca_value(order):
    """USD an accepted Alpaca order can trade, read as the fake read it (the last twin wins): market by notional or
    qty × the price, a limit buy at limit_price, a limit sell at max(limit_price, price); anything else any amount."""
    market = float(fa.ALPACA_PRICES[order["symbol"]])
    numbers = {k: finite(order[k]) for k in ("qty", "notional", "limit_price") if k in order}
    if any(v is None for v in numbers.values()) or {"stop_price", "take_profit", "trail_percent"} & set(order) \
            or order.get("order_class", "simple") != "simple" or ("qty" in numbers) == ("notional" in numbers):
        return math.inf
    if order["type"] == "market":
        return numbers["notional"] if "notional" in numbers else numbers["qty"] * market
    if order["type"] != "limit" or "limit_price" not in numbers or "qty" not in numbers:
        return math.inf
    price, qty = numbers["limit_price"], numbers["qty"]
    return price * qty if order["side"] == "buy" else max(price, market) * qty


def gen_hyperliquid_request(rng, key, id_pool):
    """An exchange action: one order or a few, a modify or batchModify of some order, a leverage change; numbers
    spelled as an agent could, now and then a twin, a trigger, a builder or a spot asset."""
    def wire():
        asset = rng.choice([0] * 6 + [1] * 5 + [10000, 7])
        market = float(fh.HL_PRICES[fh.HL_PERPS[asset][0]]) if asset < len(fh.HL_PERPS) else 50000.0
        target_usd = math.exp(rng.uniform(math.log(0.2), math.log(2000))) if rng.random() < 0.9 else rng.uniform(0, 60)
        where = rng.random()
        price = market * (rng.uniform(0.9, 1.1) if where < 0.6 else rng.uniform(1e-6, 0.02) if where < 0.85 else rng.uniform(5, 500))
        fields = [("a", str(asset)), ("b", rng.choice(["true", "false"] * 4 + ["1"])),
                  ("p", json.dumps(number_text(rng, price)) if rng.random() < 0.95 else str(price)),
                  ("s", json.dumps(number_text(rng, target_usd / price)) if rng.random() < 0.95 else str(target_usd / price)),
                  ("r", rng.choice(["false", "true"])),
                  ("t", rng.choice(['{"limit":{"tif":"Gtc"}}'] * 6 + ['{"limit":{"tif":"Ioc"}}'] * 2 + ['{"limit":{"tif":"Alo"}}',
                                     '{"trigger":{"isMarket":true,"triggerPx":"1","tpsl":"tp"}}']))]
        if rng.random() < 0.3:
            fields.append(("c", json.dumps(rng.choice(id_pool))))
        if rng.random() < 0.05:  # a twin: which one does the venue keep?
            fields.append(("s", json.dumps(number_text(rng, 100 * target_usd / price))))
        return "{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}"
    roll = rng.random()
    if roll < 0.12:
        leverage = rng.choice([1, 2, MAX_LEVERAGE, MAX_LEVERAGE + 1, 10, 40])
        action = (f'{{"type":"updateLeverage","asset":{rng.choice([0, 1])},"isCross":{rng.choice(["true", "false"])},'
                  f'"leverage":{rng.choice([str(leverage), json.dumps(str(leverage)), str(leverage + 0.5)])}}}')
    elif roll < 0.2:
        action = f'{{"type":"modify","oid":{rng.randint(1, 40)},"order":{wire()}}}'
    elif roll < 0.25:
        action = ('{"type":"batchModify","modifies":['
                  + ",".join(f'{{"oid":{rng.randint(1, 40)},"order":{wire()}}}' for _ in range(rng.randint(1, 3))) + "]}")
    else:
        orders = ",".join(wire() for _ in range(1 if rng.random() < 0.85 else rng.randint(2, 3)))
        extra = rng.choice([""] * 20 + [',"builder":{"b":"0x' + "1" * 40 + '","f":10}'])
        action = f'{{"type":"order","orders":[{orders}],"grouping":"{rng.choice(["na"] * 12 + ["normalTpsl"])}"{extra}}}'
    body = f'{{"action":{action},"nonce":{rng.getrandbits(40)},"signature":{{"r":"0x1","s":"0x2","v":27}},"vaultAddress":null}}'
    headers = [("X-Warden-Key", key), ("Content-Type", "application/json")]
    return "POST", "/proxy/hyperliquid/exchange", headers, body.encode()


def hyperliquid_value(wire):
    """USD an order the fake took can trade: a buy at its limit, a sell at the larger of its limit and the market;
    a trigger or an unknown asset any amount."""
    if "limit" not in wire["t"] or wire["a"] >= len(fh.HL_PERPS):
        return math.inf
    price, size = float(wire["p"]), float(wire["s"])
    return price * size if wire["b"] else max(price, float(fh.HL_PRICES[fh.HL_PERPS[wire["a"]][0]])) * size


def kalshi_number(rng, value):
    """JSON text for a number, as an agent could write it."""
    roll = rng.random()
    if roll < 0.7:
        return json.dumps(value)
    return rng.choice([f"{value:.1f}", f"{value}e0", f"{value / 10}e1", f"{value * 10}E-1", "-" + json.dumps(value),
                       json.dumps(value + 0.5), str(2 ** 53 + 1), "1e400", json.dumps(str(value)), "true", "NaN",
                       "0" + json.dumps(value)])


def gen_kalshi_request(rng, key, id_pool):
    market = fx.KALSHI_MARKET_PRICES
    side = rng.choice(["yes", "no"] * 8 + ["YES"])
    action = rng.choice(["buy", "buy", "sell", "sell", "Buy"])
    kind = rng.choice(["limit", "limit", "limit", "market", None])
    target_usd = math.exp(rng.uniform(math.log(0.2), math.log(300)))
    cents = rng.choice([1, 2, 5, rng.randint(1, 99), rng.randint(1, 99), market["yes_bid"], market["no_ask"], 99])
    contracts = max(1, round(target_usd * 100 / max(cents, 1)))
    if rng.random() < 0.02:
        contracts = fx.KALSHI_REJECT_COUNT
    fields = [("ticker", json.dumps(fx.KALSHI_TICKER if rng.random() < 0.97 else fx.KALSHI_TICKER.lower())),
              ("side", json.dumps(side)), ("action", json.dumps(action)), ("count", kalshi_number(rng, contracts))]
    if kind:
        fields.append(("type", json.dumps(kind)))
    own, other = ("yes_price", "no_price") if side == "yes" else ("no_price", "yes_price")
    style = rng.random()
    if style < 0.4:
        fields.append((own, kalshi_number(rng, cents)))
    elif style < 0.55:
        fields.append((other, kalshi_number(rng, 100 - cents)))
    elif style < 0.7:
        fields.append((own + "_dollars", json.dumps(f"{cents / 100:.4f}") if rng.random() < 0.8 else f"{cents / 100}"))
    elif style < 0.85:  # twins that disagree
        fields += [(own, kalshi_number(rng, cents)), (own + "_dollars", json.dumps(f"{rng.randint(1, 99) / 100:.4f}"))]
    else:  # both sides, inconsistent
        fields += [(own, kalshi_number(rng, cents)), (other, kalshi_number(rng, rng.randint(1, 99)))]
    if kind == "market" or rng.random() < 0.1:
        fields.append(("buy_max_cost", kalshi_number(rng, rng.choice([100, 1000, 5000, 100000]))))
    roll = rng.random()
    if roll < 0.3:
        fields.append(("client_order_id", json.dumps(rng.choice(id_pool))))
    elif roll < 0.7:
        fields.append(("client_order_id", json.dumps(f"kz-{rng.getrandbits(40):x}")))
    if rng.random() < 0.07:  # a member twice
        name = rng.choice(["count", own, "side", "action"])
        value = {"count": kalshi_number(rng, contracts * 20), own: kalshi_number(rng, 99),
                 "side": json.dumps("no" if side == "yes" else "yes"), "action": json.dumps("buy")}[name]
        fields.insert(rng.randrange(len(fields) + 1), (name, value))
    body = "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields) + "}"
    headers = [("KALSHI-ACCESS-KEY", key), ("KALSHI-ACCESS-TIMESTAMP", str(int(time.time() * 1000))),
               ("KALSHI-ACCESS-SIGNATURE", base64.b64encode(rng.randbytes(256)).decode()),
               ("Content-Type", "application/json")]
    return "POST", "/proxy/kalshi/trade-api/v2/portfolio/orders", headers, body.encode()


def binance_params(record):
    """The parameters as the Binance fake read them (without the signature)."""
    query = urllib.parse.urlsplit(record["path"]).query
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True) + urllib.parse.parse_qsl(
        record["body"].decode("latin-1"), keep_blank_values=True)
    return {k: v for k, v in pairs if k != "signature"}


def binance_value(p):
    """USD an accepted order can trade: MARKET max(quoteOrderQty, quantity × market); LIMIT_MAKER (which only
    rests) price × quantity; other limit-like BUY price × quantity, SELL max(price, market) × quantity (a sell
    below the market fills at the market)."""
    symbol = p["symbol"]
    market, to_usd = float(fx.BINANCE_PRICES[symbol]), usd_per_quote(symbol)
    qty, quote, price = (finite(p[f]) if f in p else None for f in ("quantity", "quoteOrderQty", "price"))
    if any(v is None for v, f in ((qty, "quantity"), (quote, "quoteOrderQty"), (price, "price")) if f in p):
        return math.inf  # accepted with a number no venue parser agrees on
    if p["type"] == "MARKET":
        return max(quote or 0, (qty or 0) * market) * to_usd
    if p["type"] == "LIMIT_MAKER":  # never takes: it rests at its price, or the venue refuses it
        return price * qty * to_usd
    buy = price * qty * to_usd
    sell = max(price, market) * qty * to_usd
    return buy if p["side"] == "BUY" else sell if p["side"] == "SELL" else max(buy, sell)


def kalshi_value(req):
    """USD an accepted Kalshi order can trade, at most 1 USD per contract: a sell at max(limit, 1 - limit, bid) (selling a
    contract one does not hold buys the other side), a market sell at 1 USD a contract; a limit buy
    at its own-side price (the highest of every reading of the twins, a NO price also as 100 - YES), a market buy
    at max(price, ask) (a market order fills at what is there); a buy within its buy_max_cost."""
    contracts = finite(req.get("count"))
    if contracts is None:
        return math.inf
    side = req["side"]
    other = "no" if side == "yes" else "yes"

    def readings(field):  # cents, signed; None when not a number
        got = []
        for name, scale in ((field, 1), (field + "_dollars", 100)):
            if req.get(name) is not None:
                try:
                    value = float(req[name]) * scale
                except (TypeError, ValueError, OverflowError):
                    value = math.inf
                got.append(value if math.isfinite(value) else math.inf)
        return got

    own = [abs(c) for c in readings(f"{side}_price")] + [100 - c for c in readings(f"{other}_price")]
    limit = min(100.0, max(own)) if own else 100.0
    if req["action"] == "sell":  # proceeds, or (with no position: selling YES buys NO) the other side's cost
        if req.get("type") == "market" or not own:
            return contracts
        return contracts * min(100.0, max(limit, 100 - limit, fx.KALSHI_MARKET_PRICES[f"{side}_bid"])) / 100
    if req.get("type") == "market":  # fills at what is there: at least the ask, up to 1 USD a contract
        limit = max(limit, fx.KALSHI_MARKET_PRICES[f"{side}_ask"])
    value = contracts * limit / 100
    cap = finite(req.get("buy_max_cost")) if req.get("buy_max_cost") is not None else None
    return value if cap is None else min(value, cap / 100)  # Kalshi: a maximum cost in cents (fill-or-kill)


def client_id(venue, record):
    if venue in ("binance", "binance-futures"):
        return binance_params(record).get("newClientOrderId")
    if venue == "bybit":
        return json.loads(record["body"]).get("orderLinkId")
    if venue == "hyperliquid":
        return record["wire"].get("c")
    if venue in ("coinbase", "alpaca"):
        return json.loads(record["body"]).get("client_order_id")
    if venue == "okx":
        return record.get("okx_order", {}).get("clOrdId")
    if venue == "kraken":
        cl_ord_id = dict(urllib.parse.parse_qsl(record["body"].decode("latin-1"))).get("cl_ord_id", "")
        hexed = cl_ord_id.replace("-", "")
        return "wdn-" + hexed[8:] if hexed.startswith("77646e2d") else cl_ord_id
    return json.loads(record["body"]).get("client_order_id")


def accepted_orders(fakes):
    """[(venue, value, request)] for each order the venues accepted and would really have executed: Binance
    refuses a newClientOrderId already used by an open order (a filled MARKET order's id is free again; Kalshi
    likewise refuses one of an open order, and every fake Kalshi order stays open)."""
    fake_binance, fake_kalshi, fake_futures, fake_kraken, fake_bybit, fake_okx, fake_coinbase, fake_alpaca, fake_hl = (
        fakes[name] for name in ("binance", "kalshi", "binance-futures", "kraken", "bybit", "okx", "coinbase", "alpaca",
                                 "hyperliquid"))
    accepted = []
    open_binance, seen_kalshi = set(), set()
    for r in fake_binance.requests:
        if r["method"] == "POST" and r["path"].split("?")[0] == "/api/v3/order" and r.get("status") == 200:
            p = binance_params(r)
            cid = p.get("newClientOrderId")
            if cid and cid in open_binance:
                continue
            if p["type"] != "MARKET" and cid:
                open_binance.add(cid)
            accepted.append(("binance", binance_value(p), r))
    open_futures = set()
    for r in fake_futures.requests:
        if r["method"] == "POST" and r["path"].split("?")[0] == "/fapi/v1/order" and r.get("status") == 200:
            p = binance_params(r)
            cid = p.get("newClientOrderId")
            if cid and cid in open_futures:
                continue
            if p["type"] != "MARKET" and cid:
                open_futures.add(cid)
            accepted.append(("binance-futures", futures_value(p), r))
    open_kraken = set()
    for r in fake_kraken.requests:
        if r["path"] == "/0/private/AddOrder" and r.get("accepted"):
            p = dict(urllib.parse.parse_qsl(r["body"].decode("latin-1")))
            cid = p.get("cl_ord_id")
            if cid and cid in open_kraken:
                continue
            if p.get("ordertype") != "market" and cid:
                open_kraken.add(cid)
            accepted.append(("kraken", kraken_value(r), r))
    open_bybit = set()
    for r in fake_bybit.requests:
        if r["path"] == "/v5/order/create" and r.get("accepted"):
            order = json.loads(r["body"])
            cid = order.get("orderLinkId")
            if cid and cid in open_bybit:
                continue
            if order.get("orderType") != "Market" and cid:
                open_bybit.add(cid)
            accepted.append(("bybit", bybit_value(order), r))
    open_okx = set()
    for r in fake_okx.requests:
        if r["path"] in ("/api/v5/trade/order", "/api/v5/trade/batch-orders") and r.get("accepted"):
            body = json.loads(r["body"])
            for order in body if isinstance(body, list) else [body]:
                cid = order.get("clOrdId")
                if cid and cid in open_okx:
                    continue
                if order.get("ordType") != "market" and cid:
                    open_okx.add(cid)
                accepted.append(("okx", okx_value(order), dict(r, okx_order=order)))
    open_coinbase = set()
    for r in fake_coinbase.requests:
        if r["path"] == "/api/v3/brokerage/orders" and r.get("accepted"):
            order = json.loads(r["body"])
            cid = order.get("client_order_id")
            if cid and cid in open_coinbase:
                continue
            if cid:
                open_coinbase.add(cid)  # Coinbase keeps a client order id for good
            accepted.append(("coinbase", coinbase_value(order), r))
    seen_alpaca = set()
    for r in fake_alpaca.requests:
        if r["path"] == "/v2/orders" and r.get("accepted"):
            order = json.loads(r["body"])
            cid = order.get("client_order_id")
            if cid and cid in seen_alpaca:
                continue
            if cid:
                seen_alpaca.add(cid)  # Alpaca refuses a client order id it has seen
            accepted.append(("alpaca", alpaca_value(order), r))
    for wire in fake_hl.state["taken"]:  # the fake refuses a cloid it has seen: each taken order executes
        accepted.append(("hyperliquid", hyperliquid_value(wire), {"method": "POST", "path": "/exchange",
                                                                  "body": json.dumps(wire).encode(), "wire": wire}))
    for r in fake_kalshi.requests:
        if r["method"] == "POST" and r["path"] == "/trade-api/v2/portfolio/orders" and r.get("status") == 201:
            req = json.loads(r["body"])
            cid = req.get("client_order_id")
            if cid and cid in seen_kalshi:
                continue
            if cid:
                seen_kalshi.add(cid)
            accepted.append(("kalshi", kalshi_value(req), r))
    return accepted


def warden_notionals(world):
    """For the failure message only: client order id -> [(notional Warden reserved, retry?)] from its audit."""
    held = collections.defaultdict(list)
    for row in world.audit("gateway.forward"):
        detail = json.loads(row["detail"] or "{}")
        if detail.get("class") == "order" and detail.get("mode") == "live":
            held[detail.get("client_order_id")].append((float(detail.get("notional_usd", "nan")), detail.get("retry") == "true"))
    return held


def explain(venue, value, record, held):
    """What Warden reserved for this accepted order, as a short note."""
    cid = client_id(venue, record)
    found = held.get(cid, [])
    if not found:
        return f"no live order row for client id {cid!r}"
    reserved = [n for n, retry in found if not retry]
    retries = sum(1 for _, retry in found if retry)
    note = f"Warden reserved {', '.join(f'{n:.2f}' for n in reserved) or 'nothing'}"
    return note + (f" (+{retries} sends as a retry, unreserved)" if retries else "")


def show(record):
    return f"{record['method']} {record['path']} {record['body'][:400]!r}"


def exchange_config(fakes):
    return "\n".join(f'[venues.{name}]\nbase_url = "{fake.url}"\n'
                     + (f'market_data_url = "{fake.data.url}"\n' if name == "alpaca" else "") for name, fake in fakes.items())


def test_exchange_orders_never_exceed_max_leg_or_daily_cap(start, tmp_path, master_key, record_status):
    """Desks (each its own server, owner and fakes): paper orders first, then go-live and live orders, one stream
    of sequential orders and one of concurrent ones; every accepted order and each day's sum checked."""
    violations = []
    totals = collections.Counter()
    for desk in range(DESKS):
        rng = rng_for(f"exchange-{desk}")
        binance, kalshi = quiet(fx.binance(usdt="100000.00")), quiet(fx.kalshi(balance_cents=10_000_000))
        futures = quiet(ff.binance_futures(usdt="100000.00"))
        kraken = quiet(fk.kraken(usd="100000.0000"))
        kraken.state["nonce_window"] = 10**15  # concurrent calls arrive out of nonce order, as the key's setting allows
        bybit = quiet(fb.bybit(usdt="100000"))
        okx = quiet(fo.okx(usdt="100000"))
        coinbase = quiet(fcb.coinbase(usd="100000"))
        alpaca = quiet(fa.alpaca(cash="100000"))
        hyperliquid = quiet(fh.hyperliquid(usdc="100000.0"))
        fakes = {"binance": binance, "kalshi": kalshi, "binance-futures": futures, "kraken": kraken, "bybit": bybit, "okx": okx,
                 "coinbase": coinbase, "alpaca": alpaca, "hyperliquid": hyperliquid}
        world = None
        try:
            world = World(start, tmp_path, master_key, f"desk{desk}", exchange_config(fakes))
            world.credential("alpaca", {"api_key": fa.REAL_ALPACA_KEY, "api_secret": fa.REAL_ALPACA_SECRET})
            world.credential("hyperliquid", {"private_key": fh.REAL_HL_WALLET_KEY})
            world.credential("coinbase", {"api_key": fcb.REAL_COINBASE_KEY, "api_secret": fcb.REAL_COINBASE_SECRET})
            world.credential("okx", {"api_key": fo.REAL_OKX_KEY, "api_secret": fo.REAL_OKX_SECRET, "passphrase": fo.REAL_OKX_PASSPHRASE})
            world.credential("bybit", {"api_key": fb.REAL_BYBIT_KEY, "api_secret": fb.REAL_BYBIT_SECRET})
            world.credential("kraken", {"api_key": fk.REAL_KRAKEN_KEY, "api_secret": fk.REAL_KRAKEN_SECRET})
            world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})
            world.credential("binance-futures", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})
            world.credential("kalshi", {"key_id": fx.REAL_KALSHI_KEY_ID, "private_key_pem": fx.REAL_KALSHI_PRIVATE_KEY_PEM})
            r = requests.put(world.api + "/profile", headers=world.auth,
                             json={"risk": {"max_leg_usd": MAX_LEG_USD, "daily_cap_usd": DAILY_CAP_USD,
                                            "max_leverage": MAX_LEVERAGE}})
            assert r.status_code == 200, r.text
            key = world.key(list(fakes))["key"]
            alpaca_ids = [f"al-reuse-{i}" for i in range(6)]
            hyperliquid_ids = ["0x" + f"{i:032x}" for i in range(6)]
            coinbase_ids = [f"cbreuse-{i}" for i in range(6)]
            okx_ids = [f"okreuse{i}" for i in range(6)]
            bybit_ids = [f"by-reuse-{i}" for i in range(6)]
            kraken_ids = [f"kr-reuse-{i}" for i in range(6)]
            binance_ids = [f"reuse-{i}" for i in range(6)]
            futures_ids = [f"freuse-{i}" for i in range(6)]
            kalshi_ids = [f"kreuse-{i}" for i in range(6)]

            def batch(n):
                jobs = []
                for _ in range(n):
                    roll = rng.random()
                    if roll < 0.25:
                        request = gen_binance_request(rng, key, binance_ids)
                    elif roll < 0.38:
                        request = gen_futures_request(rng, key, futures_ids)
                    elif roll < 0.51:
                        request = gen_kraken_request(rng, key, kraken_ids)
                    elif roll < 0.67:
                        request = gen_bybit_request(rng, key, bybit_ids)
                    elif roll < 0.8:
                        request = gen_okx_request(rng, key, okx_ids)
                    elif roll < 0.86:
                        request = gen_coinbase_request(rng, key, coinbase_ids)
                    elif roll < 0.92:
                        request = gen_alpaca_request(rng, key, alpaca_ids)
                    elif roll < 0.975:
                        request = gen_hyperliquid_request(rng, key, hyperliquid_ids)
                    else:
                        request = gen_kalshi_request(rng, key, kalshi_ids)
                    jobs.append(lambda request=request: world.client.send(*request))
                return jobs

            # Paper: nothing reaches an order endpoint.
            run_all(batch(count(40)))
            paper_orders = [r for f in fakes.values() for r in f.requests if r["method"] == "POST" and r["path"] != "/info"]
            if paper_orders:
                violations.append(f"desk {desk}: {len(paper_orders)} paper orders reached a venue, e.g. {show(paper_orders[0])}")
            for venue in fakes:
                r = requests.post(world.api + "/profile/go-live", headers=world.auth, json={"venue": venue})
                assert r.status_code == 200, r.text
            # Live: sequential (fills the day in order), then concurrent (races for the last of it).
            sequential = batch(count(80))
            for job in sequential:
                job()
            run_all(batch(count(150)))
            totals["sent"] += count(40) + count(80) + count(150)

            accepted = accepted_orders(fakes)
            for r in [r for r in okx.requests if r["path"] == "/api/v5/account/set-leverage" and r.get("auth") == "ok"]:
                if (finite(json.loads(r["body"]).get("lever")) or math.inf) > MAX_LEVERAGE:
                    violations.append(f"desk {desk}: OKX accepted leverage above {MAX_LEVERAGE}: {show(r)}")
                totals["leverage_accepted"] += 1
            for r in [r for r in bybit.requests if r["path"] == "/v5/position/set-leverage" and r.get("auth") == "ok"]:
                levels = json.loads(r["body"])
                if max(finite(levels.get("buyLeverage")) or math.inf, finite(levels.get("sellLeverage")) or math.inf) > MAX_LEVERAGE:
                    violations.append(f"desk {desk}: Bybit accepted leverage above {MAX_LEVERAGE}: {show(r)}")
                totals["leverage_accepted"] += 1
            for r in leverage_over(futures)[:3]:
                violations.append(f"desk {desk}: the futures venue accepted leverage above {MAX_LEVERAGE}: {show(r)}")
            totals["leverage_accepted"] += sum(1 for r in futures.requests if r["path"].startswith("/fapi/v1/leverage")
                                               and r.get("status") == 200)
            totals["accepted"] += len(accepted)
            totals["futures_accepted"] += sum(1 for a in accepted if a[0] == "binance-futures")
            totals["kraken_accepted"] += sum(1 for a in accepted if a[0] == "kraken")
            totals["bybit_accepted"] += sum(1 for a in accepted if a[0] == "bybit")
            totals["okx_accepted"] += sum(1 for a in accepted if a[0] == "okx")
            totals["coinbase_accepted"] += sum(1 for a in accepted if a[0] == "coinbase")
            totals["alpaca_accepted"] += sum(1 for a in accepted if a[0] == "alpaca")
            totals["hyperliquid_accepted"] += sum(1 for a in accepted if a[0] == "hyperliquid")
            for r in [r for r in hyperliquid.requests if r.get("action", {}).get("type") == "updateLeverage" and r.get("auth") == "ok"]:
                if (finite(r["action"].get("leverage")) or math.inf) > MAX_LEVERAGE:
                    violations.append(f"desk {desk}: Hyperliquid got leverage above {MAX_LEVERAGE}: {show(r)}")
                totals["leverage_accepted"] += 1
            for r in hyperliquid.requests:
                if r["path"] == "/exchange" and r.get("signer") != fh.REAL_HL_ADDRESS.lower():
                    violations.append(f"desk {desk}: Hyperliquid got an action not signed by the real wallet: {show(r)}")
            held = warden_notionals(world)
            over_leg = [a for a in accepted if a[1] > MAX_LEG_USD + TOLERANCE]
            for venue, value, r in sorted(over_leg, key=lambda a: len(a[2]["body"]) + len(a[2]["path"]))[:6]:
                violations.append(f"desk {desk}: {venue} accepted an order worth {value:.2f} USD > max_leg_usd "
                                  f"{MAX_LEG_USD} ({explain(venue, value, r, held)}): {show(r)}")
            if len(over_leg) > 6:
                violations.append(f"desk {desk}: ... {len(over_leg)} orders over max_leg_usd in all")
            day = sum(a[1] for a in accepted)
            if day > DAILY_CAP_USD + TOLERANCE:
                # The orders that can trade more than Warden reserved for them, most underreserved first.
                def short(a):
                    found = [n for n, retry in held.get(client_id(a[0], a[2]), []) if not retry]
                    return a[1] - max(found, default=0)
                suspects = sorted((a for a in accepted if short(a) > TOLERANCE), key=lambda a: -short(a))
                violations.append(f"desk {desk}: the venues accepted orders worth {day:.2f} USD today > daily_cap_usd "
                                  f"{DAILY_CAP_USD} ({len(accepted)} orders); worth more than Warden reserved:\n    "
                                  + "\n    ".join(f"{v:.2f} USD ({explain(venue, v, r, held)}) {show(r)}"
                                                  for venue, v, r in suspects[:8]))
            trading = world.usage()["trading"]
            if trading["live_usd"] < 0 or trading["paper_usd"] < 0:
                violations.append(f"desk {desk}: negative volume in /usage: {trading}")
            totals["live_usd_warden"] += trading["live_usd"]
            totals["live_usd_venues"] += day
        finally:
            if world is not None:
                world.server.stop()  # eight desks: one server at a time
            for fake in fakes.values():
                fake.stop()
            alpaca.data.stop()
    print(f"seed {SEED}: {dict(totals)}")
    # The oracle is not vacuous: orders within the limits did go through.
    assert totals["accepted"] >= 4, tagged(f"almost nothing was accepted: {dict(totals)}")
    assert totals["futures_accepted"] >= 1 and totals["leverage_accepted"] >= 1, tagged(f"no futures traffic got through: {dict(totals)}")
    assert totals["kraken_accepted"] >= 1, tagged(f"no Kraken order got through: {dict(totals)}")
    assert totals["bybit_accepted"] >= 1, tagged(f"no Bybit order got through: {dict(totals)}")
    assert totals["okx_accepted"] >= 1, tagged(f"no OKX order got through: {dict(totals)}")
    assert totals["coinbase_accepted"] >= 1, tagged(f"no Coinbase order got through: {dict(totals)}")
    assert totals["alpaca_accepted"] >= 1, tagged(f"no Alpaca order got through: {dict(totals)}")
    assert totals["hyperliquid_accepted"] >= 1, tagged(f"no Hyperliquid order got through: {dict(totals)}")
    assert not violations, tagged("\n".join(violations))


# ========================================================================================= 2. LLM budgets

OPENAI_MODEL, CLAUDE_MODEL = "gpt-fuzz", "claude-fuzz"
PRICES = {"openai": {OPENAI_MODEL: (10.0, 1000.0)}, "anthropic": {CLAUDE_MODEL: (10.0, 1000.0)}}  # USD per M tokens
MODEL_MAX_OUTPUT = 200  # the models' own maximum output, and Warden's default_max_output_tokens
BUDGET_USD = 0.5


def ceiling_text(rng):
    return rng.choice([
        lambda: str(rng.randint(1, 40)), lambda: str(rng.randint(1, 40)), lambda: str(rng.randint(40, MODEL_MAX_OUTPUT)),
        lambda: "0", lambda: "-1", lambda: str(-rng.randint(2, 10 ** 6)), lambda: "10.5", lambda: "20.0", lambda: "1e12",
        lambda: "2e1", lambda: '"20"', lambda: '"-5"', lambda: str(2 ** 53 + 1), lambda: "1e400", lambda: "true",
        lambda: "null", lambda: "-0", lambda: "0.5", lambda: str(MODEL_MAX_OUTPUT), lambda: str(MODEL_MAX_OUTPUT + 1),
    ])()


def gen_llm_request(rng, key, tag):
    """(venue, method, target, headers, body, read) for one OpenAI or Anthropic call with odd fields."""
    venue = "anthropic" if rng.random() < 0.2 else "openai"
    fields = []
    if venue == "openai":
        path = rng.choice(["/v1/chat/completions"] * 6 + ["/v1/completions"] * 2 + ["/v1/responses"] * 2)
    else:
        path = "/v1/messages"
    model = OPENAI_MODEL if venue == "openai" else CLAUDE_MODEL
    fields.append(("model", json.dumps(model if rng.random() < 0.95 else rng.choice(["gpt-unpriced", model.upper()]))))
    words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(rng.randint(1, 30)))
    if path in ("/v1/chat/completions", "/v1/messages"):
        fields.append(("messages", json.dumps([{"role": "user", "content": words}])))
    elif path == "/v1/completions":
        fields.append(("prompt", json.dumps(words)))
    else:
        fields.append(("input", json.dumps(words)))
    names = {"/v1/chat/completions": ["max_tokens", "max_completion_tokens", "max_output_tokens"],
             "/v1/completions": ["max_tokens", "max_completion_tokens"], "/v1/responses": ["max_output_tokens", "max_tokens"],
             "/v1/messages": ["max_tokens", "max_tokens", "max_output_tokens"]}[path]
    for name in rng.sample(names, rng.choice([0, 1, 1, 1, 2, 2, 3][: len(names) + 2])) if venue == "openai" or rng.random() < 0.1 \
            else ["max_tokens"]:
        fields.append((name, ceiling_text(rng)))
    if rng.random() < 0.12:  # a ceiling twice: which one does each reader take?
        name = rng.choice(names)
        fields.insert(rng.randrange(len(fields) + 1), (name, ceiling_text(rng)))
    if venue == "openai" and rng.random() < 0.3:
        fields.append(("n", rng.choice(["2", "4", "8", "1", "0", "-1", '"3"', "2.0", "128"])))
    if path == "/v1/completions" and rng.random() < 0.3:
        fields.append(("best_of", rng.choice(["2", "5", "20", "1"])))
    stream = rng.random() < 0.4
    if stream or rng.random() < 0.05:
        fields.append(("stream", rng.choice(["true"] * 8 + ['"true"', "1", "false"])))
    if stream and venue == "openai" and rng.random() < 0.3:
        fields.append(("stream_options", '{"include_usage": true}'))
    rng.shuffle(fields)
    body = ("{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields) + "}").encode()
    headers = [("Content-Type", "application/json"), ("X-Fuzz-Tag", tag)]
    if venue == "openai":
        headers.append(("Authorization", f"Bearer {key}"))
    else:
        headers += [("x-api-key", key), ("anthropic-version", "2023-06-01")]
    read = not (stream and rng.random() < 0.25)  # some clients leave mid-stream
    return venue, "POST", f"/proxy/{venue}{path}", headers, body, read


def stated_ceiling(body):
    """For the failure message only: the output ceiling docs/gateway.md says is reserved (`max_tokens`, its twins, or
    default_max_output_tokens), read with Python's json."""
    try:
        req = json.loads(body)
    except ValueError:
        return MODEL_MAX_OUTPUT
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = req.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return MODEL_MAX_OUTPUT


def test_llm_spend_never_exceeds_the_daily_budget(start, tmp_path, master_key):
    """Keys with a small budget (and one family of a key with its children, who spend from it) fire generated
    calls, several at once per key; what the venues billed each budget is within it."""
    rng = rng_for("llm")
    openai_fake = quiet(fake_billing.billing_openai(PRICES["openai"], MODEL_MAX_OUTPUT))
    anthropic_fake = quiet(fake_billing.billing_anthropic(PRICES["anthropic"], MODEL_MAX_OUTPUT))
    price_lines = "\n".join(f'[prices.{venue}]\n"{model}" = {{ input = {p[0]}, output = {p[1]} }}'
                            for venue, models in PRICES.items() for model, p in models.items())
    config = (f'[venues.openai]\nbase_url = "{openai_fake.url}"\n\n[venues.anthropic]\nbase_url = "{anthropic_fake.url}"\n\n'
              f"[gateway]\ndefault_max_output_tokens = {MODEL_MAX_OUTPUT}\nupstream_timeout_seconds = 10\n\n{price_lines}\n")
    try:
        world = World(start, tmp_path, master_key, "llm", config)
        world.credential("openai", {"api_key": fakes.REAL_OPENAI_KEY})
        world.credential("anthropic", {"api_key": fakes.REAL_ANTHROPIC_KEY})
        budgets = {}  # budget id -> [agent keys spending from it]
        for i in range(count(40)):
            made = world.key(["openai", "anthropic"], budget=BUDGET_USD)
            budgets[f"key{i}"] = [made["key"]]
        family = world.key(["openai", "anthropic"], budget=BUDGET_USD)
        child = world.child(family["key"])
        budgets["family"] = [family["key"], child["key"], world.child(family["key"])["key"], world.child(child["key"])["key"]]

        calls = []
        for budget_id, keys in budgets.items():
            for j in range(count(30) * (3 if budget_id == "family" else 1)):
                calls.append(gen_llm_request(rng, rng.choice(keys), budget_id))
        rng.shuffle(calls)
        results = run_all([lambda c=c: world.client.send(c[1], c[2], c[3], c[4], read=c[5]) for c in calls])
        time.sleep(0.5)  # cut streams: let the fakes finish writing and Warden settle
        usage = world.usage()
    finally:
        openai_fake.stop()
        anthropic_fake.stop()

    def cost(bill):
        price_in, price_out = PRICES[bill["venue"]][bill["model"]]
        return (bill["input"] * price_in + bill["output"] * price_out) / 1e6

    billed = collections.defaultdict(list)
    for bill in openai_fake.bills + anthropic_fake.bills:
        billed[bill["tag"]].append(bill)
    violations = []
    for budget_id in budgets:
        bills = billed.get(budget_id, [])
        total = sum(cost(b) for b in bills)
        if total > BUDGET_USD + 1e-9:
            # The calls billed more output than their stated ceiling: the reproducers.
            records = [r for f in (openai_fake, anthropic_fake) for r in f.requests
                       if r["headers"].get("x-fuzz-tag") == budget_id and "bill" in r]
            records.sort(key=lambda r: stated_ceiling(r["body"]) - r["bill"]["output"])
            examples = "\n    ".join(f"{r['path']} {r['body'][:300]!r} billed in={r['bill']['input']} "
                                     f"out={r['bill']['output']} (stated ceiling {stated_ceiling(r['body'])})"
                                     for r in records[:3] if r["bill"]["output"] > stated_ceiling(r["body"]))
            violations.append(f"budget {budget_id}: the venues billed {total:.4f} USD > daily_budget_usd {BUDGET_USD} "
                              f"({len(bills)} calls); billed past their stated ceiling:\n    {examples}")
    for entry in usage["llm"]:
        if entry["spent_usd"] < 0 or entry.get("reserved_usd", 0) < 0:
            violations.append(f"negative usage in /usage: {entry}")
    accepted = sum(len(v) for v in billed.values())
    print(f"seed {SEED}: {len(calls)} LLM calls, {accepted} billed, "
          f"{sum(1 for r in results if isinstance(r, Exception))} cut or failed")
    assert accepted >= len(budgets), tagged(f"only {accepted} calls were billed: the generator is not reaching the venue")
    assert not violations, tagged("\n".join(violations))


# =================================================================================== 3. blocked endpoints

BLOCKED = ["DELETE /repos/*", "POST /admin/**", "PUT /repos/*/settings", "PATCH /orgs/*/billing/**", "GET /secrets/**"]
TARGETS = [("DELETE", "/repos/{w}"), ("POST", "/admin/{w}/delete"), ("POST", "/admin"), ("PUT", "/repos/{w}/settings"),
           ("PATCH", "/orgs/{w}/billing/plan"), ("GET", "/secrets/{w}")]
BENIGN = [("GET", "/repos/{w}"), ("DELETE", "/repos/{w}/issues"), ("POST", "/administrators"), ("PUT", "/repos/{w}/settingsx"),
          ("PATCH", "/orgs/{w}/plan"), ("GET", "/secret/{w}")]
OVERRIDE_HEADERS = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method", "X-Forwarded-Method"]
URL_HEADERS = ["X-Original-URL", "X-Rewrite-URL"]


def canonical_path(raw):
    """The path a typical upstream routes: `;` parameters stripped, %xx decoded (until it no longer changes: some
    stacks decode twice), `\\` and decoded `/` as separators, `//` collapsed, dot segments resolved, case folded,
    anything after a NUL dropped."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    for _ in range(3):
        segments = [s.split(";", 1)[0] for s in path.split("/")]
        decoded = urllib.parse.unquote("/".join(segments), errors="replace")
        if decoded == path:
            break
        path = decoded
    path = path.split("\x00", 1)[0].replace("\\", "/")
    out = []
    for segment in path.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment.lower())
    if out and re.fullmatch(r".+\.(json|xml)", out[-1]):  # a format suffix, as Rails routes it
        out[-1] = out[-1].rsplit(".", 1)[0]
    return out


def pattern_matches(pattern, segments):
    method, _, path = pattern.partition(" ")
    parts = [p.lower() for p in path.strip("/").split("/") if p]

    def match(i, j):
        if i == len(parts):
            return j == len(segments)
        if parts[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(segments) + 1))
        if j == len(segments):
            return False
        return (parts[i] == "*" or parts[i] == segments[j]) and match(i + 1, j + 1)
    return match(0, 0)


def upstream_routes(record):
    """Every (method, path) a typical upstream could route this request to: the method, any override header or
    `_method` (query or form body) and HEAD as GET; the path, or an X-Original-URL / X-Rewrite-URL."""
    headers = record["headers"]
    methods = {record["method"].upper()}
    methods |= {headers[h.lower()].strip().upper() for h in OVERRIDE_HEADERS if h.lower() in headers}
    query = urllib.parse.urlsplit(record["path"]).query
    for source in (query, record["body"].decode("latin-1")):
        methods |= {v.strip().upper() for k, v in urllib.parse.parse_qsl(source, keep_blank_values=True) if k == "_method"}
    if "HEAD" in methods:
        methods.add("GET")
    paths = [canonical_path(record["path"])] + [canonical_path(headers[h.lower()]) for h in URL_HEADERS if h.lower() in headers]
    return [(m, p) for m in methods for p in paths]


def blocked_route(record):
    for method, segments in upstream_routes(record):
        for pattern in BLOCKED:
            if pattern.split(" ")[0] == method and pattern_matches(pattern, segments):
                return f"{method} /{'/'.join(segments)} (blocked by {pattern!r})"
    return None


def technique(record):
    """For the failure message only: how a request that routes to a blocked endpoint was written."""
    headers, path = record["headers"], record["path"].lower()
    found = [f"{name} header" for name in URL_HEADERS + OVERRIDE_HEADERS if name.lower() in headers]
    if "_method=" in path or b"_method=" in record["body"]:
        found.append("_method parameter")
    if record["method"] == "HEAD":
        found.append("HEAD to a GET endpoint")
    if record["method"] != record["method"].upper():
        found.append("method case")
    for needle, name in ((";", "; path parameter"), ("%25", "double percent-encoding"), ("%3b", "encoded ;"),
                         ("%2f", "encoded /"), ("%5c", "encoded \\"), ("\\", "backslash"), ("%00", "NUL"),
                         ("%2e", "encoded dot"), ("/./", "dot segment"), ("/../", "dot segment"), ("//", "//"),
                         (".json", "format suffix")):
        if needle in path.split("?")[0]:
            found.append(name)
    if not found and "%" in path:
        found.append("percent-encoding")
    return " + ".join(dict.fromkeys(found)) or "plain"


def encode_char(rng, c):
    code = f"%{ord(c):02x}"
    return code.upper() if rng.random() < 0.5 else code


def mutate_path(rng, path):
    segments = path.strip("/").split("/")
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(11)
        i = rng.randrange(len(segments))
        s = segments[i]
        if kind == 0:  # case
            segments[i] = "".join(c.upper() if rng.random() < 0.5 else c for c in s)
        elif kind == 1 and s:  # %xx
            j = rng.randrange(len(s))
            segments[i] = s[:j] + encode_char(rng, s[j]) + s[j + 1:]
        elif kind == 2 and s:  # %25xx
            j = rng.randrange(len(s))
            segments[i] = s[:j] + "%25" + f"{ord(s[j]):02X}" + s[j + 1:]
        elif kind == 3:  # ;params
            segments[i] = s + rng.choice([";", ";x=1", ";jsessionid=abc", "%3B", "%3bx=1", "%253B"])
        elif kind == 4 and i + 1 < len(segments):  # an encoded slash joins two segments
            segments[i:i + 2] = [s + rng.choice(["%2F", "%2f", "%252F", "%5C", "\\"]) + segments[i + 1]]
        elif kind == 5:  # //
            segments.insert(i, "")
        elif kind == 6:  # dot segments
            segments.insert(i, rng.choice([".", "x/..", "%2e", "%2E%2E/" + s, "x/%2e%2e", "x/.%2e"]))
        elif kind == 7:  # trailing slash or dot
            segments.append(rng.choice(["", ".", "%2e", "%20"]))
        elif kind == 8:
            segments[i] = s + rng.choice(["%00", "%00.json", "%09", ".json", "%20"])
        elif kind == 9:  # look-alike dotless i, fullwidth letters, percent-encoded UTF-8
            segments[i] = s.replace("i", urllib.parse.quote("\u0131")).replace("e", urllib.parse.quote("\uff45"))
        else:
            segments[0:0] = [rng.choice(["", "."])]
    return "/" + "/".join(segments)


def gen_service_request(rng, key):
    template = rng.choice(BENIGN if rng.random() < 0.25 else TARGETS)
    method, path = template[0], template[1].format(w=rng.choice(["acme", "widget", "x", "acme-corp"]))
    headers = [("Authorization", f"Bearer {key}")]
    body = b""
    if rng.random() < 0.75:
        path = mutate_path(rng, path)
    trick = rng.random()
    if trick < 0.12:  # an override header
        headers.append((rng.choice(OVERRIDE_HEADERS), method if rng.random() < 0.7 else method.lower()))
        method = rng.choice(["POST", "GET", "PUT"])
    elif trick < 0.18:  # _method in the query
        path += "?_method=" + (method if rng.random() < 0.7 else method.lower())
        method = rng.choice(["POST", "GET"])
    elif trick < 0.24:  # _method in a form body
        body = f"_method={method}".encode()
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        method = "POST"
    elif trick < 0.30:  # a rewrite header with a harmless request line
        headers.append((rng.choice(URL_HEADERS), path))
        path = "/repos/ok"
    elif trick < 0.36:
        method = method.lower() if rng.random() < 0.7 else method.capitalize()
    elif trick < 0.40 and method == "GET":
        method = "HEAD"
    return method, "/proxy/svc" + path, headers, body


def test_blocked_endpoints_never_reach_the_service(start, tmp_path, master_key):
    rng = rng_for("service")
    service = quiet(fakes.Fake(lambda h, body: fakes.send_json(h, 200, {"ok": True})))
    blocked = ", ".join(json.dumps(b) for b in BLOCKED)
    config = (f'[services.svc]\nbase_url = "{service.url}"\nblocked_endpoints = [{blocked}]\n'
              f"rate_limit = 1000000\nrate_limit_window_seconds = 3600\n")
    try:
        world = World(start, tmp_path, master_key, "svc", config)
        world.credential("svc", {"token": fakes.REAL_SERVICE_TOKEN})
        key = world.key(["svc"])["key"]
        requests_ = [gen_service_request(rng, key) for _ in range(count(1500))]
        run_all([lambda r=r: world.client.send(*r) for r in requests_])
    finally:
        service.stop()
    reached = [(r, blocked_route(r)) for r in service.requests]
    bad = [(r, why) for r, why in reached if why]
    benign = len(reached) - len(bad)
    print(f"seed {SEED}: {len(requests_)} service calls, {len(reached)} reached the service, {len(bad)} blocked routes")
    assert benign > 0, tagged("no benign call reached the service: the oracle would be vacuous")
    bad.sort(key=lambda x: len(x[0]["path"]) + len(json.dumps(x[0]["headers"])))
    by_technique = collections.OrderedDict()
    for r, why in bad:
        extra = {k: v for k, v in r["headers"].items() if k in {h.lower() for h in OVERRIDE_HEADERS + URL_HEADERS}}
        by_technique.setdefault(technique(r), []).append(
            f"{r['method']} {r['path']}" + (f" {extra}" if extra else "") + (f" body={r['body']!r}" if r["body"] else "")
            + f" -> routes to {why}")
    assert not bad, tagged(f"{len(bad)} requests reached the service that route to a blocked endpoint "
                           f"(as the service received them; the shortest of each kind):\n"
                           + "\n".join(f"  {kind} ({len(found)}): {found[0]}" for kind, found in by_technique.items()))


# ======================================================================================== 4. key families

FAMILY_RATE_LIMIT = 25


def test_key_families_stop_with_their_parent_and_share_the_rate_limit(start, tmp_path, master_key):
    rng = rng_for("families")

    def handler(h, body):
        h.record["t"] = time.monotonic()
        fakes.send_json(h, 200, {"ok": True})

    limited, open_ = quiet(fakes.Fake(handler)), quiet(fakes.Fake(handler))
    config = (f'[services.limited]\nbase_url = "{limited.url}"\nrate_limit = {FAMILY_RATE_LIMIT}\n'
              f"rate_limit_window_seconds = 3600\n\n"
              f'[services.open]\nbase_url = "{open_.url}"\nrate_limit = 1000000\nrate_limit_window_seconds = 3600\n')
    violations = []
    try:
        world = World(start, tmp_path, master_key, "families", config)
        world.credential("limited", {"token": fakes.REAL_SERVICE_TOKEN})
        world.credential("open", {"token": fakes.REAL_SERVICE_TOKEN})

        def family(venues):
            """A root key, 3 children, 2 grandchildren of the first child: {label: (id, key)}."""
            root = world.key(venues)
            members = {"root": (root["id"], root["key"])}
            for c in range(3):
                made = world.child(root["key"])
                members[f"child{c}"] = (made["id"], made["key"])
            for g in range(2):
                made = world.child(members["child0"][1])
                members[f"grandchild{g}"] = (made["id"], made["key"])
            return members

        # (a) A family shares its root's rate limit: together at most rate_limit calls per window.
        members = family(["limited", "open"])
        jobs = [lambda label=label, key=key, i=i: world.client.send(
            "GET", f"/proxy/limited/items?who={label}&i={i}", [("Authorization", f"Bearer {key}")])
                for label, (_, key) in members.items() for i in range(count(40))]
        rng.shuffle(jobs)
        run_all(jobs)
        arrived = collections.Counter(urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query)["who"][0]
                                      for r in limited.requests)
        if sum(arrived.values()) > FAMILY_RATE_LIMIT:
            violations.append(f"rate_limit {FAMILY_RATE_LIMIT}: a family of {len(members)} keys got "
                              f"{sum(arrived.values())} calls through in one window ({dict(arrived)}); reproduce: mint "
                              f"children with POST /api/v1/agent-keys/child, then GET /proxy/limited/items "
                              f"{FAMILY_RATE_LIMIT} times with each")

        # (b) Revoking a key mid-run: once the revoke has returned, nothing sent afterwards by it or any descendant
        # reaches the venue. First a middle key (child0: its grandchildren must stop), then the root.
        for revoked_label, descendants in (("child0", {"child0", "grandchild0", "grandchild1"}), ("root", None)):
            members = family(["open"])
            descendants = descendants or set(members)
            first = len(open_.requests)
            revoked = threading.Event()
            stop = time.monotonic() + 1.5 * min(SCALE, 4)

            def fire(label, key):
                sent = 0
                while time.monotonic() < stop:
                    phase = "after" if revoked.is_set() else "before"
                    try:
                        world.client.send("GET", f"/proxy/open/items?who={label}&phase={phase}&i={sent}",
                                          [("Authorization", f"Bearer {key}")])
                    except Exception:
                        pass
                    sent += 1

            threads = [threading.Thread(target=fire, args=(label, key)) for label, (_, key) in members.items()]
            for t in threads:
                t.start()
            time.sleep(0.3 * min(SCALE, 4))
            r = requests.delete(world.api + f"/agent-keys/{members[revoked_label][0]}", headers=world.auth)
            assert r.status_code == 204, r.text
            revoked.set()
            for t in threads:
                t.join()
            late = collections.Counter()
            round_ = open_.requests[first:]
            for rec in round_:
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(rec["path"]).query)
                if q["phase"][0] == "after" and q["who"][0] in descendants:
                    late[q["who"][0]] += 1
            if late:
                violations.append(f"after DELETE /api/v1/agent-keys/<{revoked_label}> returned, the venue received "
                                  f"{sum(late.values())} calls sent afterwards by it or its descendants: {dict(late)}")
            before = sum(1 for rec in round_ if "phase=before" in rec["path"])
            assert before > 0, tagged("no call went through before the revoke: the check would be vacuous")
    finally:
        limited.stop()
        open_.stop()
    assert not violations, tagged("\n".join(violations))
