"""The gateway driven by the official openai and anthropic SDKs, and raw HTTP for a TOML service, against
local fakes that accept only the real credentials."""
import concurrent.futures
import http.client
import json
import socket
import threading
import time

import anthropic
import openai
import pytest
import requests

import fakes
from conftest import free_port, warden

MODEL = "gpt-test"
CLAUDE = "claude-test"


@pytest.fixture
def world(start, tmp_path, master_key):
    upstreams = {"openai": fakes.Fake(fakes.openai_handler()), "anthropic": fakes.Fake(fakes.anthropic_handler()),
                 "service": fakes.Fake(fakes.service_handler)}
    early = EarlyAnswer()
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[venues.openai]
base_url = "{upstreams['openai'].url}"

[venues.anthropic]
base_url = "{upstreams['anthropic'].url}"

[services.fake]
base_url = "{upstreams['service'].url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "
blocked_endpoints = ["DELETE /repos/*", "POST /admin/**", "PUT /repos/*/settings"]
rate_limit = 20
rate_limit_window_seconds = 3600

[services.early]
base_url = "http://127.0.0.1:{early.port}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[services.down]
base_url = "http://127.0.0.1:{free_port()}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[gateway]
upstream_timeout_seconds = 2

[prices.openai]
"{MODEL}" = {{ input = 0, output = 1000 }}

[prices.anthropic]
"{CLAUDE}" = {{ input = 3, output = 15 }}

[call_prices.openai]
"POST /v1/audio/speech" = 0.03
""")
    data = tmp_path / "data"
    env = {"WARDEN_MASTER_KEY": master_key}
    assert warden("user", "create", "agent-owner@example.com", "owner-password-1", "--no-reset",
                  "--data-dir", str(data), "--config", str(config), env=env).returncode == 0
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "agent-owner@example.com", "password": "owner-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}

    def credential(venue, secret):
        r = requests.post(api + "/credentials", headers=auth, json={"venue": venue, "label": venue, "secret": secret})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    creds = {"openai": credential("openai", {"api_key": fakes.REAL_OPENAI_KEY}),
             "anthropic": credential("anthropic", {"api_key": fakes.REAL_ANTHROPIC_KEY}),
             "fake": credential("fake", {"token": fakes.REAL_SERVICE_TOKEN}),
             "early": credential("early", {"token": fakes.REAL_SERVICE_TOKEN}),
             "down": credential("down", {"token": fakes.REAL_SERVICE_TOKEN})}

    def key(venues=("openai", "anthropic", "fake", "down"), access="trade", budget=None):
        body = {"name": "k", "credential_ids": [creds[v] for v in venues], "access": access}
        if budget is not None:
            body["daily_budget_usd"] = budget
        r = requests.post(api + "/agent-keys", headers=auth, json=body)
        assert r.status_code == 201, r.text
        return r.json()

    yield {"server": server, "upstreams": upstreams, "key": key, "api": api, "auth": auth, "data": data, "env": env,
           "config": config}
    early.stop()
    for fake in upstreams.values():
        fake.stop()


class EarlyAnswer:
    """An upstream that answers as soon as it has the request head, before reading the body."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                             b"Connection: close\r\n\r\n{\"early\":1}")
                # Only now read the body (closing on unread bytes would reset the connection).
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                left = length - len(head.split(b"\r\n\r\n", 1)[1])
                conn.settimeout(5)
                while left > 0:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    left -= len(chunk)

    def stop(self):
        self.running = False
        self.sock.close()


def test_an_upstream_answering_before_reading_the_body_is_harmless(world):
    agent = world["key"](venues=("early", "fake"))["key"]
    body = b"x" * (512 * 1024)
    for _ in range(5):
        try:
            status, answer = raw(world, "POST", "/proxy/early/upload", agent, body=body)
            assert status in (200, 502), (status, answer)
        except (http.client.HTTPException, OSError):
            pass  # a cut answer is the upstream's doing; what matters is that Warden stays up
    # The server is still up and forwards whole bodies to an upstream that reads them.
    assert requests.get(world["server"].url + "/healthz").status_code == 200
    assert raw(world, "POST", "/proxy/fake/repos/acme/issues", agent, body=body)[0] == 200
    assert len(world["upstreams"]["service"].requests[-1]["body"]) == len(body)


def openai_client(world, key):
    return openai.OpenAI(base_url=world["server"].url + "/proxy/openai/v1", api_key=key, max_retries=0)


