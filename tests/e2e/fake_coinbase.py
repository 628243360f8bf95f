"""A local fake of Coinbase Advanced Trade (`/api/v3/brokerage`) on 127.0.0.1.

Private calls are checked as Coinbase checks a CDP key's JWT: `Authorization: Bearer <ES256 JWT>` whose header
names the planted key (`kid`), whose claims name it too (`sub`), with `iss` "cdp", a current `nbf`/`exp` window
and `uri` = "<METHOD> <host><path>", signed by the planted EC P-256 key. Every request is recorded with its
verdict under "auth"; an order the fake took is marked "accepted".
state: usd (a string), prices (by product), orders (order_id → order).
"""
import base64
import json
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from fake_exchanges import Venue, _mark
from fakes import send_json

REAL_COINBASE_KEY = "organizations/5eed0000-real-org0-0000-000000000001/apiKeys/5eed0000-real-key0-0000-000000000002"
_KEY = ec.generate_private_key(ec.SECP256R1())
REAL_COINBASE_SECRET = _KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                          serialization.NoEncryption()).decode()
COINBASE_PRICES = {"BTC-USD": "50000", "ETH-USD": "2500", "BTC-USDC": "50000"}
COINBASE_REJECT_SIZE = "999"


def _b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def coinbase(usd="1000"):
    state = {"usd": usd, "prices": dict(COINBASE_PRICES), "orders": {}}
    venue = None

    def error(h, status, kind, message):
        send_json(h, status, {"error": kind, "code": 16 if status == 401 else 3, "message": message, "error_details": message})

    def authenticate(h, path):
        auth = h.headers.get_all("Authorization") or []
        if len(auth) != 1 or not auth[0].startswith("Bearer "):
            _mark(h, "rejected: no token")
            return False
        try:
            head, claims, signature = auth[0][7:].split(".")
            header, payload = json.loads(_b64url(head)), json.loads(_b64url(claims))
            raw = _b64url(signature)
            _KEY.public_key().verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                                     f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature, KeyError):
            _mark(h, "rejected: signature")
            return False
        now = time.time()
        expected_uri = f"{h.command} {h.headers.get('Host')}{path}"
        if (header.get("alg") != "ES256" or header.get("kid") != REAL_COINBASE_KEY or payload.get("sub") != REAL_COINBASE_KEY
                or payload.get("iss") != "cdp" or not payload.get("nbf", now + 99) - 5 <= now <= payload.get("exp", 0)
                or payload.get("uri") != expected_uri):
            _mark(h, f"rejected: claims {payload.get('uri')!r} != {expected_uri!r}")
            return False
        _mark(h, "ok")
        return True

    def product(pid):
        base, quote = pid.split("-")
        return {"product_id": pid, "price": state["prices"][pid], "price_percentage_change_24h": "0", "volume_24h": "100",
                "base_increment": "0.00000001", "quote_increment": "0.01", "quote_min_size": "1", "quote_max_size": "10000000",
                "base_min_size": "0.00000001", "base_max_size": "3400", "base_name": base, "quote_name": quote,
                "status": "online", "cancel_only": False, "limit_only": False, "post_only": False, "trading_disabled": False,
                "auction_mode": False, "product_type": "SPOT", "quote_currency_id": quote, "base_currency_id": base,
                "base_display_symbol": base, "quote_display_symbol": quote, "view_only": False, "price_increment": "0.01",
                "display_name": pid, "product_venue": "CBE", "mid_market_price": state["prices"][pid]}

    def place(h, body):
        o = json.loads(body)
        pid = o.get("product_id")
        if pid not in state["prices"]:
            return send_json(h, 200, {"success": False, "error_response": {"error": "UNKNOWN_PRODUCT_ID"}})
        config = o.get("order_configuration", {})
        fields = next(iter(config.values()), {}) if config else {}
        if COINBASE_REJECT_SIZE in (fields.get("base_size"), fields.get("quote_size")):
            return send_json(h, 200, {"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
                                      "error_response": {"error": "INSUFFICIENT_FUND", "message": "Insufficient balance"}})
        order_id = str(uuid.uuid4())
        with venue.lock:
            state["orders"][order_id] = dict(o, order_id=order_id, status="OPEN" if "limit" in next(iter(config), "") else "FILLED")
        h.record["accepted"] = True
        send_json(h, 200, {"success": True, "success_response": {"order_id": order_id, "product_id": pid, "side": o.get("side"),
                                                                 "client_order_id": o.get("client_order_id", "")},
                           "order_configuration": config})

    def handle(h, body):
        split = urlsplit(h.path)
        path, method = split.path, h.command
        p = dict(parse_qsl(split.query, keep_blank_values=True))
        if method == "GET" and path.startswith("/api/v3/brokerage/market/products"):
            _mark(h, "public")
            rest = path[len("/api/v3/brokerage/market/products"):].strip("/")
            if not rest:
                return send_json(h, 200, {"products": [product(i) for i in state["prices"]], "num_products": len(state["prices"])})
            if rest not in state["prices"]:
                return send_json(h, 404, {"error": "NOT_FOUND", "message": "product not found"})
            return send_json(h, 200, product(rest))
        if method == "GET" and path in ("/v2/currencies", "/v2/currencies/crypto", "/v2/exchange-rates"):
            _mark(h, "public")
            if path == "/v2/exchange-rates":
                return send_json(h, 200, {"data": {"currency": "USD", "rates": {"BTC": "0.00002", "ETH": "0.0004", "USDC": "1"}}})
            return send_json(h, 200, {"data": [{"id": "USD", "name": "US Dollar", "min_size": "0.01"}]}
                             if path == "/v2/currencies" else {"data": [{"code": "BTC", "name": "Bitcoin", "exponent": 8}]})
        if not authenticate(h, path):
            return error(h, 401, "UNAUTHENTICATED", "Unauthorized")
        if method == "GET" and path == "/api/v3/brokerage/accounts":
            return send_json(h, 200, {"accounts": [{"uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)), "name": f"{c} Wallet",
                                                    "currency": c, "available_balance": {"value": v, "currency": c},
                                                    "default": True, "active": True, "type": "ACCOUNT_TYPE_CRYPTO" if c != "USD"
                                                    else "ACCOUNT_TYPE_FIAT", "ready": True,
                                                    "hold": {"value": "0", "currency": c}}
                                                   for c, v in (("USD", state["usd"]), ("BTC", "0"))],
                                      "has_next": False, "cursor": "", "size": 2})
        if method == "GET" and path == "/v2/accounts":
            return send_json(h, 200, {"pagination": {"next_uri": None}, "data": [
                {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, c)), "name": f"{c} Wallet", "primary": True, "type": "wallet",
                 "currency": {"code": c, "name": c}, "balance": {"amount": v, "currency": c}, "created_at": "2026-01-01T00:00:00Z",
                 "updated_at": "2026-01-01T00:00:00Z", "resource": "account"} for c, v in (("USD", state["usd"]), ("BTC", "0"))]})
        if method == "GET" and path == "/api/v3/brokerage/products":
            return send_json(h, 200, {"products": [product(i) for i in state["prices"]], "num_products": len(state["prices"])})
        if method == "GET" and path.startswith("/api/v3/brokerage/products/"):
            pid = path.rsplit("/", 1)[1]
            return send_json(h, 200, product(pid)) if pid in state["prices"] else send_json(h, 404, {"error": "NOT_FOUND"})
        if method == "POST" and path == "/api/v3/brokerage/orders":
            return place(h, body)
        if method == "POST" and path == "/api/v3/brokerage/orders/batch_cancel":
            ids = json.loads(body or b"{}").get("order_ids", [])
            results = []
            with venue.lock:
                for order_id in ids:
                    order = state["orders"].get(order_id)
                    ok = order is not None and order["status"] == "OPEN"
                    if ok:
                        order["status"] = "CANCELLED"
                    results.append({"success": ok, "failure_reason": "" if ok else "UNKNOWN_CANCEL_ORDER", "order_id": order_id})
            return send_json(h, 200, {"results": results})
        if method == "GET" and path == "/api/v3/brokerage/orders/historical/batch":
            with venue.lock:
                found = [dict(o, status=o["status"]) for o in state["orders"].values() if o["status"] == p.get("order_status", o["status"])]
            return send_json(h, 200, {"orders": found, "has_next": False, "cursor": ""})
        # Sends, withdrawals, transfers, conversions…: answered if they ever arrive. Tests assert they never do.
        send_json(h, 200, {"data": {"id": str(uuid.uuid4()), "status": "pending"}})

    venue = Venue(handle, state)
    return venue
