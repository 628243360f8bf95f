"""The management flow through the real binary: CLI onboarding, the HTTP API, the audit chain."""
import re
import sqlite3
import subprocess

import pytest
import requests

from conftest import warden


def cli(data_dir, key, *args):
    return warden(*args, "--data-dir", str(data_dir), env={"WARDEN_MASTER_KEY": key})


@pytest.fixture
def stack(start, tmp_path, master_key):
    server = start({"WARDEN_MASTER_KEY": master_key})
    return server, tmp_path / "data", master_key


def test_whole_flow_with_tamper_detection(stack):
    server, data, key = stack
    api = server.url + "/api/v1"
    responses = []

    def call(method, path, token=None, **kw):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = requests.request(method, api + path, headers=headers, timeout=10, **kw)
        responses.append(r.text)
        return r

    # Onboarding from the CLI while the server runs; the generated password is printed once.
    created = cli(data, key, "user", "create", "trader@example.com")
    assert created.returncode == 0, created.stderr
    password = re.search(r"password: (\S+)", created.stdout).group(1)
    assert len(password) >= 20
    assert cli(data, key, "user", "create", "friend@example.com", "friend-password-1", "--no-reset").returncode == 0
    dup = cli(data, key, "user", "create", "TRADER@example.com", "another-password-1")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    listed = cli(data, key, "user", "list").stdout
    assert "trader@example.com" in listed and "must-change-password" in listed

    token = call("POST", "/auth/login", json={"email": "trader@example.com", "password": password}).json()
    assert token["must_change_password"] is True and token["token_type"] == "Bearer"
    token = token["access_token"]
    assert call("GET", "/profile", token).json()["code"] == "password_change_required"
    new_password = "PLANTED-password-Zq9"
    assert call("POST", "/auth/password", token, json={"current_password": password, "new_password": new_password}).status_code == 204
    token = call("POST", "/auth/login", json={"email": "trader@example.com", "password": new_password}).json()["access_token"]

    assert call("PUT", "/profile", token, json={"risk": {"max_leg_usd": 20, "daily_cap_usd": 100}}).status_code == 200
    secret = "PLANTED-binance-api-secret-7f3a"
    cred = call("POST", "/credentials", token, json={"venue": "binance", "label": "spot",
                                                    "secret": {"api_key": "PLANTED-binance-api-key", "api_secret": secret}})
    assert cred.status_code == 201
    cred_id = cred.json()["id"]
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    kalshi = call("POST", "/credentials", token, json={"venue": "kalshi", "label": "k", "secret": {"key_id": "kid-1", "private_key_pem": pem}})
    assert kalshi.status_code == 201, kalshi.text
    pem_body = "".join(pem.strip().splitlines()[1:-1])[:64]
    assert call("POST", f"/credentials/{cred_id}/grants", token,
                json={"email": "friend@example.com", "access": "read"}).status_code == 201
    made = call("POST", "/agent-keys", token, json={"name": "bot", "credential_ids": [cred_id], "access": "trade"})
    assert made.status_code == 201
    agent_key = made.json()["key"]
    for path in ("/credentials", "/agent-keys", f"/credentials/{cred_id}/grants", "/me", "/profile"):
        assert call("GET", path, token).status_code == 200
    assert call("DELETE", f"/agent-keys/{made.json()['id']}", token).status_code == 204
    actions = {e["action"] for e in call("GET", "/audit?limit=200", token).json()["entries"]}
    assert {"user.create", "auth.login", "auth.password_change", "profile.update", "credential.create",
            "grant.create", "agent_key.create", "agent_key.revoke"} <= actions

    # Disabling from the CLI ends the session at once.
    friend = call("POST", "/auth/login", json={"email": "friend@example.com", "password": "friend-password-1"}).json()["access_token"]
    assert call("GET", "/me", friend).status_code == 200
    assert cli(data, key, "user", "disable", "friend@example.com").returncode == 0
    assert call("GET", "/me", friend).status_code == 401

    # The chain verifies; the running server and the CLI appended to the same chain.
    verified = cli(data, key, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "intact" in verified.stdout

    # Planted secrets are nowhere: not in the database, its WAL, the server log or any response but the key's.
    assert server.stop() == 0
    blobs = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    log = server.output()
    for planted in (secret, "PLANTED-binance-api-key", new_password, password, agent_key, token, key, pem_body):
        assert planted.encode() not in blobs, planted
        assert planted not in log, planted
    for planted in (secret, "PLANTED-binance-api-key", new_password, key, pem_body):
        assert not any(planted in r for r in responses), planted
    assert sum(agent_key in r for r in responses) == 1

    # Tampering directly in the database is found, naming the row.
    with sqlite3.connect(data / "warden.db") as db:
        db.execute("UPDATE audit SET outcome = 'failed' WHERE seq = 3")
    broken = cli(data, key, "audit", "verify")
    assert broken.returncode != 0
    assert "row 3" in broken.stderr


def test_audit_verify_detects_deletion_and_needs_the_key(stack):
    server, data, key = stack
    for i in range(3):
        assert cli(data, key, "user", "create", f"u{i}@example.com", "long-password-123").returncode == 0
    assert cli(data, key, "audit", "verify").returncode == 0
    server.stop()
    with sqlite3.connect(data / "warden.db") as db:
        db.execute("DELETE FROM audit WHERE seq = 2")
    result = cli(data, key, "audit", "verify")
    assert result.returncode != 0 and "row 2" in result.stderr
    wrong = cli(data, key[::-1], "audit", "verify")
    assert wrong.returncode != 0 and "does not unseal" in wrong.stderr


def test_user_commands_report_bad_input(stack):
    _, data, key = stack
    short = cli(data, key, "user", "create", "s@example.com", "short")
    assert short.returncode != 0 and "12 characters" in short.stderr
    bad = cli(data, key, "user", "create", "not-an-email", "long-password-123")
    assert bad.returncode != 0 and "email" in bad.stderr
    missing = cli(data, key, "user", "disable", "ghost@example.com")
    assert missing.returncode != 0 and "no such user" in missing.stderr
    reset = cli(data, key, "user", "create", "r@example.com", "long-password-123", "--no-reset")
    assert reset.returncode == 0
    out = cli(data, key, "user", "reset-password", "r@example.com")
    assert out.returncode == 0 and re.search(r"password: \S{20,}", out.stdout)
    assert "must-change-password" in cli(data, key, "user", "list").stdout
    for args in (("user", "--help"), ("audit", "verify", "--help"), ("user", "create", "--help")):
        assert warden(*args).returncode == 0
