"""Attacks on this session's changes (attack4): a limit an agent holding only a `wdn_` key can get past.
The oracle is always what reached the fake venue, read as the venue (or the framework behind a service) reads it."""
from urllib.parse import parse_qsl

import fakes  # noqa: F401
from test_gateway import raw, world  # noqa: F401  (the fixture)


def rack_method(record):
    """The method a Rack app (Rails; Laravel, Symfony and Express's method-override read the same way) runs:
    a POST whose body is a form (no Content-Type, or a form type) with `_method` runs as that method."""
    if record["method"] != "POST":
        return record["method"]
    content_type = (record["headers"].get("content-type") or "").split(";")[0].strip().lower()
    if content_type not in ("", "application/x-www-form-urlencoded"):
        return "POST"
    form = dict(parse_qsl(record["body"].decode("latin-1"), keep_blank_values=True))
    override = (form.get("_method") or "").upper()
    return override if override in ("GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "LINK", "UNLINK") else "POST"


def test_connection_naming_content_type_cannot_turn_a_json_body_into_a_method_override(world):
    """Warden checks a body for `_method` by the request's Content-Type (a JSON body is read as JSON), then strips
    every field the request's `Connection` names, Content-Type included: the service gets the same body with no
    type, which Rack and the other method-override frameworks read as a form. `{"t": "&_method=DELETE&"}` is a
    harmless JSON object to Warden and `DELETE` to the service, on a path `blocked_endpoints` closes to DELETE."""
    agent = world["key"]()["key"]
    fake = world["upstreams"]["service"]
    assert raw(world, "DELETE", "/proxy/fake/repos/acme", agent)[0] == 403  # the limit attacked
    before = len(fake.requests)
    bodies = [b'{"t": "&_method=DELETE&"}', b'{"a":"x","b":"&_method=delete&"}', b'["&_method=DELETE&"]']
    for connection in ["content-type", "Content-Type", "close, content-type", "keep-alive,Content-Type"]:
        for body in bodies:
            raw(world, "POST", "/proxy/fake/repos/acme", agent,
                {"Content-Type": "application/json", "Connection": connection}, body=body)
    ran = [(rack_method(r), r["path"]) for r in fake.requests[before:]]
    # `DELETE /repos/*` is blocked: no call may run as one at the service.
    assert not any(method == "DELETE" and path.startswith("/repos/") and path.count("/") == 2 for method, path in ran), ran


def test_a_write_waiting_for_an_upstream_connection_is_not_sent_after_its_client_left_or_its_deadline(start, tmp_path, master_key):
    """A call is checked for its client and its send deadline once, before it goes to the upstream client; there it
    may wait for a free connection to its origin (up to 10 s, `upstream_max_connections_per_origin`), and is sent
    when one frees whatever happened meanwhile. An agent that keeps the origin's connections busy with slow reads
    gets a write (an order, a service POST) sent after its client hung up and long past `send_deadline_seconds`."""
    import os
    import socket
    import threading
    import time

    import requests

    from conftest import warden

    arrivals = []

    def handler(h, body):
        if h.path.startswith("/slow"):
            time.sleep(3)
        arrivals.append((time.monotonic(), h.command, h.path))
        fakes.send_json(h, 200, {"ok": True})

    fake = fakes.Fake(handler)
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[services.slow]
base_url = "{fake.url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[gateway]
upstream_timeout_seconds = 10
send_deadline_seconds = 1
upstream_max_connections_per_origin = 1
""")
    data = tmp_path / "data"
    env = {"WARDEN_MASTER_KEY": master_key}
    assert warden("user", "create", "o@example.com", "owner-password-1", "--no-reset", "--data-dir", str(data),
                  "--config", str(config), env=env).returncode == 0
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "o@example.com", "password": "owner-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    cred = requests.post(api + "/credentials", headers=auth, json={"venue": "slow", "label": "s", "secret": {"token": "t"}}).json()["id"]
    agent = requests.post(api + "/agent-keys", headers=auth, json={"name": "k", "credential_ids": [cred], "access": "trade"}).json()["key"]
    headers = {"X-Api-Token": f"token {agent}"}
    try:
        # Slow reads hold every connection the origin may have, on every event loop.
        blockers = [threading.Thread(target=lambda: requests.get(server.url + "/proxy/slow/slow", headers=headers, timeout=20))
                    for _ in range(2 * (os.cpu_count() or 2))]
        for b in blockers:
            b.start()
        time.sleep(1)
        # A write whose client hangs up at once.
        body = b'{"order": 1}'
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(f"POST /proxy/slow/orders HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Api-Token: token {agent}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(0.3)
        s.close()
        hung_up = time.monotonic()
        # A write whose client waits: it may not go out later than send_deadline_seconds (1 s) after it was read.
        sent = time.monotonic()
        late = requests.post(server.url + "/proxy/slow/later", headers=headers, json={"order": 2}, timeout=20)
        for b in blockers:
            b.join()
        time.sleep(0.5)
        writes = [(round(t - hung_up, 2), m, p) for t, m, p in arrivals if m == "POST"]
        after_hang_up = [w for w in writes if w[2] == "/orders"]
        too_late = [(round(t - sent, 2), m, p) for t, m, p in arrivals if p == "/later" and t - sent > 1.5]
        assert not after_hang_up and not too_late, (
            f"writes reached the venue after their client had gone (s after hang-up): {after_hang_up}; "
            f"past the 1 s send deadline (s after the request): {too_late} (answer {late.status_code})")
    finally:
        fake.stop()
