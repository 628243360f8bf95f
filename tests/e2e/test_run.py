"""`warden run`: a program wired to the gateway with a short-lived key and no real credential."""
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest
import requests

import fakes
from conftest import BINARY, clean_env


@pytest.fixture
def setup(start, tmp_path, master_key):
    upstream = fakes.Fake(fakes.openai_handler(gap=0))
    config = tmp_path / "warden.toml"
    config.write_text(f'[venues.openai]\nbase_url = "{upstream.url}"\n\n[services.fake]\nbase_url = "{upstream.url}"\n')
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    subprocess.run([str(BINARY), "user", "create", "runner@example.com", "runner-password-1", "--no-reset",
                    "--data-dir", str(data), "--config", str(config)], env=clean_env(env), check=True, capture_output=True)
    server = start(env, args=("--config", str(config)))
    api = server.url + "/api/v1"
    token = requests.post(api + "/auth/login", json={"email": "runner@example.com", "password": "runner-password-1"}).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    cred = requests.post(api + "/credentials", headers=auth, json={"venue": "openai", "label": "o", "secret": {"api_key": fakes.REAL_OPENAI_KEY}}).json()
    svc = requests.post(api + "/credentials", headers=auth, json={"venue": "fake", "label": "f", "secret": {"token": fakes.REAL_SERVICE_TOKEN}}).json()
    parent = requests.post(api + "/agent-keys", headers=auth, json={"name": "parent", "credential_ids": [cred["id"]], "access": "trade"}).json()
    home = tmp_path / "config-home"
    yield {"server": server, "upstream": upstream, "parent": parent["key"], "home": home, "tmp": tmp_path,
           "api": api, "auth": auth, "svc": svc}
    upstream.stop()


def run(setup, *args, token=True, extra_env=None, timeout=60):
    env = clean_env({"WARDEN_URL": setup["server"].url, "XDG_CONFIG_HOME": str(setup["home"]), **(extra_env or {})})
    if token:
        env["WARDEN_TOKEN"] = setup["parent"]
    return subprocess.run([str(BINARY), "run", *args], env=env, capture_output=True, text=True, timeout=timeout)


BOT = textwrap.dedent("""
    import json, os, sys
    from openai import OpenAI
    reply = OpenAI().chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    json.dump({"text": reply.choices[0].message.content, "env": dict(os.environ)}, open(sys.argv[1], "w"))
""")


def test_openai_sdk_with_no_configuration_completes_a_chat(setup):
    script = setup["tmp"] / "bot.py"
    script.write_text(BOT)
    out = setup["tmp"] / "out.json"
    result = run(setup, "--", sys.executable, str(script), str(out),
                 extra_env={"OPENAI_API_KEY": fakes.REAL_OPENAI_KEY})  # a real key in the caller's env must not leak
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["text"] == "Hello from the fake model"
    env = report["env"]
    assert env["OPENAI_API_KEY"].startswith("wdn_") and env["OPENAI_API_KEY"] != setup["parent"]
    assert env["OPENAI_BASE_URL"] == setup["server"].url + "/proxy/openai/v1"
    assert "WARDEN_TOKEN" not in env and "WARDEN_MASTER_KEY" not in env
    assert fakes.REAL_OPENAI_KEY not in json.dumps(env)
    # The child key was revoked when the child exited.
    r = requests.post(setup["server"].url + "/proxy/openai/v1/chat/completions",
                      headers={"Authorization": f"Bearer {env['OPENAI_API_KEY']}"}, json={"model": "gpt-test", "messages": []})
    assert r.status_code == 401


