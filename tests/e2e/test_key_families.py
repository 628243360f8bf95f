"""Key families: a key and every key minted below it, at any depth. Revoking a key stops the whole family
below it at once, on every server; minting needs a live ancestry and an enabled owner, and is limited per
family; a family shares one rate-limit bucket per service. The oracle for calls is what the fake service
received."""
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import time

import pytest
import requests

import fakes
from conftest import BINARY, clean_env, warden

RATE_LIMIT = 6
MINTS_PER_MINUTE = 10  # AgentKeys.maxMintsPerWindow


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request, master_key):
    """The store both servers and the CLI share: SQLite in the data directory, or a fresh PostgreSQL database
    (when WARDEN_TEST_POSTGRES_URL is set, as scripts/with-postgres does), where the family lock is a row lock."""
    env = {"WARDEN_MASTER_KEY": master_key}
    if request.param == "postgres":
        base = os.environ.get("WARDEN_TEST_POSTGRES_URL")
        if not base:
            pytest.skip("needs PostgreSQL (scripts/with-postgres)")
        name = f"warden_fam_{os.getpid()}_{int(time.time() * 1000) % 1000000}"
        subprocess.run(["psql", base.split("?")[0], "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        env["WARDEN_DATABASE_URL"] = base.replace("/warden?", f"/{name}?")
    return env


@pytest.fixture
def fam(start, tmp_path, store_env):
    upstream = fakes.Fake(fakes.service_handler)
    config = tmp_path / "warden.toml"
    service = f'base_url = "{upstream.url}"\nauth_header = "X-Api-Token"\nauth_value_prefix = "token "\n'
    # `open` has no rate limit (for the revocation tests); `limited` lets RATE_LIMIT calls through an hour.
    config.write_text(f"[services.open]\n{service}\n[services.limited]\n{service}"
                      f"rate_limit = {RATE_LIMIT}\nrate_limit_window_seconds = 3600\n")
    env = store_env
    data = tmp_path / "data"
    assert warden("user", "create", "family@example.com", "family-password-1", "--no-reset",
                  "--data-dir", str(data), "--config", str(config), env=env).returncode == 0
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "family@example.com", "password": "family-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    creds = [requests.post(api + "/credentials", headers=auth,
                           json={"venue": venue, "label": venue, "secret": {"token": fakes.REAL_SERVICE_TOKEN}}).json()["id"]
             for venue in ("open", "limited")]

    def root():
        r = requests.post(api + "/agent-keys", headers=auth, json={"name": "root", "credential_ids": creds, "access": "trade"})
        assert r.status_code == 201, r.text
        return r.json()

    def second_server():
        """Another `warden serve` on the same store (the same data directory, or the same PostgreSQL database)."""
        return start(env, data_dir=data, args=("--config", str(config)))

    yield {"server": server, "upstream": upstream, "api": api, "auth": auth, "root": root, "second_server": second_server,
           "data": data, "config": config, "env": env, "tmp": tmp_path}
    upstream.stop()


def call(server, key, service="open"):
    return requests.get(f"{server.url}/proxy/{service}/items", headers={"X-Api-Token": f"token {key}"}).status_code


def mint(server, key):
    return requests.post(server.url + "/api/v1/agent-keys/child", headers={"X-Warden-Key": key}, json={"ttl_seconds": 600})


def minted(server, key):
    r = mint(server, key)
    assert r.status_code == 201, r.text
    return r.json()


def test_revoking_a_key_stops_every_key_below_it_on_every_server(fam):
    a, b = fam["server"], fam["second_server"]()
    root = fam["root"]()
    child = minted(a, root["key"])
    grandchild = minted(b, child["key"])  # minted on the other server
    sibling = minted(a, root["key"])
    for server in (a, b):
        for key in (root["key"], child["key"], grandchild["key"], sibling["key"]):
            assert call(server, key) == 200  # each server now holds every key in its cache
    sent = len(fam["upstream"].requests)

    assert requests.delete(fam["api"] + f"/agent-keys/{child['id']}", headers=fam["auth"]).status_code == 204
    # This server: refused on the very next call.
    assert call(a, grandchild["key"]) == 401 and call(a, child["key"]) == 401
    # The other server sees the store's revision move within its 50 ms poll.
    time.sleep(0.3)
    assert call(b, grandchild["key"]) == 401 and call(b, child["key"]) == 401
    assert len(fam["upstream"].requests) == sent, "a revoked family member's call reached the service"
    # Neither can mint, on either server.
    for server in (a, b):
        for key in (child["key"], grandchild["key"]):
            assert mint(server, key).status_code == 401
    # The rest of the family is untouched.
    assert call(b, root["key"]) == 200 and call(b, sibling["key"]) == 200


