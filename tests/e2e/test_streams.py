"""Streams (WebSockets) through the gateway: the agent opens its socket at Warden with its agent key where its
client puts the venue's key; Warden opens the venue's socket with the real credential before it answers 101,
then relays both ways, holding the messages that could act on the account to the same policy as calls.

Driven by the official openai SDK's realtime client and by the `websockets` client (Kalshi's documented
format, a REST service's socket, Binance's public streams) against local fakes that check the handshake's
credential or signature as the venues do (fake_streams.py).
"""
import base64
import json
import os
import socket
import time

import openai
import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

import fake_exchanges as fx
import fake_streams as fs
import fakes
from conftest import warden

MODEL = "gpt-realtime-test"
OWNER, PASSWORD = "streams@example.com", "streams-password-1"


@pytest.fixture
def world(start, tmp_path, master_key):
    upstreams = {"openai": fs.realtime(), "echo": fs.service(), "kalshi": fs.kalshi(), "binance": fs.binance(),
                 "plain": fs.service(), "polymarket": fs.polymarket(), "silent": fs.Silent()}
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[venues.openai]
base_url = "{upstreams['openai'].url}"

[venues.kalshi]
base_url = "{upstreams['kalshi'].url}"

[venues.binance]
base_url = "http://127.0.0.1:9"
stream_url = "{upstreams['binance'].url}"

[venues.polymarket]
base_url = "http://127.0.0.1:9"
stream_url = "{upstreams['polymarket'].url}"

[services.echo]
base_url = "{upstreams['echo'].url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "
websocket = true

[services.silent]
base_url = "{upstreams['silent'].url}"
websocket = true

[services.plain]
base_url = "{upstreams['plain'].url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[gateway]
upstream_timeout_seconds = 2
default_max_output_tokens = 100
stream_idle_seconds = 3
stream_max_message_bytes = 65536
stream_max_per_key = 3

