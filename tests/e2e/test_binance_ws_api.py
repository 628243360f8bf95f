"""Binance's WebSocket API (`/ws-api/v3`) through Warden, driven by python-binance's `ws_*` calls and by a raw
`websockets` client, against a local fake that checks every signed request as Binance does (fake_streams.py).

Each request is taken as its REST twin (`order.place` as `POST /api/v3/order`, …): the same classification,
caps, reservations and audit rows as the REST call, then signed with the real secret in the stream's form. The
agent's `apiKey` is its Warden key; `session.logon` is answered by Warden, which signs every request itself.
"""
import asyncio
import concurrent.futures
import json
import threading
import time

import pytest
import requests
from binance.async_client import AsyncClient
from binance.client import Client
from binance.ws.streams import BinanceSocketManager
from binance.exceptions import BinanceAPIException
from binance.ws.websocket_api import WebsocketAPI
from websockets.sync.client import connect

import fake_exchanges as fx
import fake_streams as fs
from test_exchanges import (THROWAWAY_BINANCE_SECRET, Exchanges, assert_only_real_credentials, buy_ten_dollars,
                            orders_seen, start_warden)


@pytest.fixture
def bx(start, tmp_path, master_key):
    rest, api = fx.binance(), fs.binance_api()
    config = tmp_path / "warden.toml"
    config.write_text(f'[venues.binance]\nbase_url = "{rest.url}"\nws_api_url = "{api.url}"\n')
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"binance": rest})
    world.creds = {"binance": world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})}
    world.api_fake = api
    world.ws = world.url.replace("http://", "ws://") + "/proxy/binance/ws-api/v3"
    yield world
    api.stop()
    rest.stop()


def sdk(world, key):
    """python-binance, its WebSocket API pointed at Warden (its REST calls too)."""
    client = Client(key, THROWAWAY_BINANCE_SECRET, ping=False)
    client.API_URL = world.url + "/proxy/binance/api"
    client.ws_api = WebsocketAPI(url=world.ws, tld="com")
    return client


def request(ws, id, method, **params):
    ws.send(json.dumps({"id": id, "method": method, "params": params}))
    return json.loads(ws.recv(timeout=5))


def test_python_binance_ws_orders_paper_then_live_signed_by_warden(bx):
    key = bx.key(venues=("binance",))
    fake = bx.api_fake
    client = sdk(bx, key)
    paper = client.ws_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002",
                                   price="50000.00")
    assert paper["status"] in ("NEW", "FILLED") and fake.state.get("orders", []) == [], paper
    assert [o["notional_usd"] for o in bx.paper_orders()] == [pytest.approx(10.0, abs=0.01)]

    bx.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 1000})
    bx.live("binance")
    live = client.ws_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001",
                                  price="50000.00")
    placed = fake.state["orders"][-1]
    # The SDK names its orders (x-…): the name goes up as the agent chose it, as over REST.
    assert live["clientOrderId"] == placed["newClientOrderId"] and placed["newClientOrderId"].startswith("x-"), placed
    assert placed["apiKey"] == fx.REAL_BINANCE_KEY and placed["quantity"] == "0.001"
    # Over the cap: refused by Warden with Binance's error shape, never sent.
    with pytest.raises(Exception) as refused:
        client.ws_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
    assert "max_leg_usd" in str(refused.value), refused.value
    assert len(fake.state["orders"]) == 1
    assert client.ws_get_account()["balances"][0]["asset"] == "USDT"
    # No request at the venue carried the agent key or the agent's throwaway signature's secret.
    sent = json.dumps(fake.state["received"])
    assert key not in sent and THROWAWAY_BINANCE_SECRET not in sent and not fake.state["leaks"]


def test_python_binance_user_socket_through_the_websocket_api(bx):
    """python-binance's user socket subscribes on the WebSocket API (userDataStream.subscribe.signature): Warden
    signs the subscription with the real key, and the account's events reach the agent."""
    key = bx.key(venues=("binance",), access="read")

    async def first_event():
        client = AsyncClient(key, THROWAWAY_BINANCE_SECRET)
        client.API_URL = bx.url + "/proxy/binance/api"
        client.ws_api = WebsocketAPI(url=bx.ws, tld="com")
        try:
            async with BinanceSocketManager(client).user_socket() as stream:
                return await asyncio.wait_for(stream.recv(), 10)
        finally:
            await client.close_connection()

    event = asyncio.run(first_event())
    assert event["e"] == "outboundAccountPosition", event
    subscribe = [r for r in bx.api_fake.state["received"] if r["method"] == "userDataStream.subscribe.signature"]
    assert len(subscribe) == 1 and subscribe[0]["params"]["apiKey"] == fx.REAL_BINANCE_KEY
    assert key not in json.dumps(bx.api_fake.state["received"])


