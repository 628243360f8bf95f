"""Local fake WebSocket venues, on 127.0.0.1 only, built on the `websockets` library's threaded server.

- `service()`: a REST service's stream. Takes the handshake only with the real token in its auth header,
  then echoes every message (text stays text, bytes stay bytes).
- `realtime()`: OpenAI's Realtime API as its server speaks it: the real key as a Bearer token on the
  handshake; `session.update` → `session.updated`; `response.create` → `response.created`, a text delta,
  `response.done` with usage (output = the response's `max_output_tokens`, or 50); a second
  `response.create` while one runs → an `error` event naming the client event; `input_audio_buffer.commit`
  starts a response by itself (the server's turn detection), as the real service does by default, unless a
  `session.update` set turn detection's `create_response` to false (or `state["ignore_turn_settings"]`).
- `kalshi()`: Kalshi's `/trade-api/ws/v2`: the handshake must carry KALSHI-ACCESS-KEY/-TIMESTAMP/-SIGNATURE,
  RSA-PSS over timestamp + "GET" + path, verified with the real key; `subscribe` → `subscribed`.
- `binance()`: Binance's public stream host: `/ws/<stream>` sends trade events.
- `binance_api()`: Binance's WebSocket API (`/ws-api/v3`): signed methods checked as Binance checks them (the real
  apiKey, HMAC-SHA256 of the sorted parameters with the real secret, a fresh timestamp); orders recorded.

Every fake records each handshake's headers and each message it received (`state`).
"""
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from websockets.http11 import Response
from websockets.datastructures import Headers
from websockets.sync.server import serve

import fake_exchanges as fx
import fakes


class StreamFake:
    def __init__(self, handler, check=None):
        self.state = {"handshakes": [], "received": [], "open": 0}
        self._check = check

        def process_request(connection, request):
            self.state["handshakes"].append({"path": request.path, "headers": dict(request.headers.raw_items())})
            if self._check:
                refusal = self._check(request)
                if refusal:
                    return Response(401, "Unauthorized", Headers({"Content-Type": "application/json"}), refusal.encode())
            return None

        def wrapped(ws):
            self.state["open"] += 1
            try:
                handler(ws, self.state)
            except Exception:
                pass
            finally:
                self.state["open"] -= 1

        self.server = serve(wrapped, "127.0.0.1", 0, process_request=process_request, max_size=8 * 1024 * 1024)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def service():
    def check(request):
        if request.headers.get("X-Api-Token") != f"token {fakes.REAL_SERVICE_TOKEN}":
            return '{"error":"bad token"}'

    def handler(ws, state):
        for message in ws:
            state["received"].append(message)
            ws.send(message)

    return StreamFake(handler, check)


def realtime():
    def check(request):
        if request.headers.get("Authorization") != f"Bearer {fakes.REAL_OPENAI_KEY}":
            return '{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}'

    def handler(ws, state):
        running = {"id": None}
        ws.send(json.dumps({"type": "session.created", "event_id": "evt_1", "session": {"id": "sess_1", "model": "gpt-realtime"}}))

        def respond(max_tokens):
            rid = "resp_" + uuid.uuid4().hex[:12]
            running["id"] = rid
            ws.send(json.dumps({"type": "response.created", "event_id": "evt_c", "response": {"id": rid, "status": "in_progress"}}))
            ws.send(json.dumps({"type": "response.output_text.delta", "event_id": "evt_d", "response_id": rid, "delta": "hi"}))
            output = max_tokens if isinstance(max_tokens, int) else 50
            ws.send(json.dumps({"type": "response.done", "event_id": "evt_e", "response": {
                "id": rid, "status": "completed", "usage": {"total_tokens": 100 + output, "input_tokens": 100, "output_tokens": output}}}))
            running["id"] = None

        for message in ws:
            event = json.loads(message)
            state["received"].append(event)
            kind = event.get("type")
            if kind == "session.update":
                session = event.get("session") or {}
                detection = session.get("turn_detection", (session.get("audio") or {}).get("input", {}).get("turn_detection", "unset"))
                if isinstance(detection, dict) and "create_response" in detection and not state.get("ignore_turn_settings"):
                    running["auto"] = detection["create_response"]
                elif detection is None:
                    running["auto"] = False
                ws.send(json.dumps({"type": "session.updated", "event_id": "evt_u", "session": session}))
            elif kind == "response.create":
                if state.get("busy"):
                    ws.send(json.dumps({"type": "error", "event_id": "evt_x", "error": {
                        "type": "invalid_request_error", "code": "conversation_already_has_active_response",
                        "message": "busy", "param": None, "event_id": event.get("event_id")}}))
                    continue
                respond((event.get("response") or {}).get("max_output_tokens"))
            elif kind == "input_audio_buffer.commit":
                ws.send(json.dumps({"type": "input_audio_buffer.committed", "event_id": "evt_b"}))
                if running.get("auto", True):  # turn detection answers by itself unless told not to
                    respond(None)
            elif kind == "response.cancel":
                pass

    return StreamFake(handler, check)