def test_openai_chat_and_stream_with_the_sdk(world):
    agent = world["key"]()["key"]
    client = openai_client(world, agent)
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=5)
    assert reply.choices[0].message.content == "Hello from the fake model"

    arrivals, text = [], ""
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=7, stream=True)
    for chunk in stream:
        arrivals.append(time.monotonic())
        assert chunk.usage is None, "the usage chunk Warden asked for reached a client that did not ask for it"
        text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "Hello from the fake model"
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # The upstream sends a chunk every 0.2 s. A gateway that buffered the stream would deliver them
    # together; one pair may still arrive together when a busy machine stalls the client for a moment.
    assert len(arrivals) == 5 and sorted(gaps)[1] > 0.1, f"chunks were buffered: gaps {gaps}"
    print(f"stream chunk gaps (s): {[round(g, 3) for g in gaps]}")

    # A client that asks for usage still gets it.
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].usage.completion_tokens == 3

    seen = world["upstreams"]["openai"].requests
    assert all(r["headers"]["authorization"] == f"Bearer {fakes.REAL_OPENAI_KEY}" for r in seen)
    assert not any(agent in json.dumps({k: v for k, v in r.items() if k != "body"}) + r["body"].decode() for r in seen)
    usage = requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"]
    openai_usage = [u for u in usage if u["venue"] == "openai"][0]
    assert openai_usage["requests"] == 3
    assert openai_usage["output_tokens"] == 5 + 7 + 3
    assert openai_usage["spent_usd"] == pytest.approx((5 + 7 + 3) * 1000 / 1e6), "streamed calls must be priced"
    assert openai_usage["reserved_usd"] == pytest.approx(0)


def test_anthropic_messages_and_stream_with_the_sdk(world):
    agent = world["key"]()["key"]
    client = anthropic.Anthropic(base_url=world["server"].url + "/proxy/anthropic", api_key=agent, max_retries=0)
    message = client.messages.create(model=CLAUDE, max_tokens=9, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hi there friend"
    arrivals, text = [], ""
    with client.messages.stream(model=CLAUDE, max_tokens=11, messages=[{"role": "user", "content": "hi"}]) as stream:
        for piece in stream.text_stream:
            arrivals.append(time.monotonic())
            text += piece
    assert text == "Hi there friend"
    assert arrivals[-1] - arrivals[0] > 0.3, "stream was buffered"
    seen = world["upstreams"]["anthropic"].requests
    assert all(r["headers"]["x-api-key"] == fakes.REAL_ANTHROPIC_KEY and "authorization" not in r["headers"] for r in seen)
    usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "anthropic"][0]
    assert usage["input_tokens"] == 24 and usage["output_tokens"] == 20
    assert usage["spent_usd"] == pytest.approx((24 * 3 + 20 * 15) / 1e6)


def test_anthropic_bearer_auth_is_accepted_too(world):
    agent = world["key"]()["key"]
    r = requests.post(world["server"].url + "/proxy/anthropic/v1/messages",
                      headers={"Authorization": f"Bearer {agent}", "anthropic-version": "2023-06-01"},
                      json={"model": CLAUDE, "max_tokens": 4, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 200, r.text


def test_budget_holds_under_concurrency(world):
    # Each call costs exactly its reservation: max_tokens 10 at 1000 USD per million = 0.01 USD.
    agent = world["key"](budget=0.1)["key"]
    client = openai_client(world, agent)

    def call(_):
        try:
            client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=10)
            return "ok"
        except openai.RateLimitError:
            return "limited"

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(call, range(50)))
    assert results.count("ok") == 10 and results.count("limited") == 40
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=10)
    assert "budget" in str(caught.value)
    usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "openai"][0]
    assert usage["spent_usd"] == pytest.approx(0.1) and usage["spent_usd"] <= 0.1 + 1e-9
    # Streamed calls count against it too, and an unpriced model is refused for a budgeted key.
    with pytest.raises(openai.PermissionDeniedError):
        openai_client(world, world["key"](budget=1)["key"]).chat.completions.create(
            model="unpriced-model", messages=[{"role": "user", "content": "x"}], max_tokens=1)