def test_child_key_expires_when_warden_run_dies(setup):
    keyfile = setup["tmp"] / "key"
    env = clean_env({"WARDEN_URL": setup["server"].url, "WARDEN_TOKEN": setup["parent"]})
    proc = subprocess.Popen([str(BINARY), "run", "--ttl", "5s", "--", "sh", "-c", f'echo "$OPENAI_API_KEY" > {keyfile}; exec sleep 30'],
                            env=env, start_new_session=True)
    deadline = time.time() + 10
    while (not keyfile.exists() or not keyfile.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    child_key = keyfile.read_text().strip()
    url = setup["server"].url + "/proxy/openai/v1/chat/completions"
    body = {"model": "gpt-test", "messages": [], "max_tokens": 1}
    assert requests.post(url, headers={"Authorization": f"Bearer {child_key}"}, json=body).status_code == 200
    os.killpg(proc.pid, signal.SIGKILL)  # warden run and its child die without a clean exit
    proc.wait()
    time.sleep(5.5)
    assert requests.post(url, headers={"Authorization": f"Bearer {child_key}"}, json=body).status_code == 401


def test_child_key_cannot_widen_or_leave_its_scope(setup):
    keyfile = setup["tmp"] / "key"
    assert run(setup, "--", "sh", "-c", f'echo "$OPENAI_API_KEY" > {keyfile}; sleep 0').returncode == 0
    # A live child (made directly) cannot mint a key for a venue its parent lacks.
    child = requests.post(setup["api"] + "/agent-keys/child", headers={"X-Warden-Key": setup["parent"]}, json={"ttl_seconds": 600}).json()
    wider = run(setup, "--venue", "fake", "--", "true", extra_env={"WARDEN_TOKEN": child["key"]})
    assert wider.returncode != 0 and "no fake credential" in wider.stderr
    r = requests.get(setup["server"].url + "/proxy/fake/x", headers={"Authorization": f"Bearer {child['key']}"})
    assert r.status_code == 403
    # Nor reach the management API.
    assert requests.get(setup["api"] + "/credentials", headers={"Authorization": f"Bearer {child['key']}"}).status_code == 401


def test_exit_codes_like_a_shell(setup):
    assert run(setup, "--", "sh", "-c", "exit 3").returncode == 3
    assert run(setup, "--", "sh", "-c", "kill -9 $$").returncode == 137
    missing = run(setup, "--", "no-such-command-xyz")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    plain = setup["tmp"] / "not-executable"
    plain.write_text("echo hi\n")
    os.chmod(plain, 0o644)
    denied = run(setup, "--", str(plain))
    assert denied.returncode == 126 and "permission denied" in denied.stderr
    assert run(setup).returncode != 0


def test_signals_are_forwarded(setup):
    ready = setup["tmp"] / "ready"
    env = clean_env({"WARDEN_URL": setup["server"].url, "WARDEN_TOKEN": setup["parent"]})
    script = f'trap "exit 7" TERM; trap "exit 8" HUP; touch {ready}; while true; do sleep 0.05; done'
    for sig, code in ((signal.SIGTERM, 7), (signal.SIGHUP, 8)):
        if ready.exists():
            ready.unlink()
        proc = subprocess.Popen([str(BINARY), "run", "--", "sh", "-c", script], env=env)
        deadline = time.time() + 10
        while not ready.exists() and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == code


def test_print_env_masks_keys_and_starts_nothing(setup):
    marker = setup["tmp"] / "ran"
    result = run(setup, "--print-env", "--", "touch", str(marker))
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert "OPENAI_API_KEY=wdn_****" in result.stdout and "OPENAI_BASE_URL=" in result.stdout
    assert setup["parent"] not in result.stdout and "unset WARDEN_TOKEN" in result.stdout


def test_login_session_file_and_logout(setup):
    env = clean_env({"WARDEN_URL": setup["server"].url, "XDG_CONFIG_HOME": str(setup["home"])})
    login = subprocess.run([str(BINARY), "login", "runner@example.com", "--password-stdin"], input="runner-password-1\n",
                           env=env, capture_output=True, text=True)
    assert login.returncode == 0, login.stderr
    session = setup["home"] / "warden" / "session.json"
    assert stat.S_IMODE(os.stat(session).st_mode) == 0o600
    token = json.loads(session.read_text())["token"]
    marker = setup["tmp"] / "env.txt"
    ran = run(setup, "--venue", "fake", "--", "sh", "-c", f'env > {marker}', token=False)
    assert ran.returncode == 0, ran.stderr
    text = marker.read_text()
    assert "WARDEN_FAKE_BASE_URL=" in text and "WARDEN_FAKE_API_KEY=wdn_" in text and "OPENAI_API_KEY" not in text
    assert subprocess.run([str(BINARY), "logout"], env=env, capture_output=True).returncode == 0
    assert not session.exists()
    assert requests.get(setup["api"] + "/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    no_session = run(setup, "--", "true", token=False)
    assert no_session.returncode != 0 and "warden login" in no_session.stderr
