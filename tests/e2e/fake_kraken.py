"""A local fake of Kraken's Spot REST API on 127.0.0.1.

Private calls are checked as Kraken checks them: `API-Key` must be the planted real key, `API-Sign` must be
base64 HMAC-SHA512, keyed with the base64-decoded secret, of the URI path followed by SHA-256(nonce + POST
data), and the nonce must be above every nonce the key used before (Kraken's default: no nonce window;
`state["nonce_window"]`, like the key's setting, lets a nonce that far below the highest through once). Like Kraken, errors are
HTTP 200 with `{"error": ["EAPI:…"]}`. Every request is recorded with its verdict under "auth".
state: usd (ZUSD balance, a string), prices (last trade by pair key), orders (txid → order), nonces (accepted).
"""
import base64
import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from urllib.parse import parse_qsl, urlsplit

from fake_exchanges import Venue, _mark, _single_headers
from fakes import send_json

REAL_KRAKEN_KEY = "PLANTEDrealKrakenKey8fJ2kL9mN4pQ7rS1tU6vW3xY0zA5bC8dE2fG7hJ4kL9mN"
REAL_KRAKEN_SECRET = base64.b64encode(b"PLANTED-real-kraken-secret-" + secrets.token_bytes(37)).decode()
KRAKEN_REJECT_VOLUME = "999"

# key → (altname, base, quote, last price)
KRAKEN_PAIRS = {"XXBTZUSD": ("XBTUSD", "XXBT", "ZUSD", "50000.0"), "XETHZUSD": ("ETHUSD", "XETH", "ZUSD", "2500.00"),
                "XBTUSDT": ("XBTUSDT", "XXBT", "USDT", "50000.0")}


def kraken_sign(path, nonce, data, secret=REAL_KRAKEN_SECRET):
    digest = hashlib.sha256((str(nonce) + data).encode()).digest()
    return base64.b64encode(hmac.new(base64.b64decode(secret), path.encode() + digest, hashlib.sha512).digest()).decode()


def _pair(name):
    """The pair key for a name Kraken accepts (key or altname)."""
    for key, (alt, *_rest) in KRAKEN_PAIRS.items():
        if name in (key, alt):
            return key
    return None


