"""Venues that hang up part way through an answer: while none of it has reached the agent, the agent gets
a 502 in the venue's shape (not a closed connection), the call's audit row says it failed upstream, and
an LLM call's reservation stays spent (the venue may have run it)."""
import json
import socket
import struct
import threading

import openai
import pytest
import requests

from conftest import warden

MODEL = "gpt-test"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"


class Breaker:
    """A raw upstream that reads each request whole, then answers according to its path and hangs up:
    `/rst` and `/v1/chat/completions` send a head promising 1000 bytes and 10 of them, then reset
    (SO_LINGER 0); `/fin` does the same and closes normally; `/head` sends half a head and resets;
    `/chunked` sends a chunked head and resets before any chunk; `/late` sends a chunk, then resets."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.paths = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return conn.close()
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        path = head.split(b" ")[1].decode()
        self.paths.append(path)
        name = path.rsplit("/", 1)[-1]
        if name == "head":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")
        elif name == "chunked":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        elif name == "late":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        else:
            conn.sendall(HEAD + b'{"id": "c1')
        if name == "fin":
            conn.shutdown(socket.SHUT_WR)
        else:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    def stop(self):
        self.sock.close()


@pytest.fixture
def breaking(start, tmp_path, master_key):
    breaker = Breaker()
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[venues.openai]
base_url = "{breaker.url}"

[services.breaker]
base_url = "{breaker.url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[prices.openai]
"{MODEL}" = {{ input = 0, output = 1000 }}
""")
    env = {"WARDEN_MASTER_KEY": master_key}
    assert warden("user", "create", "owner@example.com", "owner-password-1", "--no-reset", "--data-dir", str(tmp_path / "data"),
                  "--config", str(config), env=env).returncode == 0
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "owner@example.com", "password": "owner-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    creds = []
    for venue, secret in (("openai", {"api_key": "sk-real"}), ("breaker", {"token": "real"})):
        r = requests.post(api + "/credentials", headers=auth, json={"venue": venue, "label": venue, "secret": secret})
        assert r.status_code == 201, r.text
        creds.append(r.json()["id"])
    r = requests.post(api + "/agent-keys", headers=auth, json={"name": "k", "credential_ids": creds, "access": "trade",
                                                               "daily_budget_usd": 1})
    assert r.status_code == 201, r.text
    yield {"server": server, "api": api, "auth": auth, "key": r.json()["key"], "breaker": breaker}
    breaker.stop()


def rows(world, request_id):
    r = requests.get(world["api"] + "/audit", params={"request": request_id}, headers=world["auth"])
    assert r.status_code == 200, r.text
    return [(e["action"], e["outcome"], json.loads(e["detail"]).get("status")) for e in r.json()["entries"]]


@pytest.mark.parametrize("method,path", [("GET", "/rst"), ("GET", "/fin"), ("POST", "/rst"), ("GET", "/head"), ("GET", "/chunked")])
def test_an_answer_cut_before_any_byte_reached_the_agent_is_a_502(breaking, method, path):
    headers = {"X-Api-Token": f"token {breaking['key']}"}
    r = requests.request(method, breaking["server"].url + "/proxy/breaker/x" + path, headers=headers,
                         data=b'{"a": 1}' if method == "POST" else None, timeout=20)
    assert r.status_code == 502, (r.status_code, r.text)
    assert r.json()["code"] == "gateway_upstream", r.text  # the service's error shape
    found = rows(breaking, r.headers["x-warden-request-id"])
    # A call that may change something was recorded before it went; every one ends failed upstream.
    assert found[0] == ("gateway.refuse", "upstream_error", "502"), found
    assert found[1:] == ([("gateway.forward", "allowed", None)] if method == "POST" else []), found
    assert requests.get(breaking["server"].url + "/healthz", timeout=5).status_code == 200


def test_a_stream_cut_after_bytes_reached_the_agent_is_closed_and_interrupted(breaking):
    headers = {"X-Api-Token": f"token {breaking['key']}"}
    r = requests.get(breaking["server"].url + "/proxy/breaker/x/late", headers=headers, stream=True, timeout=20)
    assert r.status_code == 200  # the head went with the first bytes: nothing else can be said now
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        r.content
    assert rows(breaking, r.headers["x-warden-request-id"]) == [("gateway.result", "interrupted", "200")]


def test_the_openai_sdk_sees_a_502_and_the_reservation_stays_spent(breaking):
    client = openai.OpenAI(base_url=breaking["server"].url + "/proxy/openai/v1", api_key=breaking["key"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], max_tokens=10)
    assert caught.value.status_code == 502 and "broke off" in caught.value.message, caught.value.message
    assert breaking["breaker"].paths[-1] == "/v1/chat/completions"
    found = rows(breaking, caught.value.response.headers["x-warden-request-id"])
    assert found == [("gateway.refuse", "upstream_error", "502")], found
    # The venue may have run (and billed) the call: its reservation, 10 tokens at 0.001, stays spent.
    usage = [u for u in requests.get(breaking["api"] + "/usage", headers=breaking["auth"]).json()["llm"] if u["venue"] == "openai"]
    assert sum(u["spent_usd"] for u in usage) == pytest.approx(0.01), usage
    assert all(u["reserved_usd"] == pytest.approx(0) for u in usage), usage