def test_a_listen_key_is_made_kept_alive_and_closed_with_the_real_api_key(bx):
    """The listen key (POST/PUT/DELETE /api/v3/userDataStream) goes up with the real API key and no signature, as
    Binance's USER_STREAM endpoints take it; the stream it names (/ws/<listenKey>) is a stream-host path that
    Warden relays as it relays market streams (test_streams.py)."""
    key = bx.key(venues=("binance",), access="read")
    client = Client(key, THROWAWAY_BINANCE_SECRET, ping=False)
    client.API_URL = bx.url + "/proxy/binance/api"
    listen_key = client.stream_get_listen_key()
    assert listen_key in bx.fakes["binance"].state["listen_keys"]
    assert client.stream_keepalive(listen_key) == {}
    client.stream_close(listen_key)
    assert listen_key not in bx.fakes["binance"].state["listen_keys"]
    calls = [r for r in bx.fakes["binance"].requests if "/userDataStream" in r["path"]]
    assert [r["method"] for r in calls] == ["POST", "PUT", "DELETE"] and all("signature" not in r["path"] for r in calls)
    assert_only_real_credentials(bx.fakes["binance"], [key])


def test_requests_are_refused_or_answered_as_their_rest_twins(bx):
    key = bx.key(venues=("binance",))
    bx.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 1000})
    bx.live("binance")
    fake = bx.api_fake
    with connect(bx.ws, open_timeout=5) as ws:
        # No key yet: refused as a call without one.
        assert request(ws, 1, "account.status")["status"] == 401
        logon = request(ws, "a", "session.logon", apiKey=key, timestamp=int(time.time() * 1000), signature="00")
        assert logon["status"] == 200 and logon["result"]["apiKey"] == key
        assert request(ws, 2, "account.status")["status"] == 200  # the logged-on key, signed by Warden
        assert request(ws, 3, "ticker.price", symbol="BTCUSDT")["result"]["price"] == "50000.00"
        for id, method, params, reason in (
            (4, "order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}, "max_leg_usd"),
            (5, "order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "0.01&quantity=9",
                                "timeInForce": "GTC"}, "letters, digits"),
            (6, "order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": {"x": 1}}, "params must be"),
            (7, "sor.order.place", {"symbol": "BTCUSDT"}, "does not relay"),
            (8, "order.amend.keepPriority", {"symbol": "BTCUSDT", "newQty": "5"}, "does not relay"),
            (9, "order.place", {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001", "bogus": "1"}, "unknown"),
        ):
            answer = request(ws, id, method, **params)
            assert answer["id"] == id and answer["status"] >= 400 and reason in answer["error"]["msg"], (method, answer)
            assert isinstance(answer["error"]["code"], int) and answer["error"]["code"] < 0
        ws.send('{"id":10,"method":"order.place","method":"ping","params":{}}')
        assert "naming each member once" in json.loads(ws.recv(timeout=5))["error"]["msg"]
        # A venue refusal (4xx) gives the reservation back.
        reject = request(ws, 11, "order.place", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity=fx.BINANCE_REJECT_QUANTITY, price="0.01")
        assert reject["status"] == 400 and reject["error"]["code"] == -2010
        # A subscription to the user data stream is signed by Warden; its events reach the agent.
        assert request(ws, 12, "userDataStream.subscribe")["result"] == {"subscriptionId": 0}
        assert json.loads(ws.recv(timeout=5))["event"]["e"] == "outboundAccountPosition"
    assert [r["method"] for r in fake.state["received"]] == [
        "account.status", "ticker.price", "order.place", "userDataStream.subscribe.signature"]
    assert bx.trading()["live_usd"] == pytest.approx(0), "the venue's refusal released the reservation"
    assert not fake.state["leaks"]


def test_an_answer_to_one_request_is_never_taken_for_anothers_whatever_ids_the_agent_reuses(bx):
    """Warden sends every request up under an id of its own: a public request's refusal (a 400) that comes while an
    order with the same agent id waits cannot give that order's reservation back."""
    bx.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 1000})
    bx.live("binance")
    key = bx.key(venues=("binance",))
    with connect(bx.ws, open_timeout=5) as ws:
        ws.send(json.dumps({"id": "x", "method": "depth", "params": {"symbol": "NOSUCH"}}))
        ws.send(json.dumps({"id": "x", "method": "order.place", "params": {
            "apiKey": key, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.0002",
            "price": "50000.00"}}))
        answers = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    assert [(a["id"], a["status"]) for a in answers] == [("x", 400), ("x", 200)], answers
    ups = [r["id"] for r in bx.api_fake.state["received"]]
    assert len(set(ups)) == 2 and "x" not in ups, ups
    assert bx.trading()["live_usd"] == pytest.approx(10.0), "the order's reservation stands"