def kraken(usd="1000.0000"):
    state = {"usd": usd, "orders": {}, "nonces": [], "nonce_window": 0, "ids": itertools.count(1)}
    venue = None
    nonce_lock = threading.Lock()

    def answer(h, result=None, errors=()):
        send_json(h, 200, {"error": list(errors), "result": result} if not errors else {"error": list(errors)})

    def authenticate(h, path, raw):
        headers = _single_headers(h, ["API-Key", "API-Sign"])
        if headers is None or headers["API-Key"] != REAL_KRAKEN_KEY:
            _mark(h, "rejected: key")
            return None, "EAPI:Invalid key"
        text = raw.decode("latin-1")
        if (h.headers.get("Content-Type") or "").startswith("application/json"):
            try:
                params = json.loads(text or "{}")
            except ValueError:
                return None, "EGeneral:Invalid arguments"
        else:
            pairs = parse_qsl(text, keep_blank_values=True)
            if len({k for k, _ in pairs}) != len(pairs):
                return None, "EGeneral:Invalid arguments"
            params = dict(pairs)
        nonce = params.get("nonce")
        try:
            nonce = int(str(nonce))
        except ValueError:
            _mark(h, "rejected: nonce")
            return None, "EAPI:Invalid nonce"
        expected = kraken_sign(path, params["nonce"], text)
        if not hmac.compare_digest((headers["API-Sign"] or "").encode(), expected.encode()):
            _mark(h, "rejected: signature")
            return None, "EAPI:Invalid signature"
        with nonce_lock:
            highest = max(state["nonces"], default=None)
            if nonce in state["nonces"] or (highest is not None and nonce <= highest - state["nonce_window"]):
                _mark(h, "rejected: nonce")
                return None, "EAPI:Invalid nonce"
            state["nonces"].append(nonce)
        _mark(h, "ok")
        return params, None

    def order_view(o):
        return {k: o[k] for k in ("refid", "userref", "cl_ord_id", "status", "opentm", "starttm", "expiretm", "descr", "vol",
                                  "vol_exec", "cost", "fee", "price", "stopprice", "limitprice", "misc", "oflags")}

    def add_order(h, p):
        key = _pair(p.get("pair", ""))
        if key is None:
            return answer(h, errors=["EQuery:Unknown asset pair"])
        if p.get("volume") == KRAKEN_REJECT_VOLUME:
            return answer(h, errors=["EOrder:Insufficient funds"])
        try:
            volume = float(p["volume"])
            price = float(p["price"]) if p.get("price") is not None else None
        except (KeyError, ValueError):
            return answer(h, errors=["EGeneral:Invalid arguments:volume"])
        last = float(KRAKEN_PAIRS[key][3])
        kind = p.get("ordertype")
        if kind not in ("market", "limit"):
            return answer(h, errors=["EGeneral:Invalid arguments:ordertype"])
        if kind == "limit" and price is None:
            return answer(h, errors=["EGeneral:Invalid arguments:price"])
        txid = f"O{next(state['ids']):05d}-FAKE-{secrets.token_hex(3).upper()}"
        filled = kind == "market"
        desc = f"{p.get('type')} {volume:.8f} {KRAKEN_PAIRS[key][0]} @ {'market' if filled else 'limit ' + str(price)}"
        with venue.lock:
            state["orders"][txid] = {
                "refid": None, "userref": int(p.get("userref", 0) or 0), "cl_ord_id": p.get("cl_ord_id"),
                "status": "closed" if filled else "open", "opentm": time.time(), "starttm": 0, "expiretm": 0,
                "descr": {"pair": KRAKEN_PAIRS[key][0], "type": p.get("type"), "ordertype": kind,
                          "price": "0" if filled else f"{price}", "price2": "0", "leverage": "none", "order": desc,
                          "close": ""},
                "vol": f"{volume:.8f}", "vol_exec": f"{volume if filled else 0:.8f}",
                "cost": f"{volume * last if filled else 0:.5f}", "fee": "0.00000", "price": f"{last if filled else 0}",
                "stopprice": "0.00000", "limitprice": "0.00000", "misc": "", "oflags": p.get("oflags", "fciq"),
                "pair": key}
        record = getattr(h, "record", None)
        if record is not None:
            record["accepted"] = True  # Kraken answers 200 either way: this marks an order it took
        answer(h, {"descr": {"order": desc}, "txid": [txid]})

    def public(h, path, p):
        _mark(h, "public")
        name = path.rsplit("/", 1)[-1]
        if name == "Time":
            return answer(h, {"unixtime": int(time.time()), "rfc1123": time.strftime("%a, %d %b %y %H:%M:%S +0000", time.gmtime())})
        if name == "SystemStatus":
            return answer(h, {"status": "online", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        if name == "Assets":
            return answer(h, {a: {"aclass": "currency", "altname": alt, "decimals": 10, "display_decimals": 5, "status": "enabled"}
                              for a, alt in (("XXBT", "XBT"), ("XETH", "ETH"), ("ZUSD", "USD"), ("USDT", "USDT"))})
        if name == "AssetPairs":
            return answer(h, {key: {"altname": alt, "wsname": f"{alt[:-3] if quote == 'ZUSD' else alt[:-4]}/{quote.lstrip('Z')}",
                                    "aclass_base": "currency", "base": base, "aclass_quote": "currency", "quote": quote,
                                    "lot": "unit", "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8,
                                    "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [], "fees": [[0, 0.26]],
                                    "fees_maker": [[0, 0.16]], "fee_volume_currency": "ZUSD", "margin_call": 80,
                                    "margin_stop": 40, "ordermin": "0.0001", "costmin": "0.5", "tick_size": "0.1",
                                    "status": "online"}
                              for key, (alt, base, quote, _) in KRAKEN_PAIRS.items()
                              if p.get("pair") in (None, key, alt)})
        if name == "Ticker":
            keys = [_pair(n) for n in p.get("pair", ",".join(KRAKEN_PAIRS)).split(",")]
            if None in keys:
                return answer(h, errors=["EQuery:Unknown asset pair"])
            return answer(h, {k: {"a": [KRAKEN_PAIRS[k][3], "1", "1.000"], "b": [KRAKEN_PAIRS[k][3], "1", "1.000"],
                                  "c": [KRAKEN_PAIRS[k][3], "0.001"], "v": ["10", "100"], "p": [KRAKEN_PAIRS[k][3]] * 2,
                                  "t": [10, 100], "l": [KRAKEN_PAIRS[k][3]] * 2, "h": [KRAKEN_PAIRS[k][3]] * 2,
                                  "o": KRAKEN_PAIRS[k][3]} for k in keys})
        return answer(h, errors=["EGeneral:Unknown method"])

    def handle(h, body):
        split = urlsplit(h.path)
        path = split.path
        if path.startswith("/0/public/"):
            return public(h, path, dict(parse_qsl(split.query or body.decode("latin-1"), keep_blank_values=True)))
        if not path.startswith("/0/private/") or h.command != "POST":
            return answer(h, errors=["EGeneral:Unknown method"])
        p, error = authenticate(h, path, body)
        if error:
            return answer(h, errors=[error])
        name = path[len("/0/private/"):]
        if name in ("Balance", "BalanceEx"):
            if name == "Balance":
                return answer(h, {"ZUSD": state["usd"], "XXBT": "0.0000000000"})
            return answer(h, {"ZUSD": {"balance": state["usd"], "hold_trade": "0.0000"}})
        if name == "AddOrder":
            return add_order(h, p)
        if name in ("OpenOrders", "ClosedOrders"):
            wanted = "open" if name == "OpenOrders" else "closed"
            with venue.lock:
                found = {t: order_view(o) for t, o in state["orders"].items() if o["status"] == wanted}
            return answer(h, {"open": found} if wanted == "open" else {"closed": found, "count": len(found)})
        if name == "QueryOrders":
            with venue.lock:
                return answer(h, {t: order_view(state["orders"][t]) for t in str(p.get("txid", "")).split(",") if t in state["orders"]})
        if name == "CancelOrder":
            with venue.lock:
                order = state["orders"].get(str(p.get("txid")))
                if order is None or order["status"] != "open":
                    return answer(h, errors=["EOrder:Unknown order"])
                order["status"] = "canceled"
            return answer(h, {"count": 1})
        # Withdrawals, transfers, staking, WebSocket tokens…: answered if they ever arrive. Tests assert they never do.
        return answer(h, {"refid": "FAKE-" + secrets.token_hex(4)})

    venue = Venue(handle, state)
    return venue