KALSHI_WS_PATH = "/trade-api/ws/v2"


def kalshi():
    public_key = fx._KALSHI_KEY.public_key()

    def check(request):
        key = request.headers.get("KALSHI-ACCESS-KEY")
        ts = request.headers.get("KALSHI-ACCESS-TIMESTAMP")
        sig = request.headers.get("KALSHI-ACCESS-SIGNATURE")
        if key != fx.REAL_KALSHI_KEY_ID or not ts or not sig:
            return '{"error":"missing or unknown key"}'
        if not ts.isdigit() or abs(int(time.time() * 1000) - int(ts)) > 60_000:
            return '{"error":"timestamp outside the window"}'
        try:
            public_key.verify(base64.b64decode(sig, validate=True), f"{ts}GET{KALSHI_WS_PATH}".encode(),
                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return '{"error":"invalid signature"}'
        if request.path.split("?")[0] != KALSHI_WS_PATH:
            return '{"error":"not found"}'

    def handler(ws, state):
        sid = 0
        for message in ws:
            command = json.loads(message)
            state["received"].append(command)
            if command.get("cmd") == "subscribe":
                for channel in command["params"]["channels"]:
                    sid += 1
                    ws.send(json.dumps({"id": command["id"], "type": "subscribed", "msg": {"channel": channel, "sid": sid}}))
                ws.send(json.dumps({"type": "fill", "sid": sid, "msg": {"trade_id": "t1", "order_id": "o1", "count": 3}}))
            else:
                ws.send(json.dumps({"id": command.get("id"), "type": "error", "msg": {"code": 8, "msg": "Unknown command"}}))

    return StreamFake(handler, check)


def binance(events=3):
    def handler(ws, state):
        stream = ws.request.path.split("/ws/", 1)[-1]
        for n in range(events):
            ws.send(json.dumps({"e": "trade", "E": int(time.time() * 1000), "s": stream.split("@")[0].upper(), "t": n,
                                "p": "50000.00", "q": "0.001"}))
        for message in ws:
            state["received"].append(message)

    return StreamFake(handler)


BINANCE_SIGNED = {"order.place", "order.test", "order.cancel", "order.status", "openOrders.status", "allOrders", "myTrades",
                  "account.status", "userDataStream.subscribe.signature"}


def binance_signature(params, secret=fx.REAL_BINANCE_SECRET):
    """Binance's WebSocket API signature: HMAC-SHA256 (hex) of the parameters but `signature`, sorted by name, as
    name=value pairs joined by &."""
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def binance_api():
    """Binance's WebSocket API (/ws-api/v3). Signed methods need the real apiKey, a fresh timestamp and the real
    secret's signature; state: orders (as placed), leaks (credentials seen on public requests), events sent."""
    ids = itertools.count(5001)

    def answer(ws, request, status, result=None, error=None):
        body = {"id": request.get("id"), "status": status}
        body["error" if error else "result"] = error or result
        ws.send(json.dumps(body))

    def handler(ws, state):
        state.setdefault("orders", [])
        state.setdefault("leaks", [])
        for message in ws:
            request = json.loads(message)
            state["received"].append(request)
            method, params = request.get("method"), request.get("params") or {}
            if method in BINANCE_SIGNED:
                if params.get("apiKey") != fx.REAL_BINANCE_KEY:
                    answer(ws, request, 401, error={"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
                    continue
                if not hmac.compare_digest(str(params.get("signature", "")), binance_signature(params)):
                    answer(ws, request, 400, error={"code": -1022, "msg": "Signature for this request is not valid."})
                    continue
                if abs(int(params.get("timestamp", 0)) - int(time.time() * 1000)) > 5000:
                    answer(ws, request, 400, error={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})
                    continue
            elif "apiKey" in params or "signature" in params:
                state["leaks"].append(request)
            if method == "order.place":
                if params.get("quantity") == fx.BINANCE_REJECT_QUANTITY:
                    answer(ws, request, 400, error={"code": -2010, "msg": "Account has insufficient balance for requested action."})
                    continue
                state["orders"].append(params)
                answer(ws, request, 200, {"symbol": params["symbol"], "orderId": next(ids), "orderListId": -1,
                                          "clientOrderId": params.get("newClientOrderId"), "transactTime": int(time.time() * 1000),
                                          "status": "NEW", "side": params["side"], "type": params["type"]})
            elif method == "order.test":
                answer(ws, request, 200, {})
            elif method == "account.status":
                answer(ws, request, 200, {"balances": [{"asset": "USDT", "free": "1000.00", "locked": "0.00"}]})
            elif method == "userDataStream.subscribe.signature":
                answer(ws, request, 200, {"subscriptionId": 0})
                # The account's first event comes a moment later, as on Binance (the SDK registers its queue first).
                event = json.dumps({"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": int(time.time() * 1000),
                                                                   "B": [{"a": "USDT", "f": "1000.00", "l": "0.00"}]}})
                threading.Timer(0.3, lambda: ws.send(event)).start()
            elif method in ("ping", "userDataStream.unsubscribe"):
                answer(ws, request, 200, {})
            elif method == "depth" and params.get("symbol") not in fx.BINANCE_PRICES:
                time.sleep(0.5)  # a slow refusal: the answers of later requests come after it
                answer(ws, request, 400, error={"code": -1121, "msg": "Invalid symbol."})
            elif method == "ticker.price":
                answer(ws, request, 200, {"symbol": params["symbol"], "price": fx.BINANCE_PRICES[params["symbol"]]})
            else:
                answer(ws, request, 400, error={"code": -1100, "msg": f"unknown method {method}"})

    return StreamFake(handler)


def polymarket():
    """Polymarket's CLOB streams: `/ws/user` takes a subscription only with the real level-2 credentials in its
    `auth`, then sends the account's order events; `/ws/market` is public. `PING` → `PONG`."""

    def handler(ws, state):
        user = ws.request.path.startswith("/ws/user")
        authed = False
        for message in ws:
            state["received"].append(message)
            if message == "PING":
                ws.send("PONG")
                continue
            subscription = json.loads(message)
            if user and not authed:
                auth = subscription.get("auth") or {}
                if (auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")) != (
                        fx.REAL_POLY_API_KEY, fx.REAL_POLY_API_SECRET, fx.REAL_POLY_PASSPHRASE):
                    ws.close(4001, "invalid auth")
                    return
                authed = True
            for market in subscription.get("markets") or subscription.get("assets_ids") or []:
                ws.send(json.dumps([{"event_type": "order" if user else "book", "market": market, "type": "PLACEMENT"}]))

    return StreamFake(handler)


class Silent:
    """A venue that takes the connection and never answers the handshake."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = []
        self.state = {"handshakes": [], "received": []}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def stop(self):
        self.sock.close()
        for conn in self.held:
            conn.close()
