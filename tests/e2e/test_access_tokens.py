"""Personal access tokens with the real binary: made by `warden token` from a saved login, used by a script
with plain HTTP within their scope only, never taken by the gateway, revoked at once, never stored or logged."""
import json
import subprocess

import openai
import pytest
import requests

import fakes
from conftest import BINARY, clean_env, warden

EMAIL, PASSWORD = "script-owner@example.com", "script-password-1"


def cli(home, *args, input=None):
    return subprocess.run([str(BINARY), *args], env=clean_env({"XDG_CONFIG_HOME": str(home)}), input=input,
                          capture_output=True, text=True, timeout=60)


def test_a_script_uses_a_token_within_its_scope(start, tmp_path, master_key):
    upstream = fakes.Fake(fakes.openai_handler())
    try:
        config = tmp_path / "warden.toml"
        config.write_text(f'[venues.openai]\nbase_url = "{upstream.url}"\n')
        env = {"WARDEN_MASTER_KEY": master_key}
        assert warden("user", "create", EMAIL, PASSWORD, "--no-reset", "--data-dir", str(tmp_path / "data"),
                      "--config", str(config), env=env).returncode == 0
        server = start(env, args=("--config", str(config)))
        home = tmp_path / "home"
        assert cli(home, "token", "list").returncode == 1  # not logged in: said so
        login = cli(home, "login", EMAIL, "--url", server.url, "--password-stdin", input=PASSWORD + "\n")
        assert login.returncode == 0, login.stderr

        made = cli(home, "token", "create", "nightly keys", "--scope", "manage-keys", "--days", "7")
        assert made.returncode == 0 and "not shown again" in made.stderr, made.stderr
        keys_token = made.stdout.strip()
        assert keys_token.startswith("wdp_") and len(keys_token) == 68
        read_token = cli(home, "token", "create", "report").stdout.strip()
        bad = cli(home, "token", "create", "x", "--scope", "root")
        assert bad.returncode == 1 and "scope" in bad.stderr
        assert cli(home, "token", "create", "x", "--scope", "admin").returncode == 1  # not an administrator

        session = (home / "warden" / "session.json").read_text()
        api = server.url + "/api/v1"
        person = {"Authorization": "Bearer " + json.loads(session)["token"]}
        credential = requests.post(api + "/credentials", headers=person, json={
            "venue": "openai", "label": "o", "secret": {"api_key": fakes.REAL_OPENAI_KEY}}).json()["id"]

        # manage-keys: a script makes an agent key, and the agent uses it with the real SDK.
        as_keys = {"Authorization": f"Bearer {keys_token}"}
        key = requests.post(api + "/agent-keys", headers=as_keys,
                            json={"name": "bot", "credential_ids": [credential], "access": "read"})
        assert key.status_code == 201, key.text
        client = openai.OpenAI(api_key=key.json()["key"], base_url=server.url + "/proxy/openai/v1", max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        # ...but it changes nothing else, and no token is an agent key at the gateway.
        assert requests.delete(f"{api}/credentials/{credential}", headers=as_keys).json()["code"] == "token_scope"
        assert requests.post(api + "/tokens", headers=as_keys, json={"name": "n", "scope": "read"}).status_code == 403
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(api_key=keys_token, base_url=server.url + "/proxy/openai/v1", max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert len(upstream.requests) == 1

        # read: reads only.
        as_read = {"Authorization": f"Bearer {read_token}"}
        assert requests.get(api + "/audit", headers=as_read).status_code == 200
        assert requests.get(api + "/agent-keys", headers=as_read).json()["agent_keys"][0]["name"] == "bot"
        refused = requests.put(api + "/profile", headers=as_read, json={"risk": {"max_leg_usd": 1}})
        assert refused.status_code == 403 and refused.json()["code"] == "token_scope"

        # Listed by the CLI without the tokens; revoked there, refused at once.
        listed = cli(home, "token", "list")
        assert listed.returncode == 0 and "nightly keys" in listed.stdout and "wdp_" not in listed.stdout
        token_id = next(line.split()[0] for line in listed.stdout.splitlines() if "report" in line)
        assert cli(home, "token", "revoke", token_id).returncode == 0
        assert requests.get(api + "/audit", headers=as_read).status_code == 401
        assert cli(home, "token", "revoke", "../../credentials").returncode != 0

        # Neither token is in the store or the log.
        server.stop()
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
        for token in (keys_token, read_token):
            assert token[4:].encode() not in stored
            assert token[4:] not in server.output()
    finally:
        upstream.stop()