def test_an_llm_budget_cannot_be_credited_or_outrun(world):
    """Odd ceilings, generation multipliers, unanswered calls and unbounded endpoints: the budget holds and
    what the key spent never goes below zero. MODEL costs 1000 USD per million output tokens (0.001 a token)."""
    agent = world["key"](budget=0.1)["key"]
    url = world["server"].url + "/proxy/openai/v1"
    h = {"Authorization": f"Bearer {agent}", "Content-Type": "application/json"}
    fake = world["upstreams"]["openai"]
    before = len(fake.requests)

    def post(path, body):
        return requests.post(url + path, headers=h, data=body if isinstance(body, (bytes, str)) else json.dumps(body), timeout=20)

    message = [{"role": "user", "content": "x"}]
    for field in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        for value in ("-1e12", "-1", "0", "1.5", '"9"', "1e300", "123456789012", "true"):
            r = post("/chat/completions", f'{{"model":"{MODEL}","messages":[],"{field}":{value}}}')
            assert r.status_code == 400 and field in r.json()["error"]["message"], (field, value, r.text)
    for value in ("0", "-2", "2.5", "1000"):
        assert post("/chat/completions", f'{{"model":"{MODEL}","messages":[],"max_tokens":1,"n":{value}}}').status_code == 400
    # `n` multiplies the reservation: 30 × 10 tokens is 0.30 USD, past the 0.10 budget; 5 × 10 fits.
    r = post("/chat/completions", {"model": MODEL, "messages": message, "max_tokens": 10, "n": 30})
    assert r.status_code == 429 and "budget" in r.json()["error"]["message"]
    assert post("/chat/completions", {"model": MODEL, "messages": message, "max_tokens": 10, "n": 5}).status_code == 200
    # Calls billed otherwise than by tokens cannot be bounded before they are sent: refused for a budgeted key.
    for path, body in [("/batches", {"input_file_id": "f", "endpoint": "/v1/chat/completions"}),
                       ("/images/generations", {"model": "dall-e-3", "prompt": "x"}),
                       ("/responses", {"model": MODEL, "input": "x", "background": True}),
                       ("/responses", {"model": MODEL, "input": "x", "previous_response_id": "resp_1"}),
                       ("/chat/completions", {"model": MODEL, "max_tokens": 1, "messages": [
                           {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})]:
        r = post(path, body)
        assert r.status_code == 403, (path, r.text)
    # A body on a read is something a venue could act on: not free for a budgeted key.
    r = requests.get(url + "/chat/completions", headers=h, data=json.dumps({"model": MODEL, "messages": message, "n": 10}))
    assert r.status_code == 403, r.text
    assert len(fake.requests) == before + 1  # only the n = 5 call reached the venue
    # Unless the operator prices such a call: [call_prices.openai] charges text-to-speech 0.03 a call, whole.
    assert post("/audio/speech", {"model": "tts-1", "input": "x", "voice": "alloy"}).status_code == 200
    # A call the venue never answered (timeout) keeps its reservation as spent: 0.01 more.
    r = post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hang-please"}], "max_tokens": 10})
    assert r.status_code == 504
    usage = [u for u in requests.get(world["api"] + "/usage", headers=world["auth"]).json()["llm"] if u["venue"] == "openai"]
    spent = sum(u["spent_usd"] for u in usage)
    assert spent == pytest.approx(0.05) and all(u["spent_usd"] >= 0 and u["reserved_usd"] >= 0 for u in usage), usage
    # With no ceiling, Warden sets default_max_output_tokens (4096 tokens: 4.096 USD) so the venue cannot pass it.
    r = post("/chat/completions", {"model": MODEL, "messages": message})
    assert r.status_code == 429
    roomy = world["key"](budget=10)["key"]
    r = requests.post(url + "/chat/completions", headers={"Authorization": f"Bearer {roomy}"}, json={"model": MODEL, "messages": message})
    assert r.status_code == 200
    assert json.loads(fake.requests[-1]["body"])["max_completion_tokens"] == 4096
    # A ceiling in a field chat completions does not read bounds nothing, and fields Warden does not price
    # (Anthropic's fast mode, regional inference) may change the bill: a budgeted key may not send them.
    for extra in ({"max_output_tokens": 1}, {"speed": "fast"}, {"inference_geo": "us"}):
        r = requests.post(url + "/chat/completions", headers={"Authorization": f"Bearer {roomy}"},
                          json={"model": MODEL, "messages": message, "max_tokens": 1, **extra})
        assert r.status_code == 403 and list(extra)[0] in r.json()["error"]["message"], r.text


def raw(world, method, path, key, headers=None, host=None, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", world["server"].port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", host or f"127.0.0.1:{world['server'].port}")
    conn.putheader("X-Api-Token", f"token {key}")
    for k, v in (headers or {}).items():
        conn.putheader(k, v)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body or None)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_rest_service_forwarding_and_blocked_endpoint_encodings(world):
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    assert raw(world, "GET", "/proxy/fake/repos/acme/widget", agent)[0] == 200
    assert fake.requests[-1]["headers"]["x-api-token"] == f"token {fakes.REAL_SERVICE_TOKEN}"
    assert raw(world, "DELETE", "/proxy/fake/repos/acme/widget", agent)[0] == 200  # two segments: not blocked
    assert raw(world, "HEAD", "/proxy/fake/repos/acme/widget", agent) == (200, b"")
    assert fake.requests[-1]["method"] == "HEAD"
    assert raw(world, "GET", "/proxy/fake/repos/acme/widget", agent)[0] == 200  # the gateway still answers after a HEAD
    before = len(fake.requests)
    blocked = [
        ("DELETE", "/proxy/fake/repos/acme"), ("DELETE", "/proxy/fake/REPOS/acme"), ("DELETE", "/proxy/fake/Repos/Acme"),
        ("DELETE", "/proxy/fake/repos/acme/"), ("DELETE", "/proxy/fake//repos/acme"), ("DELETE", "/proxy/fake/repos//acme"),
        ("DELETE", "/proxy/fake/%72epos/acme"), ("DELETE", "/proxy/fake/repos/%61cme"), ("DELETE", "/proxy/fake/%52%45%50%4F%53/acme"),
        ("DELETE", "/proxy/fake/repos/acme/../acme"), ("DELETE", "/proxy/fake/repos/./acme"), ("DELETE", "/proxy/fake/x/../repos/acme"),
        ("DELETE", "/proxy/fake/repos/acme/%2e%2e/acme"), ("DELETE", "/proxy/fake/repos%2facme"), ("DELETE", "/proxy/fake/repos%2Facme"),
        ("DELETE", "/proxy/fake/repos\\acme"), ("DELETE", "/proxy/fake/repos/acme%00"), ("DELETE", "/proxy/fake/repos/acme?x=1"),
        ("POST", "/proxy/fake/admin/users/1/delete"), ("POST", "/proxy/fake/ADMIN/x"), ("POST", "/proxy/fake/admin"),
        ("PUT", "/proxy/fake/repos/acme/settings"), ("PUT", "/proxy/fake/repos/acme/settings/"), ("delete", "/proxy/fake/repos/acme"),
        ("PUT", "/proxy/fake/repos/acme/settings.json"), ("PUT", "/proxy/fake/repos/acme/Settings.xml"),
    ]
    for method, path in blocked:
        status, body = raw(world, method, path, agent)
        assert status in (400, 403), f"{method} {path} -> {status} {body[:200]}"
    overrides = [{"X-HTTP-Method-Override": "DELETE"}, {"X-HTTP-Method": "DELETE"}, {"X-Method-Override": "DELETE"}]
    for headers in overrides:
        assert raw(world, "POST", "/proxy/fake/repos/acme", agent, headers)[0] == 400
    assert raw(world, "POST", "/proxy/fake/repos/acme?_method=DELETE", agent)[0] == 400
    assert len(fake.requests) == before, "a blocked call reached the upstream"


def test_a_head_answer_keeps_the_upstreams_length_and_has_no_body(world):
    """A HEAD stands for the GET: its Content-Length is the upstream's, and no body follows it."""
    agent = world["key"]()["key"]
    conn = http.client.HTTPConnection("127.0.0.1", world["server"].port, timeout=10)
    conn.request("HEAD", "/proxy/fake/repos/acme/widget", headers={"Host": f"127.0.0.1:{world['server'].port}",
                                                                    "X-Api-Token": f"token {agent}"})
    response = conn.getresponse()
    expected = len(json.dumps({"method": "HEAD", "path": "/repos/acme/widget"}).encode())
    assert response.status == 200 and response.getheader("content-length") == str(expected), response.getheaders()
    assert response.read() == b""
    # The connection is still in step: the next answer is the GET's own.
    conn.request("GET", "/proxy/fake/repos/acme/widget", headers={"Host": f"127.0.0.1:{world['server'].port}",
                                                                   "X-Api-Token": f"token {agent}"})
    following = conn.getresponse()
    assert following.status == 200 and json.loads(following.read())["method"] == "GET"
    conn.close()


def test_a_read_key_reads_with_get_and_head_only(world):
    """A read is GET or HEAD (Warden's one definition): a read key's other methods, OPTIONS and any spelling of
    them included, never reach the service."""
    reader = world["key"](venues=("fake",), access="read")["key"]
    fake = world["upstreams"]["service"]
    assert raw(world, "GET", "/proxy/fake/repos/acme/widget", reader)[0] == 200
    assert raw(world, "HEAD", "/proxy/fake/repos/acme/widget", reader)[0] == 200
    before = len(fake.requests)
    for method in ["OPTIONS", "POST", "PUT", "PATCH", "DELETE", "options", "get", "Get", "TRACE", "PROPFIND"]:
        status, body = raw(world, method, "/proxy/fake/repos/acme/widget", reader)
        assert status in (400, 403, 404, 405), f"{method} -> {status} {body[:200]}"
    assert len(fake.requests) == before, [(r["method"], r["path"]) for r in fake.requests[before:]]


def test_path_parameters_and_method_overrides_never_reach_the_upstream(world):
    """Upstreams that cut `;params` or blanks off a segment, or honour a method override, would act on a
    call the policy never saw: each is refused with 400, even on paths the policy allows."""
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    before = len(fake.requests)
    paths = [
        ("POST", "/proxy/fake/admin;x/delete"), ("POST", "/proxy/fake/admin%3Bx/delete"), ("POST", "/proxy/fake/admin%3bx/delete"),
        ("DELETE", "/proxy/fake/repos;x/acme"), ("DELETE", "/proxy/fake/repos/acme;"), ("GET", "/proxy/fake/items;jsessionid=1"),
        ("DELETE", "/proxy/fake/repos%20/acme"), ("DELETE", "/proxy/fake/%20repos/acme"), ("POST", "/proxy/fake/admin%C2%A0/x"),
    ]
    for method, path in paths:
        status, body = raw(world, method, path, agent)
        assert status == 400, f"{method} {path} -> {status} {body[:200]}"
        assert b"malformed path" in body, body
    # Every venue canonicalises the same way.
    r = requests.post(world["server"].url + "/proxy/openai/v1/chat/completions;x", headers={"Authorization": f"Bearer {agent}"},
                      json={"model": MODEL, "messages": [], "max_tokens": 1})
    assert r.status_code == 400, r.text

    issues = "/proxy/fake/repos/acme/issues"  # an allowed POST: only the override can refuse it
    headers = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override", "X-Original-Method", "X-Forwarded-Method",
               "X-Original-URL", "X-Rewrite-URL", "x-http-method-override"]
    for name in headers:
        value = "/admin/x" if "url" in name.lower() else "DELETE"
        status, body = raw(world, "POST", issues, agent, {name: value})
        assert status == 400 and name.lower().encode() in body.lower(), (name, status, body)
    queries = ["_method=DELETE", "%5Fmethod=DELETE", "%5fMETHOD=DELETE", "_method[x]=DELETE", "a=1&_Method=DELETE",
               "a=1;_method=DELETE", "_method", ".method=DELETE", "+_method=DELETE"]
    for query in queries:
        status, body = raw(world, "POST", f"{issues}?{query}", agent)
        assert status == 400 and b"_method" in body, (query, status, body)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    bodies = [
        (form, b"_method=DELETE"), (form, b"title=x&%5Fmethod=DELETE"), (form, b"title=x&_METHOD=delete"),
        (form, b"_method%5B0%5D=DELETE"), (form, b"_method[0]=DELETE"), (form, b"+_method=DELETE"), ({}, b"_method=DELETE"),
        ({"Content-Type": "text/plain"}, b"title=x&_method=DELETE"),
        (multipart, b'--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n'),
        ({"Content-Type": "application/json"}, b'{"title": "t", "_method": "DELETE"}'),
        ({"Content-Type": "application/json"}, b'{"\\u005fMETHOD": "DELETE"}'),
    ]
    for extra, body in bodies:
        status, answer = raw(world, "POST", issues, agent, extra, body=body)
        assert status == 400 and b"_method" in answer, (extra, body, status, answer)
    assert len(fake.requests) == before, [(r["method"], r["path"]) for r in fake.requests[before:]]
    # Bodies that merely mention the word still go through.
    for extra, body in [(form, b"title=_method"), ({"Content-Type": "application/json"}, b'{"title": "_method", "method": "x"}')]:
        assert raw(world, "POST", issues, agent, extra, body=body)[0] == 200, body
    assert len(fake.requests) == before + 2