# Inside `warden run`: mint a key of its own from the run's key, and leave it behind in a file.
ESCAPE = textwrap.dedent("""
    import json, os, sys, urllib.request
    req = urllib.request.Request(os.environ["WARDEN_URL"] + "/api/v1/agent-keys/child", method="POST",
                                 data=json.dumps({"ttl_seconds": 3600}).encode(),
                                 headers={"X-Warden-Key": os.environ["WARDEN_OPEN_API_KEY"], "Content-Type": "application/json"})
    open(sys.argv[1], "w").write(json.load(urllib.request.urlopen(req))["key"])
""")


def test_a_key_minted_inside_warden_run_dies_with_the_run(fam):
    root = fam["root"]()
    script, out = fam["tmp"] / "escape.py", fam["tmp"] / "escaped-key"
    script.write_text(ESCAPE)
    env = clean_env({"WARDEN_URL": fam["server"].url, "WARDEN_TOKEN": root["key"]})
    ran = subprocess.run([str(BINARY), "run", "--venue", "open", "--", sys.executable, str(script), str(out)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    escaped = out.read_text().strip()
    assert escaped.startswith("wdn_")
    # The run's key was revoked as the run ended, and with it the key the agent minted from it.
    sent = len(fam["upstream"].requests)
    assert call(fam["server"], escaped) == 401
    assert mint(fam["server"], escaped).status_code == 401
    assert len(fam["upstream"].requests) == sent
    assert call(fam["server"], root["key"]) == 200


def test_a_disabled_owners_keys_cannot_mint(fam):
    root = fam["root"]()
    child = minted(fam["server"], root["key"])
    disabled = warden("user", "disable", "family@example.com", "--data-dir", str(fam["data"]),
                      "--config", str(fam["config"]), env=fam["env"])
    assert disabled.returncode == 0, disabled.stderr
    time.sleep(0.3)  # the CLI is another process: the server's cache sees it within its poll
    for key in (root["key"], child["key"]):
        r = mint(fam["server"], key)
        assert r.status_code == 401 and r.json()["code"] == "owner_disabled", r.text
        assert call(fam["server"], key) == 401


def test_a_family_shares_one_rate_limit_bucket(fam):
    upstream = fam["upstream"]
    root = fam["root"]()
    children = [minted(fam["server"], root["key"]) for _ in range(3)]
    grandchildren = [minted(fam["server"], children[0]["key"]) for _ in range(2)]
    keys = [root["key"]] + [k["key"] for k in children + grandchildren]
    before = len(upstream.requests)
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda i: call(fam["server"], keys[i % len(keys)], "limited"), range(60)))
    assert statuses.count(200) == RATE_LIMIT and statuses.count(429) == 60 - RATE_LIMIT
    assert len(upstream.requests) - before == RATE_LIMIT, "minting keys multiplied the service's rate limit"
    # Another family has a bucket of its own.
    other = fam["root"]()
    assert call(fam["server"], other["key"], "limited") == 200


def test_minting_is_limited_per_family_across_servers(fam):
    a, b = fam["server"], fam["second_server"]()
    root = fam["root"]()
    child = minted(a, root["key"])  # one of the family's mints
    # Fired at once, from the root and the child, through both servers: the family's allowance holds exactly.
    attempts = [(server, key) for server in (a, b) for key in (root["key"], child["key"])] * 8
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda sk: mint(*sk), attempts))
    statuses = [r.status_code for r in replies]
    assert statuses.count(201) == MINTS_PER_MINUTE - 1 and statuses.count(429) == len(attempts) - (MINTS_PER_MINUTE - 1), statuses
    refused = next(r for r in replies if r.status_code == 429)
    assert refused.json()["code"] == "mint_rate_limited" and 1 <= int(refused.headers["Retry-After"]) <= 60
    # Listing the owner's keys shows exactly the family's allowance below the root.
    keys = requests.get(fam["api"] + "/agent-keys", headers=fam["auth"]).json()["agent_keys"]
    assert len(keys) == 1 + MINTS_PER_MINUTE
    # Another family is not held back.
    assert mint(b, fam["root"]()["key"]).status_code == 201