def test_the_daily_cap_holds_over_a_mixed_rest_and_websocket_burst(bx):
    """100 concurrent 10 USD orders under a 250 USD daily cap, half through REST, half through five WebSocket
    API streams: exactly 25 reach the venues, whichever way they came."""
    bx.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 250})
    bx.live("binance")
    key = bx.key(venues=("binance",))
    rest_fake, api_fake = bx.fakes["binance"], bx.api_fake

    def rest_order(_):
        client = Client(key, THROWAWAY_BINANCE_SECRET, ping=False)
        client.API_URL = bx.url + "/proxy/binance/api"
        try:
            buy_ten_dollars(client)
            return "ok"
        except BinanceAPIException as e:
            return e.message

    def stream_orders(n):
        outcomes = []
        with connect(bx.ws, open_timeout=5) as ws:
            for i in range(10):
                ws.send(json.dumps({"id": f"{n}-{i}", "method": "order.place", "params": {
                    "apiKey": key, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                    "quantity": "0.0002", "price": "50000.00", "timestamp": int(time.time() * 1000), "signature": "0" * 64}}))
            for _ in range(10):
                answer = json.loads(ws.recv(timeout=10))
                outcomes.append("ok" if answer["status"] == 200 else answer["error"]["msg"])
        return outcomes

    with concurrent.futures.ThreadPoolExecutor(55) as pool:
        rest = pool.map(rest_order, range(50))
        streams = pool.map(stream_orders, range(5))
        results = list(rest) + [o for outcomes in streams for o in outcomes]
    assert len(results) == 100
    assert results.count("ok") == 25, results
    assert all("daily_cap_usd" in r for r in results if r != "ok"), results
    placed = len(orders_seen(rest_fake, "POST", "/api/v3/order")) + len(api_fake.state["orders"])
    assert placed == 25, placed
    assert bx.trading()["live_usd"] == pytest.approx(250.0)
    assert_only_real_credentials(rest_fake, [key])
    assert key not in json.dumps(api_fake.state["received"])


def test_each_stream_order_has_its_own_audit_rows(bx):
    bx.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 1000})
    bx.live("binance")
    key = bx.key(venues=("binance",))
    with connect(bx.ws, open_timeout=5) as ws:
        request_id = ws.response.headers["X-Warden-Request-Id"]
        answer = request(ws, "o1", "order.place", apiKey=key, symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                         quantity="0.0002", price="50000.00")
        assert answer["status"] == 200
    deadline = time.time() + 5
    while time.time() < deadline:
        rows = requests.get(bx.api + "/audit", params={"request": request_id}, headers=bx.auth).json()["entries"]
        if any(r["action"] == "gateway.stream_close" for r in rows):
            break
        time.sleep(0.1)
    by_action = {r["action"]: json.loads(r["detail"]) for r in rows}
    # The stream opened keyless (the key came with the request): its owner sees the order's rows and the close.
    assert set(by_action) == {"gateway.forward", "gateway.result", "gateway.stream_close"}, rows
    assert by_action["gateway.stream_close"]["agent_messages"] == "1"
    forward, result = by_action["gateway.forward"], by_action["gateway.result"]
    assert forward["class"] == "order" and forward["ws_method"] == "order.place" and forward["ws_id"] == '"o1"'
    assert forward["path"] == "/api/v3/order" and float(forward["notional_usd"]) == 10.0, forward
    assert result["status"] == "200" and result["reservation"] == "kept"
    assert all(r["actor_id"] for r in rows if r["action"] in ("gateway.forward", "gateway.result"))
