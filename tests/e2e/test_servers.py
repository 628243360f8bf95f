"""Several servers on one PostgreSQL: a service's rate limit holds in total, not per server."""
import concurrent.futures
import os
import subprocess
import time

import pytest
import requests

import fakes
from conftest import warden

LIMIT = 20


@pytest.fixture
def postgres_env(master_key):
    base = os.environ.get("WARDEN_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("WARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("WARDEN_REQUIRE_POSTGRES=1 but WARDEN_TEST_POSTGRES_URL is not set")
        pytest.skip("needs PostgreSQL (scripts/with-postgres)")
    name = f"warden_srv_{os.getpid()}_{int(time.time() * 1000) % 1000000}"
    subprocess.run(["psql", base.split("?")[0], "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return {"WARDEN_MASTER_KEY": master_key, "WARDEN_DATABASE_URL": base.replace("/warden?", f"/{name}?")}


def three_servers_with_a_key(start, tmp_path, postgres_env, upstream, service, extra=""):
    """Three servers on one PostgreSQL database with a REST service at `upstream`, and an owner's trade key on it.
    Returns the servers, the owner's session headers and the key as made (`id`, `key`)."""
    config = tmp_path / "warden.toml"
    config.write_text(f'[services.{service}]\nbase_url = "{upstream.url}"\nauth_header = "X-Api-Token"\n'
                      f'auth_value_prefix = "token "\n{extra}')
    assert warden("user", "create", "multi@example.com", "multi-password-1", "--no-reset",
                  "--data-dir", str(tmp_path / "data"), "--config", str(config), env=postgres_env).returncode == 0
    servers = [start(postgres_env, data_dir=tmp_path / f"data{i}", args=("--config", str(config))) for i in range(3)]
    api = servers[0].url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "multi@example.com", "password": "multi-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    credential = requests.post(api + "/credentials", headers=auth, json={
        "venue": service, "label": service, "secret": {"token": fakes.REAL_SERVICE_TOKEN}}).json()["id"]
    made = requests.post(api + "/agent-keys", headers=auth,
                         json={"name": "k", "credential_ids": [credential], "access": "trade"}).json()
    return servers, auth, made


def test_a_rate_limit_holds_in_total_across_three_servers(start, tmp_path, postgres_env):
    upstream = fakes.Fake(fakes.service_handler)
    try:
        servers, _, made = three_servers_with_a_key(
            start, tmp_path, postgres_env, upstream, "limited", f"rate_limit = {LIMIT}\nrate_limit_window_seconds = 3600\n")
        key = made["key"]

        def call(i):
            server = servers[i % 3]
            return requests.get(server.url + "/proxy/limited/items", headers={"X-Api-Token": f"token {key}"}, timeout=20)

        with concurrent.futures.ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(call, range(120)))
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == LIMIT and statuses.count(429) == 120 - LIMIT, statuses
        assert len(upstream.requests) == LIMIT
        assert all(int(a.headers["Retry-After"]) > 0 for a in answers if a.status_code == 429)
        # Each server refused some: the limit was not met by one server alone.
        refused_by = {i % 3 for i, a in enumerate(answers) if a.status_code == 429}
        assert refused_by == {0, 1, 2}
    finally:
        upstream.stop()


def test_the_login_throttle_holds_in_total_across_three_servers(start, tmp_path, postgres_env):
    """Guesses spread over three servers are counted together: one address gets 10 failures in all."""
    assert warden("user", "create", "guarded@example.com", "guarded-password-1", "--no-reset",
                  "--data-dir", str(tmp_path / "data"), env=postgres_env).returncode == 0
    servers = [start(postgres_env, data_dir=tmp_path / f"data{i}") for i in range(3)]

    def guess(i):
        url = servers[i % 3].url + "/api/v1/auth/login"
        return requests.post(url, json={"email": f"victim{i % 4}@example.com", "password": f"guess-{i}"}, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(guess, range(30)))
    statuses = [a.status_code for a in answers]
    # The address limit is 10 failures in 15 minutes, to any accounts, on all servers together.
    assert statuses.count(401) == 10 and statuses.count(429) == 20, statuses
    assert {i % 3 for i, a in enumerate(answers) if a.status_code == 429} == {0, 1, 2}
    # A restarted server remembers: the address stays refused there too, even with the right password.
    servers[1].stop()
    again = start(postgres_env, data_dir=tmp_path / "data1")
    held = requests.post(again.url + "/api/v1/auth/login",
                         json={"email": "guarded@example.com", "password": "guarded-password-1"}, timeout=60)
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 800, held.text


def test_a_revocation_on_one_server_stops_the_key_on_the_others_at_once(start, tmp_path, postgres_env):
    """Each server caches a key it has seen; a revocation made through another server drops it as soon as
    PostgreSQL notifies the change (the 50 ms poll is the fallback)."""
    upstream = fakes.Fake(fakes.service_handler)
    try:
        servers, auth, made = three_servers_with_a_key(start, tmp_path, postgres_env, upstream, "svc")
        api = servers[0].url + "/api/v1"
        headers = {"X-Api-Token": f"token {made['key']}"}
        for server in servers:  # every server has the key cached
            assert requests.get(server.url + "/proxy/svc/items", headers=headers).status_code == 200
        revoked_at = time.monotonic()
        assert requests.delete(f"{api}/agent-keys/{made['id']}", headers=auth).status_code == 204
        for server in servers[1:]:
            while requests.get(server.url + "/proxy/svc/items", headers=headers).status_code == 200:
                assert time.monotonic() - revoked_at < 1.0, "a revoked key still worked on another server after 1 s"
        print(f"\nrevocation seen by every server within {1000 * (time.monotonic() - revoked_at):.0f} ms")
    finally:
        upstream.stop()