[prices.openai]
"{MODEL}" = {{ input = 0, output = 1000 }}
""")
    data = tmp_path / "data"
    env = {"WARDEN_MASTER_KEY": master_key}
    assert warden("user", "create", OWNER, PASSWORD, "--no-reset", "--data-dir", str(data), "--config", str(config),
                  env=env).returncode == 0
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": OWNER, "password": PASSWORD}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    def credential(venue, secret):
        r = requests.post(api + "/credentials", headers=auth, json={"venue": venue, "label": venue, "secret": secret})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    creds = {"openai": credential("openai", {"api_key": fakes.REAL_OPENAI_KEY}),
             "echo": credential("echo", {"token": fakes.REAL_SERVICE_TOKEN}),
             "plain": credential("plain", {"token": fakes.REAL_SERVICE_TOKEN}),
             "silent": credential("silent", {"token": fakes.REAL_SERVICE_TOKEN}),
             "kalshi": credential("kalshi", {"key_id": fx.REAL_KALSHI_KEY_ID,
                                             "private_key_pem": fx.REAL_KALSHI_PRIVATE_KEY_PEM}),
             "polymarket": credential("polymarket", {"api_key": fx.REAL_POLY_API_KEY, "api_secret": fx.REAL_POLY_API_SECRET,
                                                     "passphrase": fx.REAL_POLY_PASSPHRASE, "address": fx.REAL_POLY_ADDRESS})}

    def key(venues=("openai", "echo", "plain", "kalshi", "polymarket", "silent"), access="trade", budget=None):
        body = {"name": "k", "credential_ids": [creds[v] for v in venues], "access": access}
        if budget is not None:
            body["daily_budget_usd"] = budget
        r = requests.post(api + "/agent-keys", headers=auth, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def audit(request_id):
        r = requests.get(api + "/audit", params={"request": request_id}, headers=auth)
        return [(e["action"], e["outcome"], json.loads(e["detail"])) for e in r.json()["entries"]]

    ws_url = server.url.replace("http://", "ws://")
    yield {"server": server, "upstreams": upstreams, "key": key, "api": api, "auth": auth, "ws": ws_url, "audit": audit}
    for fake in upstreams.values():
        fake.stop()


def echo_socket(world, agent, **kwargs):
    return connect(world["ws"] + "/proxy/echo/socket", additional_headers={"X-Api-Token": f"token {agent}"},
                   open_timeout=5, **kwargs)


def handshake_status(url, headers, open_timeout=5, **kwargs):
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers=headers, open_timeout=open_timeout, **kwargs)
    response = refused.value.response
    return response.status_code, response.body.decode(errors="replace")


def test_a_service_stream_is_relayed_both_ways_with_the_real_token_and_audited(world):
    agent = world["key"]()["key"]
    fake = world["upstreams"]["echo"]
    with echo_socket(world, agent) as ws:
        request_id = ws.response.headers["X-Warden-Request-Id"]
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\x01binary")
        assert ws.recv(timeout=5) == b"\x00\x01binary"
        big = "x" * 60000
        ws.send(big)
        assert ws.recv(timeout=5) == big
    # The venue saw the real token, never the agent key; the agent key never left Warden.
    shake = fake.state["handshakes"][-1]
    assert shake["headers"]["X-Api-Token"] == f"token {fakes.REAL_SERVICE_TOKEN}"
    assert agent not in json.dumps(fake.state["handshakes"])
    assert fake.state["received"] == ["hello", b"\x00\x01binary", big]
    deadline = time.time() + 5
    while time.time() < deadline:
        rows = world["audit"](request_id)
        if any(action == "gateway.stream_close" for action, _, _ in rows):
            break
        time.sleep(0.1)
    assert sorted(action for action, _, _ in rows) == ["gateway.stream_close", "gateway.stream_open"], rows
    closing = next(detail for action, _, detail in rows if action == "gateway.stream_close")
    assert closing["agent_messages"] == "3" and closing["venue_messages"] == "3", closing
    assert int(closing["agent_bytes"]) == 5 + 8 + 60000 and closing["reason"] == "the agent closed the stream"


def test_stream_handshakes_are_refused_as_calls_are(world):
    agent = world["key"]()["key"]
    url = world["ws"] + "/proxy/echo/socket"
    assert handshake_status(url, {})[0] == 401  # no key
    assert handshake_status(url, {"X-Api-Token": "token wdn_not_a_key"})[0] == 401
    status, body = handshake_status(url, {"X-Api-Token": f"token {agent}", "Origin": "https://evil.example"})
    assert status == 403 and "Origin" in body
    # A service without `websocket = true`, a venue without streams, a venue's path without one: no stream.
    assert handshake_status(world["ws"] + "/proxy/plain/socket", {"X-Api-Token": f"token {agent}"})[0] == 404
    assert handshake_status(world["ws"] + "/proxy/openai/v1/chat/completions", {"Authorization": f"Bearer {agent}"})[0] == 404
    # A read-only key cannot open a service's stream? It can: the handshake is a GET, a read. A key not bound: 403.
    other = world["key"](venues=("openai",))["key"]
    assert handshake_status(url, {"X-Api-Token": f"token {other}"})[0] == 403
    # The venue refusing the real handshake is the agent's refusal too (502), never a half-open socket.
    world["upstreams"]["echo"]._check = lambda request: '{"error":"down"}'
    assert handshake_status(url, {"X-Api-Token": f"token {agent}"})[0] == 502


def test_a_venue_that_never_answers_the_handshake_is_a_504_in_upstream_timeout_seconds(world):
    agent = world["key"]()["key"]
    for _ in range(4):  # more than stream_max_per_key (3): each attempt gave its place back
        started = time.monotonic()
        status, body = handshake_status(world["ws"] + "/proxy/silent/socket", {"Authorization": f"Bearer {agent}"},
                                        open_timeout=10)
        assert status == 504 and "did not answer" in body, body
        assert 1.5 < time.monotonic() - started < 5, "upstream_timeout_seconds = 2"
    with echo_socket(world, agent) as ws:
        ws.send("still open")
        assert ws.recv(timeout=5) == "still open"


def test_revoking_a_key_closes_its_open_stream_within_a_second(world):
    made = world["key"]()
    with echo_socket(world, made["key"]) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        started = time.monotonic()
        assert requests.delete(world["api"] + f"/agent-keys/{made['id']}", headers=world["auth"]).status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
        took = time.monotonic() - started
    assert took < 1.0, took
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008, closed.value


def test_the_kill_switch_closes_every_open_stream_of_the_owner_within_a_second(world):
    agent = world["key"]()["key"]
    kalshi = connect(world["ws"] + "/proxy/kalshi/trade-api/ws/v2", additional_headers=kalshi_headers(agent), open_timeout=5)
    sockets = [echo_socket(world, agent), kalshi]
    try:
        started = time.monotonic()
        frozen = requests.post(world["api"] + "/freeze", headers=world["auth"], json={"reason": "streams test"})
        assert frozen.status_code == 201, frozen.text
        for ws in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=5)
            assert closed.value.rcvd.code == 1008 and "kill switch" in closed.value.rcvd.reason, closed.value
        assert time.monotonic() - started < 1.0
        # Frozen, the key cannot open another.
        assert handshake_status(world["ws"] + "/proxy/echo/socket", {"X-Api-Token": f"token {agent}"})[0] == 403
    finally:
        for ws in sockets:
            ws.close()
        requests.post(world["api"] + "/unfreeze", headers=world["auth"], json={})


def test_an_idle_agent_is_closed_and_an_oversized_message_closes_with_1009(world):
    agent = world["key"]()["key"]
    with echo_socket(world, agent) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert 2.5 < time.monotonic() - started < 5, "stream_idle_seconds = 3"
        assert closed.value.rcvd.code == 1001
    with echo_socket(world, agent, max_size=None) as ws:
        ws.send("y" * 70000)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1009
    assert "y" * 70000 not in world["upstreams"]["echo"].state["received"]


def realtime_client(world, agent):
    return openai.OpenAI(api_key=agent, base_url=world["server"].url + "/proxy/openai/v1")


def next_event(connection, *types):
    for event in connection:
        if event.type in types:
            return event
    raise AssertionError(f"the stream ended before {types}")


def test_openai_realtime_responses_are_reserved_and_charged_to_the_budget(world):
    # 100 output tokens at 1000 USD per million: 0.1 USD per response. The stream holds a deposit of one response
    # for as long as it is open (a response the venue might start by itself), so 0.35 USD runs two: a third would
    # need 0.2 spent + 0.1 held + 0.1.
    agent = world["key"](budget=0.35)["key"]
    fake = world["upstreams"]["openai"]
    client = realtime_client(world, agent)
    with client.realtime.connect(model=MODEL) as connection:
        next_event(connection, "session.created")
        connection.session.update(session={"type": "realtime", "instructions": "be brief"})
        next_event(connection, "session.updated")
        for _ in range(2):
            connection.response.create()
            done = next_event(connection, "response.done")
            assert done.response.usage.output_tokens == 100
        connection.response.create(event_id="third")
        error = next_event(connection, "error")
        assert "refused by Warden" in error.error.message and "daily budget" in error.error.message, error
        assert error.error.event_id == "third"
        # The socket stays open: an event still goes through.
        connection.session.update(session={"type": "realtime", "instructions": "still here"})
        next_event(connection, "session.updated")
    creates = [e for e in fake.state["received"] if e["type"] == "response.create"]
    assert len(creates) == 2, "the refused response never reached the venue"
    assert all(e["response"]["max_output_tokens"] == 100 for e in creates), "Warden writes the ceiling it reserved"
    shake = fake.state["handshakes"][-1]
    assert shake["headers"]["Authorization"] == f"Bearer {fakes.REAL_OPENAI_KEY}" and agent not in json.dumps(shake)
    deadline = time.time() + 5
    while True:  # the stream's close (and its deposit's return) follows the agent's close
        usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "openai"][0]
        if usage.get("reserved_usd", 0) == 0 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert usage["spent_usd"] == pytest.approx(0.2), usage
    assert usage.get("reserved_usd", 0) == pytest.approx(0), "the closed stream gave its deposit back"
    # Each open stream holds its deposit: with 0.1 spent of 0.2, one more stream fits and the next is refused at
    # its handshake; closed, a stream gives its deposit back.
    spent = world["key"](budget=0.2)["key"]
    with realtime_client(world, spent).realtime.connect(model=MODEL) as connection:
        connection.response.create()
        next_event(connection, "response.done")
    url, headers = world["ws"] + f"/proxy/openai/v1/realtime?model={MODEL}", {"Authorization": f"Bearer {spent}"}
    with connect(url, additional_headers=headers, open_timeout=5):
        status, body = handshake_status(url, headers)
        assert status == 429 and "daily budget" in body, body
    time.sleep(0.3)
    with connect(url, additional_headers=headers, open_timeout=5) as again:
        assert json.loads(again.recv(timeout=5))["type"] == "session.created"


def test_realtime_events_are_read_as_the_venue_reads_them(world):
    """An escaped type is still a response.create (reserved, its ceiling written); a type named twice is refused."""
    agent = world["key"](budget=5)["key"]
    fake = world["upstreams"]["openai"]
    headers = {"Authorization": f"Bearer {agent}"}
    with connect(world["ws"] + f"/proxy/openai/v1/realtime?model={MODEL}", additional_headers=headers, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        ws.send('{"type":"response\\u002ecreate","response":{"max_output_tokens":"inf"}}')
        events = [json.loads(ws.recv(timeout=5))]
        while events[-1]["type"] != "response.done":
            events.append(json.loads(ws.recv(timeout=5)))
        assert events[-1]["response"]["usage"]["output_tokens"] == 100, events
        for sneaky in ('{"type":"session.update","type":"response.create"}', '{"type":"response.create","type":"session.update"}',
                       '{"type":"response.create","response":{"temperature":1e400}}', '{"type":"response.create","x":NaN}',
                       '{"type":"response.create","x":"\\ud800"}', '[' * 600 + ']' * 600,
                       '{"type":"response.create","response":{"max_output_tokens":-5}}',
                       '{"type":"response.create","response":{"max_output_tokens":true}}', "[]", "nope"):
            ws.send(sneaky)
            answer = json.loads(ws.recv(timeout=5))
            assert answer["type"] == "error" and "refused by Warden" in answer["error"]["message"], (sneaky, answer)
    creates = [e for e in fake.state["received"] if e["type"] == "response.create"]
    assert [e["response"]["max_output_tokens"] for e in creates] == [100], fake.state["received"]
    assert [e["event_id"] for e in fake.state["received"] if e["type"] == "session.update"] == [
        "wdn_no_auto_response_beta", "wdn_no_auto_response"], "only Warden's own updates"


def test_on_a_budgeted_key_the_venue_is_told_not_to_start_responses_by_itself(world):
    agent = world["key"](budget=5)["key"]
    fake = world["upstreams"]["openai"]
    headers = {"Authorization": f"Bearer {agent}"}
    with connect(world["ws"] + f"/proxy/openai/v1/realtime?model={MODEL}", additional_headers=headers, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        # The agent turns automatic responses back on: Warden writes them off again.
        ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "create_response": True}}}}}))
        ws.send('{"type":"input_audio_buffer.commit"}')
        seen = []
        while not any(e["type"] == "input_audio_buffer.committed" for e in seen):
            seen.append(json.loads(ws.recv(timeout=5)))
    assert not any(e["type"].startswith("response.") for e in seen), seen
    updates = [e for e in fake.state["received"] if e["type"] == "session.update"]
    assert [u.get("event_id") for u in updates[:2]] == ["wdn_no_auto_response_beta", "wdn_no_auto_response"], updates
    assert updates[2]["session"]["audio"]["input"]["turn_detection"]["create_response"] is False


def test_a_response_the_venue_starts_by_itself_is_cancelled_charged_and_closes_the_stream_on_a_budgeted_key(world):
    agent = world["key"](budget=5)["key"]
    fake = world["upstreams"]["openai"]
    fake.state["ignore_turn_settings"] = True  # a venue that starts responses whatever it was told
    headers = {"Authorization": f"Bearer {agent}"}
    with connect(world["ws"] + f"/proxy/openai/v1/realtime?model={MODEL}", additional_headers=headers, open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        ws.send('{"type":"input_audio_buffer.commit"}')
        seen = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                seen.append(json.loads(ws.recv(timeout=5)))
        assert closed.value.rcvd.code == 1008, closed.value
    errors = [e for e in seen if e["type"] == "error"]
    assert len(errors) == 1 and "turn detection" in errors[0]["error"]["message"], seen
    cancels = [e for e in fake.state["received"] if e["type"] == "response.cancel"]
    assert len(cancels) == 1 and cancels[0]["response_id"].startswith("resp_"), fake.state["received"]
    # Unreserved, yet charged: the fake billed 50 output tokens at 1000 USD per million.
    usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "openai"]
    deadline = time.time() + 5
    while time.time() < deadline and not usage:
        time.sleep(0.2)
        usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "openai"]
    assert usage and usage[0]["spent_usd"] == pytest.approx(0.05), usage


def test_openai_realtime_with_an_unpriced_model_is_refused_for_a_budgeted_key(world):
    agent = world["key"](budget=5)["key"]
    with pytest.raises(Exception) as refused:
        with realtime_client(world, agent).realtime.connect(model="unpriced-model") as connection:
            next_event(connection, "session.created")
    assert "403" in str(refused.value), refused.value
    # Without a budget the model need not be priced; the session is relayed.
    free = world["key"]()["key"]
    with realtime_client(world, free).realtime.connect(model="unpriced-model") as connection:
        assert next_event(connection, "session.created").session.id == "sess_1"


def kalshi_headers(agent):
    """What Kalshi's documented client sends: its key id and a signature made with its own (here throwaway) key."""
    return {"KALSHI-ACCESS-KEY": agent, "KALSHI-ACCESS-TIMESTAMP": str(int(time.time() * 1000)),
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(os.urandom(256)).decode()}


