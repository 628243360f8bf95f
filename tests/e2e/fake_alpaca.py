"""A local fake of Alpaca on 127.0.0.1: the Trading API and, apart, the market data API, as Alpaca serves them
from two hosts (api.alpaca.markets and data.alpaca.markets).

Both check every call as Alpaca does (crypto market data, public at Alpaca, passes without a key): `APCA-API-KEY-ID` and `APCA-API-SECRET-KEY` must be the planted real key and
secret (each sent once), else 401 `{"code": 40110000, "message": "request is not authorized"}`. Every request is
recorded with its verdict under "auth"; an order the fake took is marked "accepted". Like Alpaca, a
`client_order_id` is refused when it was used before (422).
state (shared by both hosts): cash (a string), prices (last trade by symbol; the quote is ask = bid = last),
orders (id → order).
"""
import hmac
import json
import time
import uuid
from urllib.parse import parse_qs, unquote, urlsplit

from fake_exchanges import Venue, _mark, _single_headers
from fakes import send_json

REAL_ALPACA_KEY = "PKPLANTEDrealAlpacaKey7Q2W"
REAL_ALPACA_SECRET = "PLANTEDrealAlpacaSecret3Lm9Np5Rs8Tv1Wx4Yz6Ab9Cd2Ef"
ALPACA_REJECT_QTY = "999"
ALPACA_PRICES = {"AAPL": "200", "BRK.B": "400", "BTC/USD": "50000", "ETH/USD": "2500"}


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def fail(h, status, message):
    send_json(h, status, {"code": 40010001 if status == 400 else status * 100_000 + 10_000, "message": message})


def authenticate(h):
    headers = _single_headers(h, ["APCA-API-KEY-ID", "APCA-API-SECRET-KEY"])
    if (headers is None or headers["APCA-API-KEY-ID"] != REAL_ALPACA_KEY
            or not hmac.compare_digest((headers["APCA-API-SECRET-KEY"] or "").encode(), REAL_ALPACA_SECRET.encode())):
        _mark(h, "rejected: key")
        fail(h, 401, "request is not authorized")
        return False
    _mark(h, "ok")
    return True


