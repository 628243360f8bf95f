"""A local fake of OKX's v5 API (spot and linear perpetual swaps) on 127.0.0.1.

Private calls are checked as OKX checks them: `OK-ACCESS-KEY` and `OK-ACCESS-PASSPHRASE` must be the planted
real ones, the ISO timestamp within 30 s, and `OK-ACCESS-SIGN` the base64 HMAC-SHA256 of timestamp + method +
request path (with its query) + body. Business errors are HTTP 200 with a non-zero `code`, as at OKX. Every
request is recorded with its verdict under "auth"; an order the fake took is marked "accepted".
state: usdt (a string), prices (last by instId), ct_val (contract size by swap), leverage, orders (ordId → order).
"""
import base64
import datetime
import hashlib
import hmac
import itertools
import json
import time
from urllib.parse import parse_qsl, urlsplit

from fake_exchanges import Venue, _mark, _single_headers
from fakes import send_json

REAL_OKX_KEY = "5eed0k1x-real-0000-okx-key000000001"
REAL_OKX_SECRET = "PLANTEDrealOKXSecret4Fh8Jk2Lm6Np0Qr3St7Uv1Wx5"
REAL_OKX_PASSPHRASE = "PLANTED-real-okx-passphrase"
OKX_REJECT_SZ = "999"
OKX_PRICES = {"BTC-USDT": "50000", "ETH-USDT": "2500", "BTC-USDT-SWAP": "50000", "ETH-USDT-SWAP": "2500"}
OKX_CT_VAL = {"BTC-USDT-SWAP": "0.01", "ETH-USDT-SWAP": "0.1"}


def okx_sign(timestamp, method, target, body, secret=REAL_OKX_SECRET):
    return base64.b64encode(hmac.new(secret.encode(), f"{timestamp}{method}{target}{body}".encode(), hashlib.sha256).digest()).decode()


def now_ms():
    return int(time.time() * 1000)