def test_kalshi_stream_handshake_is_signed_with_the_real_key_and_only_subscriptions_pass(world):
    agent = world["key"](access="read")["key"]
    fake = world["upstreams"]["kalshi"]
    with connect(world["ws"] + "/proxy/kalshi/trade-api/ws/v2", additional_headers=kalshi_headers(agent), open_timeout=5) as ws:
        ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["fill"]}}))
        assert json.loads(ws.recv(timeout=5)) == {"id": 1, "type": "subscribed", "msg": {"channel": "fill", "sid": 1}}
        assert json.loads(ws.recv(timeout=5))["type"] == "fill"
        for command in ({"id": 2, "cmd": "create_order", "params": {"ticker": "X", "count": 1000}},
                        {"id": 3, "cmd": "SUBSCRIBE", "params": {}}, {"id": 4}, "not json", [1, 2]):
            ws.send(command if isinstance(command, str) else json.dumps(command))
            answer = json.loads(ws.recv(timeout=5))
            assert answer["type"] == "error" and "refused by Warden" in answer["msg"]["msg"], answer
            if isinstance(command, dict) and "id" in command:
                assert answer["id"] == command["id"]
    assert [c["cmd"] for c in fake.state["received"]] == ["subscribe"], fake.state["received"]
    shake = fake.state["handshakes"][-1]["headers"]
    assert shake["KALSHI-ACCESS-KEY"] == fx.REAL_KALSHI_KEY_ID and agent not in json.dumps(shake)