def alpaca(cash="1000"):
    """The trading host; its `data` attribute is the market data host, sharing the state."""
    state = {"cash": cash, "prices": dict(ALPACA_PRICES), "orders": {}}
    venue = None

    def asset(symbol):
        crypto = "/" in symbol
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, symbol)), "class": "crypto" if crypto else "us_equity",
                "exchange": "CRYPTO" if crypto else "NASDAQ", "symbol": symbol, "name": symbol, "status": "active",
                "tradable": True, "marginable": not crypto, "shortable": False, "easy_to_borrow": False, "fractionable": True,
                "min_order_size": "0.0001" if crypto else None, "min_trade_increment": "0.0001" if crypto else None,
                "price_increment": "1" if crypto else None, "attributes": []}

    def account():
        return {"id": "f1e2d3c4-0000-4000-8000-000000000001", "account_number": "PA3FAKE", "status": "ACTIVE",
                "crypto_status": "ACTIVE", "currency": "USD", "cash": state["cash"], "buying_power": state["cash"],
                "regt_buying_power": state["cash"], "daytrading_buying_power": "0", "non_marginable_buying_power": state["cash"],
                "portfolio_value": state["cash"], "equity": state["cash"], "last_equity": state["cash"], "long_market_value": "0",
                "short_market_value": "0", "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0",
                "sma": "0", "daytrade_count": 0, "multiplier": "1", "pattern_day_trader": False, "trading_blocked": False,
                "transfers_blocked": False, "account_blocked": False, "trade_suspended_by_user": False,
                "shorting_enabled": False, "created_at": "2026-01-01T00:00:00Z", "accrued_fees": "0", "pending_transfer_in": "0"}

    def order_view(o):
        return {"id": o["id"], "client_order_id": o["client_order_id"], "created_at": o["at"], "updated_at": o["at"],
                "submitted_at": o["at"], "filled_at": o["at"] if o["status"] == "filled" else None, "expired_at": None,
                "canceled_at": None, "failed_at": None, "replaced_at": None, "replaced_by": None, "replaces": None,
                "asset_id": asset(o["symbol"])["id"], "symbol": o["symbol"], "asset_class": asset(o["symbol"])["class"],
                "notional": o.get("notional"), "qty": o.get("qty"), "filled_qty": o.get("qty") or "0",
                "filled_avg_price": state["prices"][o["symbol"]] if o["status"] == "filled" else None,
                "order_class": "simple", "order_type": o["type"], "type": o["type"], "side": o["side"],
                "time_in_force": o["time_in_force"], "limit_price": o.get("limit_price"), "stop_price": None,
                "status": o["status"], "extended_hours": bool(o.get("extended_hours")), "legs": None,
                "trail_percent": None, "trail_price": None, "hwm": None, "position_intent": None}

    def create_order(h, body):
        try:
            o = json.loads(body)
        except ValueError:
            return fail(h, 400, "invalid body")
        if o.get("symbol") not in state["prices"]:
            return fail(h, 422, "asset not found")
        if o.get("qty") in (ALPACA_REJECT_QTY, float(ALPACA_REJECT_QTY)):
            return fail(h, 403, "insufficient buying power")
        client_id = o.get("client_order_id") or str(uuid.uuid4())
        with venue.lock:
            if any(x["client_order_id"] == client_id for x in state["orders"].values()):
                return fail(h, 422, "client_order_id must be unique")
            order = {"id": str(uuid.uuid4()), "client_order_id": client_id, "symbol": o["symbol"], "side": o.get("side"),
                     "type": o.get("type"), "time_in_force": o.get("time_in_force"), "at": now_iso(),
                     "qty": None if o.get("qty") is None else str(o["qty"]),
                     "notional": None if o.get("notional") is None else str(o["notional"]),
                     "limit_price": None if o.get("limit_price") is None else str(o["limit_price"]),
                     "extended_hours": o.get("extended_hours"), "status": "filled" if o.get("type") == "market" else "new"}
            state["orders"][order["id"]] = order
        h.record["accepted"] = True
        send_json(h, 200, order_view(order))

    def handle(h, body):
        if not authenticate(h):
            return
        split = urlsplit(h.path)
        path, method = split.path, h.command
        q = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if method == "GET" and path == "/v2/account":
            return send_json(h, 200, account())
        if method == "GET" and path == "/v2/clock":
            return send_json(h, 200, {"timestamp": now_iso(), "is_open": True, "next_open": now_iso(), "next_close": now_iso()})
        if method == "GET" and path == "/v2/assets":
            wanted = q.get("asset_class")
            return send_json(h, 200, [asset(s) for s in state["prices"] if wanted in (None, asset(s)["class"])])
        if method == "GET" and path.startswith("/v2/assets/"):
            symbol = unquote(path[len("/v2/assets/"):])
            return send_json(h, 200, asset(symbol)) if symbol in state["prices"] else fail(h, 404, "asset not found")
        if method == "GET" and path == "/v2/positions":
            return send_json(h, 200, [])
        if method == "GET" and path == "/v2/orders":
            with venue.lock:
                found = [order_view(o) for o in state["orders"].values() if o["status"] == "new"]
            return send_json(h, 200, found)
        if method == "POST" and path == "/v2/orders":
            return create_order(h, body)
        if method == "DELETE" and path.startswith("/v2/orders/"):
            with venue.lock:
                order = state["orders"].get(path[len("/v2/orders/"):])
                if order is None:
                    return fail(h, 404, "order not found")
                if order["status"] != "new":
                    return fail(h, 422, "order is not cancelable")
                order["status"] = "canceled"
            h.send_response(204)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        # Transfers, wallets, closing positions…: answered if they ever arrive. Tests assert they never do.
        send_json(h, 200, {"id": "fake", "status": "QUEUED"})

    def snapshot(symbol):
        p = float(state["prices"][symbol])
        return {"latestTrade": {"t": now_iso(), "x": "V", "p": p, "s": 1, "c": ["@"], "i": 1, "z": "C"},
                "latestQuote": {"t": now_iso(), "ax": "V", "ap": p, "as": 1, "bx": "V", "bp": p, "bs": 1, "c": ["R"], "z": "C"},
                "minuteBar": {"t": now_iso(), "o": p, "h": p, "l": p, "c": p, "v": 1, "n": 1, "vw": p},
                "dailyBar": {"t": now_iso(), "o": p, "h": p, "l": p, "c": p, "v": 1, "n": 1, "vw": p},
                "prevDailyBar": {"t": now_iso(), "o": p, "h": p, "l": p, "c": p, "v": 1, "n": 1, "vw": p}}

    def handle_data(h, body):
        # Crypto market data is public at Alpaca; everything else on this host needs the key.
        if h.path.startswith("/v1beta3/crypto/") and not (h.headers.get_all("APCA-API-KEY-ID") or
                                                           h.headers.get_all("APCA-API-SECRET-KEY")):
            _mark(h, "public")
        elif not authenticate(h):
            return
        split = urlsplit(h.path)
        path = split.path
        symbols = [s for s in ",".join(v[-1] for k, v in parse_qs(split.query).items() if k == "symbols").split(",") if s]
        known = [s for s in symbols if s in state["prices"]]
        if h.command != "GET":
            return fail(h, 404, "not found")
        if path == "/v2/stocks/snapshots":
            return send_json(h, 200, {s: snapshot(s) for s in known if "/" not in s})
        if path.startswith("/v2/stocks/") and path.endswith("/snapshot"):
            symbol = unquote(path.split("/")[3])
            return send_json(h, 200, dict(snapshot(symbol), symbol=symbol)) if symbol in state["prices"] else fail(h, 404, "not found")
        if path.startswith("/v1beta3/crypto/us/"):
            kind = path[len("/v1beta3/crypto/us/"):]
            if kind == "snapshots":
                return send_json(h, 200, {"snapshots": {s: snapshot(s) for s in known if "/" in s}})
            if kind == "latest/trades":
                return send_json(h, 200, {"trades": {s: snapshot(s)["latestTrade"] for s in known if "/" in s}})
            if kind == "latest/orderbooks":
                return send_json(h, 200, {"orderbooks": {s: {"t": now_iso(), "a": [{"p": float(state["prices"][s]), "s": 1}],
                                                             "b": [{"p": float(state["prices"][s]), "s": 1}]}
                                                         for s in known if "/" in s}})
        fail(h, 404, "not found")

    venue = Venue(handle, state)
    venue.data = Venue(handle_data, state)
    venue.data.lock = venue.lock
    return venue