def test_a_malformed_chunked_body_is_400_not_413(world):
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    before = len(fake.requests)
    for path, auth in [("/proxy/fake/repos/acme/issues", f"X-Api-Token: token {agent}\r\n"), ("/api/v1/auth/login", "")]:
        with socket.create_connection(("127.0.0.1", world["server"].port), timeout=10) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{world['server'].port}\r\n{auth}"
                         "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            time.sleep(0.3)  # the route is reading the body when the bad chunk size comes
            sock.sendall(b"zz\r\n{}\r\n0\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), (path, answer[:300])
    assert len(fake.requests) == before


def test_an_unknown_venue_is_audited(world):
    agent = world["key"]()["key"]
    assert warden("user", "create", "auditor@example.com", "auditor-password-1", "--no-reset", "--admin",
                  "--data-dir", str(world["data"]), "--config", str(world["config"]), env=world["env"]).returncode == 0
    token = requests.post(world["api"] + "/auth/login",
                          json={"email": "auditor@example.com", "password": "auditor-password-1"}).json()["access_token"]
    for name in ("nosuch", "n" * 300):
        r = requests.post(world["server"].url + f"/proxy/{name}/v1/x", headers={"X-Warden-Key": agent}, data=b"{}")
        assert r.status_code == 404
        rows = requests.get(world["api"] + "/audit", params={"request": r.headers["x-warden-request-id"]},
                            headers={"Authorization": f"Bearer {token}"}).json()["entries"]
        assert [(e["action"], e["outcome"]) for e in rows] == [("gateway.refuse", "refused")], rows
        assert rows[0]["target"] == name[:64] and rows[0]["actor_id"] is None
        detail = json.loads(rows[0]["detail"])
        assert detail["status"] == "404" and detail["method"] == "POST" and detail["path"].startswith(f"/proxy/{name[:64]}")


def test_rate_limit_exact_under_200_concurrent(world):
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    before = len(fake.requests)
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda _: raw(world, "GET", "/proxy/fake/items", agent)[0], range(200)))
    assert statuses.count(200) == 20 and statuses.count(429) == 180
    assert len(fake.requests) - before == 20
    r = requests.get(world["server"].url + "/proxy/fake/items", headers={"X-Api-Token": f"token {agent}"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_identity_and_browser_refusals_never_reach_upstreams(world):
    key = world["key"](venues=("openai",), access="trade")
    agent = key["key"]
    url = world["server"].url
    fake = world["upstreams"]["openai"]
    before = len(fake.requests)
    body = {"model": MODEL, "messages": [], "max_tokens": 1}
    cases = [
        ({}, 401), ({"Authorization": "Bearer wdn_unknown"}, 401), ({"Authorization": f"Bearer {agent}x"}, 401),
        ({"Authorization": f"Bearer {agent}", "Origin": "https://evil.example"}, 403),
        ({"Authorization": f"Bearer {agent}", "Origin": "null"}, 403),
        ({"Authorization": f"Bearer {agent}", "Sec-Fetch-Site": "cross-site"}, 403),
    ]
    for headers, status in cases:
        r = requests.post(url + "/proxy/openai/v1/chat/completions", headers=headers, json=body)
        assert r.status_code == status, (headers, r.text)
        assert "error" in r.json() and "message" in r.json()["error"]
    conn = http.client.HTTPConnection("127.0.0.1", world["server"].port)
    conn.request("POST", "/proxy/openai/v1/chat/completions", body=json.dumps(body),
                 headers={"Host": "evil.example:8472", "Authorization": f"Bearer {agent}", "Content-Type": "application/json"})
    assert conn.getresponse().status == 403
    # A key without an anthropic credential: 403; a revoked key: 401; a key of a disabled user: 401.
    r = requests.post(url + "/proxy/anthropic/v1/messages", headers={"x-api-key": agent}, json={})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    assert requests.delete(world["api"] + f"/agent-keys/{key['id']}", headers=world["auth"]).status_code == 204
    assert requests.post(url + "/proxy/openai/v1/chat/completions", headers={"Authorization": f"Bearer {agent}"}, json=body).status_code == 401
    assert requests.get(url + "/proxy/nosuch/x", headers={"X-Warden-Key": agent}).status_code == 404
    assert len(fake.requests) == before
    # No CORS headers, ever.
    r = requests.options(url + "/proxy/openai/v1/models", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert not any(h.lower().startswith("access-control-") for h in r.headers)


def test_upstream_failures_and_disconnects(world, start, tmp_path):
    agent = world["key"]()["key"]
    url = world["server"].url + "/proxy/openai/v1"
    h = {"Authorization": f"Bearer {agent}"}
    # Hanging upstream: 504 within the configured 2 s.
    started = time.monotonic()
    r = requests.post(url + "/hang", headers=h, json={"model": MODEL})
    assert r.status_code == 504 and time.monotonic() - started < 10
    assert r.json()["error"]["type"] == "server_error"
    # Reset mid-stream: the client sees a broken stream; the gateway keeps serving.
    with pytest.raises(Exception):
        r = requests.post(url + "/reset", headers=h, json={"model": MODEL, "stream": True}, stream=True)
        for _ in r.iter_content(1):
            pass
        raise AssertionError("stream completed")  # the upstream reset: completion would be wrong too
    # Client disconnecting mid-stream.
    r = requests.post(url + "/chat/completions", headers=h, json={"model": MODEL, "stream": True, "max_tokens": 3,
                                                                   "messages": []}, stream=True)
    next(r.iter_content(16))
    r.close()
    # Still serving.
    client = openai_client(world, agent)
    assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=2).choices[0].message.content
    # Upstream down (nothing listens on its port): 502 in the service's problem shape.
    status, body = raw(world, "GET", "/proxy/down/anything", agent)
    assert status == 502 and json.loads(body)["code"] == "gateway_upstream"
    assert requests.get(world["server"].url + "/healthz").status_code == 200
    metrics = requests.get(world["server"].url + "/metrics").text
    assert "warden_gateway_requests_total" in metrics and "warden_audit_queue_depth" in metrics


def test_gateway_audit_and_no_secret_leaks(world):
    agent = world["key"]()["key"]
    openai_client(world, agent).chat.completions.create(model=MODEL, messages=[], max_tokens=2)
    raw(world, "DELETE", "/proxy/fake/repos/acme", agent)
    raw(world, "POST", "/proxy/fake/repos/acme/issues", agent, body=b'{"title": "t"}')
    # Read as soon as the calls returned: the audit endpoint waits for the rows queued before it.
    entries = requests.get(world["api"] + "/audit?limit=50", headers=world["auth"]).json()["entries"]
    actions = [(e["action"], e["outcome"], json.loads(e["detail"] or "{}").get("path")) for e in entries]
    # An LLM call is one row, written as it ends; a service call that may change something is also
    # recorded (durably) before it is sent.
    assert ("gateway.result", "forwarded", "/v1/chat/completions") in actions
    assert ("gateway.forward", "allowed", "/v1/chat/completions") not in actions
    assert ("gateway.forward", "allowed", "/repos/acme/issues") in actions
    assert ("gateway.result", "forwarded", "/repos/acme/issues") in actions
    assert ("gateway.refuse", "refused", "/repos/acme") in actions
    result = next(e for e in entries if e["action"] == "gateway.result" and "chat" in e["detail"])
    detail = json.loads(result["detail"])
    assert detail["status"] == "200" and float(detail["ms"]) >= 0 and detail["output_tokens"] == "2"
    server = world["server"]
    server.stop()
    verified = warden("audit", "verify", "--data-dir", str(world["data"]), env=world["env"])
    assert verified.returncode == 0, verified.stderr
    blobs = b"".join(p.read_bytes() for p in world["data"].iterdir() if p.is_file())
    for secret in (fakes.REAL_OPENAI_KEY, fakes.REAL_ANTHROPIC_KEY, fakes.REAL_SERVICE_TOKEN, agent):
        assert secret.encode() not in blobs
        assert secret not in server.output()


def test_a_calls_request_id_finds_its_audit_rows(world):
    agent = world["key"]()["key"]
    answer = openai_client(world, agent).chat.completions.with_raw_response.create(model=MODEL, messages=[], max_tokens=1)
    # Warden's id has a name of its own: the venue's X-Request-Id reaches the SDK as the venue sent it.
    assert answer.headers["x-request-id"] == fakes.OPENAI_REQUEST_ID
    assert answer.parse()._request_id == fakes.OPENAI_REQUEST_ID
    service = world["server"].url + "/proxy/fake"
    write = requests.post(service + "/repos/acme/issues", headers={"X-Api-Token": f"token {agent}"}, json={"title": "t"})
    refused = requests.delete(service + "/repos/acme", headers={"X-Api-Token": f"token {agent}"})
    assert (write.status_code, refused.status_code) == (200, 403), (write.text, refused.text)
    calls = {answer.headers["x-warden-request-id"]: [("gateway.result", "forwarded")],
             write.headers["x-warden-request-id"]: [("gateway.result", "forwarded"), ("gateway.forward", "allowed")],
             refused.headers["x-warden-request-id"]: [("gateway.refuse", "refused")]}
    assert len(calls) == 3, "three calls got the same id"

    def rows(request_id):
        r = requests.get(world["api"] + "/audit", params={"request": request_id}, headers=world["auth"])
        assert r.status_code == 200, r.text
        return r.json()["entries"]

    for request_id, expected in calls.items():
        found = rows(request_id)
        assert [(e["action"], e["outcome"]) for e in found] == expected
        assert all(json.loads(e["detail"])["request"] == request_id for e in found)
        # An id's prefix is another id, never a pattern that also finds this call's rows.
        assert all(json.loads(e["detail"])["request"] != request_id for e in rows(request_id[:-1]))
    for bad in ("%", "_", "\"", "ABC", "a" * 65, ""):
        r = requests.get(world["api"] + "/audit", params={"request": bad}, headers=world["auth"])
        assert r.status_code == 400 and r.json()["field"] == "request", (bad, r.text)


def test_audit_fails_closed(world):
    agent = world["key"]()["key"]
    fake, service = world["upstreams"]["openai"], world["upstreams"]["service"]
    client = openai_client(world, agent)
    client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    import sqlite3
    with sqlite3.connect(world["data"] / "warden.db") as db:
        db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'audit disk full'); END")
    # A call that may change something waits for its record: refused, never sent.
    writes = len(service.requests)
    status, _ = raw(world, "POST", "/proxy/fake/repos/acme/issues", agent, body=b'{"title": "t"}')
    assert status == 503 and len(service.requests) == writes, "a write was forwarded without its audit row"
    # An LLM call is recorded as it ends; once a commit has failed, the next ones are refused unsent.
    deadline = time.time() + 5
    while True:
        before = len(fake.requests)
        try:
            client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
        except openai.APIStatusError as refused:
            assert refused.status_code == 503 and len(fake.requests) == before
            break
        assert time.time() < deadline, "LLM calls kept going out while the audit could not be written"
        time.sleep(0.05)
    answered = len(fake.requests)
    with sqlite3.connect(world["data"] / "warden.db") as db:
        db.execute("DROP TRIGGER refuse_audit")
    # The rows of calls made meanwhile were kept and are committed on a retry; then calls pass again.
    deadline = time.time() + 5
    while True:
        try:
            assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=1).choices
            break
        except openai.APIStatusError:
            assert time.time() < deadline, "the gateway did not recover once the audit could be written"
            time.sleep(0.1)
    entries = requests.get(world["api"] + "/audit?limit=500", headers=world["auth"]).json()["entries"]
    results = [e for e in entries if e["action"] == "gateway.result" and e["target"] == "openai"]
    assert len(results) == len(fake.requests), f"{len(results)} result rows for {len(fake.requests)} calls sent"
    assert len(fake.requests) == answered + 1
    verified = warden("audit", "verify", "--data-dir", str(world["data"]), env=world["env"])
    assert verified.returncode == 0, verified.stderr