def test_binance_market_streams_pass_without_a_key(world):
    with connect(world["ws"] + "/proxy/binance/ws/btcusdt@trade", open_timeout=5) as ws:
        events = [json.loads(ws.recv(timeout=5)) for _ in range(3)]
    assert [e["t"] for e in events] == [0, 1, 2] and events[0]["s"] == "BTCUSDT"
    # A path Binance serves no stream at is refused before anything is opened.
    assert handshake_status(world["ws"] + "/proxy/binance/api/v3/order", {})[0] == 404


def test_a_key_family_holds_at_most_stream_max_per_key_streams(world):
    made = world["key"]()
    child = requests.post(world["api"] + "/agent-keys/child", headers={"X-Warden-Key": made["key"]}, json={"ttl_seconds": 600})
    assert child.status_code == 201, child.text
    sockets = [echo_socket(world, made["key"]) for _ in range(2)]
    try:
        sockets.append(echo_socket(world, child.json()["key"]))  # a key minted from it counts with it
        status, body = handshake_status(world["ws"] + "/proxy/echo/socket", {"X-Api-Token": f"token {made['key']}"})
        assert status == 429 and "stream_max_per_key" in body, body
        sockets.pop().close()
        time.sleep(0.3)
        sockets.append(echo_socket(world, made["key"]))  # a place freed is taken again
    finally:
        for ws in sockets:
            ws.close()