def okx(usdt="1000"):
    state = {"usdt": usdt, "prices": dict(OKX_PRICES), "ct_val": dict(OKX_CT_VAL), "leverage": {}, "orders": {},
             "ids": itertools.count(600_000_001)}
    venue = None

    def ok(h, data):
        send_json(h, 200, {"code": "0", "msg": "", "data": data})

    def fail(h, code, msg, status=200, data=()):
        send_json(h, status, {"code": code, "msg": msg, "data": list(data)})

    def authenticate(h, target, body):
        headers = _single_headers(h, ["OK-ACCESS-KEY", "OK-ACCESS-SIGN", "OK-ACCESS-TIMESTAMP", "OK-ACCESS-PASSPHRASE"])
        if headers is None or headers["OK-ACCESS-KEY"] != REAL_OKX_KEY:
            _mark(h, "rejected: key")
            fail(h, "50111", "Invalid OK-ACCESS-KEY", 401)
            return False
        if headers["OK-ACCESS-PASSPHRASE"] != REAL_OKX_PASSPHRASE:
            _mark(h, "rejected: passphrase")
            fail(h, "50105", "Invalid OK-ACCESS-PASSPHRASE", 401)
            return False
        try:
            at = datetime.datetime.strptime(headers["OK-ACCESS-TIMESTAMP"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        except (TypeError, ValueError):
            _mark(h, "rejected: timestamp")
            fail(h, "50112", "Invalid OK-ACCESS-TIMESTAMP", 401)
            return False
        if abs(at.timestamp() - time.time()) > 30:
            _mark(h, "rejected: timestamp")
            fail(h, "50102", "Timestamp request expired", 401)
            return False
        expected = okx_sign(headers["OK-ACCESS-TIMESTAMP"], h.command, target, body)
        if not hmac.compare_digest((headers["OK-ACCESS-SIGN"] or "").encode(), expected.encode()):
            _mark(h, "rejected: signature")
            fail(h, "50113", "Invalid Sign", 401)
            return False
        _mark(h, "ok")
        return True

    def instrument(inst_id):
        base, quote = inst_id.split("-")[:2]
        swap = inst_id.endswith("-SWAP")
        return {"instType": "SWAP" if swap else "SPOT", "instId": inst_id, "uly": f"{base}-{quote}" if swap else "",
                "instFamily": f"{base}-{quote}" if swap else "", "baseCcy": "" if swap else base, "quoteCcy": "" if swap else quote,
                "settleCcy": quote if swap else "", "ctVal": state["ct_val"].get(inst_id, ""), "ctMult": "1" if swap else "",
                "ctValCcy": base if swap else "", "ctType": "linear" if swap else "", "lever": "100" if swap else "",
                "tickSz": "0.1", "lotSz": "0.01" if swap else "0.00000001", "minSz": "0.01" if swap else "0.00001",
                "maxLmtSz": "100000", "maxMktSz": "100000", "state": "live", "listTime": "1606468572000", "expTime": "",
                "alias": "", "optType": "", "stk": "", "category": "1", "ruleType": "normal", "maxLmtAmt": "20000000",
                "maxMktAmt": "1000000", "maxTwapSz": "", "maxIcebergSz": "", "maxTriggerSz": "", "maxStopSz": ""}

    def ticker(inst_id):
        p = state["prices"][inst_id]
        return {"instType": "SWAP" if inst_id.endswith("SWAP") else "SPOT", "instId": inst_id, "last": p, "lastSz": "1",
                "askPx": p, "askSz": "1", "bidPx": p, "bidSz": "1", "open24h": p, "high24h": p, "low24h": p,
                "volCcy24h": "1000", "vol24h": "10", "sodUtc0": p, "sodUtc8": p, "ts": str(now_ms())}

    def public(h, path, p):
        _mark(h, "public")
        if path == "/api/v5/public/time":
            return ok(h, [{"ts": str(now_ms())}])
        if path == "/api/v5/public/instruments":
            kind = p.get("instType")
            ids = [i for i in state["prices"] if (i.endswith("-SWAP")) == (kind == "SWAP") and p.get("instId") in (None, i)]
            return ok(h, [instrument(i) for i in ids] if kind in ("SPOT", "SWAP") else [])
        if path == "/api/v5/market/ticker":
            if p.get("instId") not in state["prices"]:
                return fail(h, "51001", "Instrument ID does not exist")
            return ok(h, [ticker(p["instId"])])
        if path == "/api/v5/market/tickers":
            return ok(h, [ticker(i) for i in state["prices"] if i.endswith("-SWAP") == (p.get("instType") == "SWAP")])
        return fail(h, "50000", "unknown public endpoint")

    def place_one(o):
        """(the order's answer, whether it was placed)."""
        if o.get("instId") not in state["prices"]:
            return {"sCode": "51001", "sMsg": "Instrument ID does not exist"}, False
        if o.get("sz") == OKX_REJECT_SZ:
            return {"sCode": "51008", "sMsg": "Order failed. Insufficient balance"}, False
        try:
            float(o["sz"]), float(o.get("px") or 0)
        except (KeyError, TypeError, ValueError):
            return {"sCode": "51000", "sMsg": "Parameter sz error"}, False
        ord_id = str(next(state["ids"]))
        with venue.lock:
            state["orders"][ord_id] = dict(o, ordId=ord_id, state="filled" if o.get("ordType") == "market" else "live")
        return {"ordId": ord_id, "clOrdId": o.get("clOrdId", ""), "tag": "", "ts": str(now_ms()), "sCode": "0",
                "sMsg": "Order placed"}, True

    def place(h, body):
        orders = json.loads(body)
        results = [place_one(o) for o in (orders if isinstance(orders, list) else [orders])]
        if any(placed for _, placed in results):
            h.record["accepted"] = True
        if all(placed for _, placed in results):
            return ok(h, [answer for answer, _ in results])
        fail(h, "1", "Operation failed.", data=[answer for answer, _ in results])

    def handle(h, body):
        split = urlsplit(h.path)
        path, method = split.path, h.command
        p = dict(parse_qsl(split.query, keep_blank_values=True))
        if method == "GET" and path.startswith(("/api/v5/public/", "/api/v5/market/")):
            return public(h, path, p)
        if not authenticate(h, h.path, body.decode("latin-1")):
            return
        if method == "GET" and path == "/api/v5/account/balance":
            return ok(h, [{"totalEq": state["usdt"], "details": [{"ccy": "USDT", "availBal": state["usdt"], "cashBal": state["usdt"],
                                                                 "eq": state["usdt"], "frozenBal": "0", "availEq": state["usdt"],
                                                                 "eqUsd": state["usdt"], "uTime": str(now_ms())}],
                               "uTime": str(now_ms())}])
        if method == "GET" and path == "/api/v5/account/config":
            return ok(h, [{"acctLv": "2", "posMode": "net_mode", "autoLoan": False, "uid": "1", "mainUid": "1", "level": "Lv1",
                           "greeksType": "PA", "ctIsoMode": "automatic", "mgnIsoMode": "automatic", "label": "warden-test",
                           "perm": "read_only,trade", "ip": "", "kycLv": "1", "type": "0"}])
        if method == "GET" and path == "/api/v5/asset/currencies":
            return ok(h, [{"ccy": c, "chain": f"{c}-ERC20", "name": c, "canDep": True, "canWd": True, "canInternal": True,
                           "minWd": "1", "maxWd": "100000", "minFee": "1", "maxFee": "2", "wdTickSz": "4", "mainNet": True}
                          for c in ("BTC", "ETH", "USDT")])
        if method == "GET" and path == "/api/v5/trade/orders-pending":
            with venue.lock:
                return ok(h, [o for o in state["orders"].values() if o["state"] == "live"])
        if method == "POST" and path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders"):
            return place(h, body)
        if method == "POST" and path == "/api/v5/trade/cancel-order":
            o = json.loads(body or b"{}")
            with venue.lock:
                order = state["orders"].get(o.get("ordId"))
                if order is None or order["state"] != "live":
                    return fail(h, "1", "Operation failed.", data=[{"sCode": "51400", "sMsg": "Cancellation failed"}])
                order["state"] = "canceled"
            return ok(h, [{"ordId": o["ordId"], "clOrdId": order.get("clOrdId", ""), "sCode": "0", "sMsg": ""}])
        if method == "POST" and path == "/api/v5/account/set-leverage":
            o = json.loads(body or b"{}")
            state["leverage"][o.get("instId")] = o.get("lever")
            return ok(h, [{"instId": o.get("instId"), "lever": o.get("lever"), "mgnMode": o.get("mgnMode"), "posSide": ""}])
        # Transfers, withdrawals, sub-accounts…: answered if they ever arrive. Tests assert they never do.
        return ok(h, [{"transId": "1"}])

    venue = Venue(handle, state)
    return venue