def test_a_disabled_owners_keys_stop_at_once(world):
    agent = world["key"]()["key"]
    client = openai_client(world, agent)
    for _ in range(3):  # the key is now in the server's cache
        assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=1).choices
    fake = world["upstreams"]["openai"]
    disabled = warden("user", "disable", "agent-owner@example.com", "--data-dir", str(world["data"]),
                      "--config", str(world["config"]), env=world["env"])
    assert disabled.returncode == 0, disabled.stderr
    # Another process (the CLI) made the change: the server's key cache sees it within its 50 ms poll.
    stopped_at = time.time()
    sent = len(fake.requests)
    while True:
        try:
            client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
        except openai.AuthenticationError:
            break
        assert time.time() - stopped_at < 0.5, "a disabled owner's key still worked 0.5 s later"
    assert len(fake.requests) - sent <= 10


def test_a_key_revoked_through_the_api_stops_on_the_next_call(world):
    made = world["key"]()
    client = openai_client(world, made["key"])
    for _ in range(3):
        assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=1).choices
    assert requests.delete(world["api"] + f"/agent-keys/{made['id']}", headers=world["auth"]).status_code == 204
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)


def test_a_shared_credential_stops_when_the_share_is_revoked(world):
    env, data, config = world["env"], world["data"], world["config"]
    assert warden("user", "create", "grantee@example.com", "grantee-password-1", "--no-reset", "--data-dir", str(data),
                  "--config", str(config), env=env).returncode == 0
    api, owner = world["api"], world["auth"]
    openai_cred = next(c for c in requests.get(api + "/credentials", headers=owner).json()["credentials"] if c["venue"] == "openai")
    grant = requests.post(api + f"/credentials/{openai_cred['id']}/grants", headers=owner,
                          json={"email": "grantee@example.com", "access": "read"}).json()
    token = requests.post(api + "/auth/login", json={"email": "grantee@example.com", "password": "grantee-password-1"}).json()["access_token"]
    grantee = {"Authorization": f"Bearer {token}"}
    made = requests.post(api + "/agent-keys", headers=grantee, json={"name": "g", "credential_ids": [openai_cred["id"]], "access": "read"})
    assert made.status_code == 201, made.text
    client = openai_client(world, made.json()["key"])
    assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=1).choices
    fake = world["upstreams"]["openai"]
    before = len(fake.requests)
    assert requests.delete(api + f"/credentials/{openai_cred['id']}/grants/{grant['id']}", headers=owner).status_code == 204
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    assert len(fake.requests) == before


def test_a_rotated_credential_is_used_from_the_next_call(world):
    made = world["key"]()
    client = openai_client(world, made["key"])
    fake = world["upstreams"]["openai"]
    for _ in range(3):  # the key and its opened credential are now cached
        assert client.chat.completions.create(model=MODEL, messages=[], max_tokens=1).choices
    assert fake.requests[-1]["headers"]["authorization"] == f"Bearer {fakes.REAL_OPENAI_KEY}"
    api, auth = world["api"], world["auth"]
    cred = next(c for c in requests.get(api + "/credentials", headers=auth).json()["credentials"] if c["venue"] == "openai")
    rotated = requests.patch(api + f"/credentials/{cred['id']}", headers=auth, json={"secret": {"api_key": "sk-rotated-0001"}})
    assert rotated.status_code == 200, rotated.text
    # The fake accepts only the old key, so the call fails; what matters is which key went out.
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer sk-rotated-0001"
    deleted = requests.delete(api + f"/credentials/{cred['id']}", headers=auth)
    assert deleted.status_code == 204, deleted.text
    sent = len(fake.requests)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model=MODEL, messages=[], max_tokens=1)
    assert len(fake.requests) == sent