def test_an_unmasked_client_frame_closes_the_stream_with_1002(world):
    agent = world["key"]()["key"]
    with raw_stream(world, agent) as raw:
        raw.sendall(b"\x81\x05hello")  # a text frame without a mask
        answer = b""
        while len(answer) < 4:
            chunk = raw.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer[:2] == b"\x88\x02" and answer[2:4] == (1002).to_bytes(2, "big"), answer
    assert "hello" not in world["upstreams"]["echo"].state["received"]


def test_polymarket_user_channel_gets_the_real_credentials_in_its_subscription(world):
    agent = world["key"](access="read")["key"]
    fake = world["upstreams"]["polymarket"]
    market = "0x" + "ab" * 32
    throwaway = {"apiKey": agent, "secret": "agent-throwaway-secret", "passphrase": "agent-throwaway-passphrase"}
    with connect(world["ws"] + "/proxy/polymarket/ws/user", open_timeout=5) as ws:
        # Nothing passes before a subscription names the key.
        ws.send(json.dumps({"type": "user", "markets": [market]}))
        assert "auth.apiKey" in json.loads(ws.recv(timeout=5))["error"]
        ws.send(json.dumps({"auth": throwaway, "type": "user", "markets": [market]}))
        assert json.loads(ws.recv(timeout=5)) == [{"event_type": "order", "market": market, "type": "PLACEMENT"}]
        ws.send("PING")
        assert ws.recv(timeout=5) == "PONG"
        for sneaky in ('{"auth":{"apiKey":"x"},"auth":{"apiKey":"y"}}', '{"auth":"' + agent + '"}', '[{"auth":{}}]'):
            ws.send(sneaky)
            assert "refused by Warden" in json.loads(ws.recv(timeout=5))["error"], sneaky
    sent = [json.loads(m) for m in fake.state["received"] if m.startswith("{")]
    assert len(sent) == 1 and sent[0]["auth"] == {"apiKey": fx.REAL_POLY_API_KEY, "secret": fx.REAL_POLY_API_SECRET,
                                                  "passphrase": fx.REAL_POLY_PASSPHRASE}, sent
    assert agent not in json.dumps(fake.state["received"]) and "agent-throwaway" not in json.dumps(fake.state["received"])
    # A key that is not bound to a Polymarket credential is refused, and nothing reaches the venue.
    other = world["key"](venues=("echo",))["key"]
    with connect(world["ws"] + "/proxy/polymarket/ws/user", open_timeout=5) as ws:
        ws.send(json.dumps({"auth": {**throwaway, "apiKey": other}, "type": "user", "markets": [market]}))
        assert "not bound to a polymarket credential" in json.loads(ws.recv(timeout=5))["error"]
    assert len([m for m in fake.state["received"] if m.startswith("{")]) == 1
    # The market channel is public: no key, relayed as it is.
    with connect(world["ws"] + "/proxy/polymarket/ws/market", open_timeout=5) as ws:
        ws.send(json.dumps({"assets_ids": ["123"], "type": "market"}))
        assert json.loads(ws.recv(timeout=5))[0]["event_type"] == "book"


def masked(opcode, payload):
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def raw_stream(world, agent):
    port = int(world["server"].url.rsplit(":", 1)[1])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall((f"GET /proxy/echo/socket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 f"X-Api-Token: token {agent}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


def test_a_text_message_that_is_not_utf8_closes_the_stream_with_1007(world):
    agent = world["key"]()["key"]
    with raw_stream(world, agent) as raw:
        raw.sendall(masked(0x1, b"\xff\xfe bad utf8"))
        answer = raw.recv(4096)
    assert answer[:2] == b"\x88\x02" and answer[2:4] == (1007).to_bytes(2, "big"), answer
    assert not world["upstreams"]["echo"].state["received"]


def test_a_stream_that_names_its_key_late_counts_among_its_familys(world):
    """A Polymarket user stream opens without a key; when its subscription names one, it counts among that key's
    streams, and a family that already holds stream_max_per_key is refused there."""
    agent = world["key"]()["key"]
    sockets = [echo_socket(world, agent) for _ in range(3)]
    try:
        with connect(world["ws"] + "/proxy/polymarket/ws/user", open_timeout=5) as ws:
            ws.send(json.dumps({"auth": {"apiKey": agent, "secret": "s", "passphrase": "p"}, "type": "user", "markets": ["m"]}))
            assert "stream_max_per_key" in json.loads(ws.recv(timeout=5))["error"]
        sockets.pop().close()
        time.sleep(0.3)
        with connect(world["ws"] + "/proxy/polymarket/ws/user", open_timeout=5) as ws:
            ws.send(json.dumps({"auth": {"apiKey": agent, "secret": "s", "passphrase": "p"}, "type": "user", "markets": ["m"]}))
            assert json.loads(ws.recv(timeout=5))[0]["event_type"] == "order"
            # Now the family is full again: an echo stream of the same key is refused at its handshake.
            assert handshake_status(world["ws"] + "/proxy/echo/socket", {"X-Api-Token": f"token {agent}"})[0] == 429
    finally:
        for ws in sockets:
            ws.close()
