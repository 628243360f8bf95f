"""Alarms, the kill switch and honey tokens, end to end.

The kill switch stops every agent key in a scope on every server sharing the store; a honey token (a decoy key)
is refused exactly like an unknown key, freezes its owner and raises an alarm; alarms are raised from audit
rows by a running `warden serve` and delivered to webhook, Slack, Discord and Telegram channels, retried with
backoff and kept in the store across a restart. The oracles are what local fake receivers (all on 127.0.0.1)
were sent, what the fake upstream service received, and the management API's own records.
"""
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import textwrap
import time

import pytest
import requests

import fakes
from conftest import BINARY, clean_env, free_port, warden

OWNER, OWNER_PASSWORD = "owner@example.com", "owner-password-1"
ADMIN, ADMIN_PASSWORD = "admin@example.com", "admin-password-1"

WEBHOOK_SECRET = "whsec-PLANTED-signing-secret-0001"
TELEGRAM_TOKEN = "123456:ABC-DEF_test"
TELEGRAM_CHAT = "-1001234567890"
SLACK_PATH = "/services/T000/B000/XXXXPLANTEDslackPath"
DISCORD_PATH = "/api/webhooks/1234/PLANTEDdiscordPath"

# How long a running server takes to raise and deliver an alarm (it looks every second), with room to spare.
DELIVERY = 5
# How long a second look must stay quiet to call a delivery unduplicated.
QUIET = 2.5


# --------------------------------------------------------------------------------------------------- helpers

def wait_until(predicate, timeout, message):
    """Polls `predicate` until it returns something true; its value, or an AssertionError with `message`."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(message() if callable(message) else message)
        time.sleep(0.05)


class Receiver:
    """A local alarm receiver: records every request (with the status it answered) and answers `status`
    (None: holds the request open for `hang` seconds, as a stalled endpoint does)."""

    def __init__(self, status=200, hang=20):
        self.status, self.hang = status, hang
        self.fake = fakes.Fake(self._answer)
        self.url = self.fake.url

    def _answer(self, h, body):
        status = self.status
        h.record["status"] = status
        if status is None:
            time.sleep(self.hang)
            return
        fakes.send_json(h, status, {"ok": status < 300})

    @property
    def requests(self):
        return self.fake.requests

    def delivered(self):
        """The requests answered with a 2xx."""
        return [r for r in list(self.requests) if 200 <= (r.get("status") or 0) < 300]

    def messages(self):
        return [json.loads(r["body"]) for r in self.delivered()]

    def stop(self):
        self.fake.stop()


def webhook_events(receiver):
    return [m["event"] for m in receiver.messages()]


def verify_signature(record, secret=WEBHOOK_SECRET):
    """The webhook's signature: sha256=HMAC-SHA256(secret, "<timestamp>.<raw body>"), hex."""
    timestamp = record["headers"]["x-warden-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + record["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(record["headers"]["x-warden-signature"], expected)


SERVICE = """[services.open]
base_url = "{url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

"""


class World:
    """A config with a REST service (`open`, a fake that accepts only REAL_SERVICE_TOKEN) and the given
    `[notify.*]` channels; an owner and an administrator; the channels' secrets (`sealed`, by channel name) set
    with `warden notify set`; a running server; the owner's credential and agent key."""

    def __init__(self, start, tmp_path, env, notify="", sealed=None, extra_config=""):
        self.start, self.env = start, env
        self.upstream = fakes.Fake(fakes.service_handler)
        self.config = tmp_path / "warden.toml"
        self.config.write_text(SERVICE.format(url=self.upstream.url) + extra_config + textwrap.dedent(notify))
        self.data = tmp_path / "data"
        self.home = tmp_path / "config-home"
        self.tmp = tmp_path
        for email, password, admin in ((OWNER, OWNER_PASSWORD, False), (ADMIN, ADMIN_PASSWORD, True)):
            self.cli("user", "create", email, password, "--no-reset", *(["--admin"] if admin else []))
        for name, secret in (sealed or {}).items():
            self.cli("notify", "set", name, input=secret)
        self.server = self.serve()
        self.api = self.server.url + "/api/v1"
        self.owner = self.login(OWNER, OWNER_PASSWORD)
        self.admin = self.login(ADMIN, ADMIN_PASSWORD)
        self.owner_id = requests.get(self.api + "/me", headers=self.owner).json()["id"]
        r = requests.post(self.api + "/credentials", headers=self.owner,
                          json={"venue": "open", "label": "open", "secret": {"token": fakes.REAL_SERVICE_TOKEN}})
        assert r.status_code == 201, r.text
        self.credential = r.json()["id"]
        self.key = self.agent_key()

    def cli(self, *args, input=None, ok=True):
        done = warden(*args, "--data-dir", str(self.data), "--config", str(self.config), env=self.env, input=input)
        if ok:
            assert done.returncode == 0, f"warden {' '.join(args)}: {done.stderr}"
        return done

    def serve(self):
        """Another `warden serve` on the same store."""
        return self.start(self.env, data_dir=self.data, args=("--config", str(self.config)))

    def login(self, email, password, server=None):
        r = requests.post((server or self.server).url + "/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def agent_key(self):
        r = requests.post(self.api + "/agent-keys", headers=self.owner,
                          json={"name": "bot", "credential_ids": [self.credential], "access": "trade"})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    def honey(self, kind="agent_key", label="decoy"):
        r = requests.post(self.api + "/honey-tokens", headers=self.owner, json={"label": label, "kind": kind})
        assert r.status_code == 201, r.text
        return r.json()

    def alarms(self):
        r = requests.get(self.api + "/alarms", headers=self.admin)
        assert r.status_code == 200, r.text
        return r.json()["alarms"]

    def alarm(self, alarm_id):
        return next((a for a in self.alarms() if a["id"] == alarm_id), None)

    def close(self):
        self.upstream.stop()


def call(server, key, header="X-Warden-Key", path="/proxy/open/items"):
    """A gateway call to the `open` service with `key` in X-Warden-Key, or in the service's own auth header."""
    headers = {"X-Api-Token": f"token {key}"} if header == "service" else {header: key}
    return requests.get(server.url + path, headers=headers)


def mint(server, key):
    return requests.post(server.url + "/api/v1/agent-keys/child", headers={"X-Warden-Key": key}, json={"ttl_seconds": 600})


def assert_frozen(server, key):
    r = call(server, key)
    assert r.status_code == 403 and "frozen" in r.text, f"a frozen key's call was answered {r.status_code}: {r.text}"


@pytest.fixture
def world(start, tmp_path, master_key):
    made = []

    def make(notify="", sealed=None, env=None, extra_config=""):
        w = World(start, tmp_path, env or {"WARDEN_MASTER_KEY": master_key}, notify, sealed, extra_config)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


@pytest.fixture
def receivers():
    """Receivers made with `receivers(status)`, all stopped at the end of the test."""
    made = []

    def make(status=200, **kwargs):
        made.append(Receiver(status, **kwargs))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def store_env(request, master_key):
    """The store both servers and the CLI share: SQLite in the data directory, or a fresh PostgreSQL database
    (when WARDEN_TEST_POSTGRES_URL is set, as scripts/with-postgres does)."""
    env = {"WARDEN_MASTER_KEY": master_key}
    if request.param == "postgres":
        base = os.environ.get("WARDEN_TEST_POSTGRES_URL")
        if not base:
            pytest.skip("needs PostgreSQL (scripts/with-postgres)")
        name = f"warden_alarm_{os.getpid()}_{int(time.time() * 1000) % 1000000}"
        subprocess.run(["psql", base.split("?")[0], "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
        env["WARDEN_DATABASE_URL"] = base.replace("/warden?", f"/{name}?")
    return env


# ------------------------------------------------------------------------------------------ 1. every channel

def test_every_channel_kind_gets_one_kill_switch_alarm(world, receivers):
    hook, slack, discord, telegram = receivers(), receivers(), receivers(), receivers()
    w = world(notify=f"""
        [notify.hook]
        kind = "webhook"
        url = "{hook.url}/alarms"
        min_severity = "warning"

        [notify.slack]
        kind = "slack"
        events = ["kill_switch", "honey_token_used"]

        [notify.disc]
        kind = "discord"
        min_severity = "critical"

        [notify.tg]
        kind = "telegram"
        chat_id = "{TELEGRAM_CHAT}"
        base_url = "{telegram.url}"
        events = ["kill_switch"]
        """, sealed={"hook": WEBHOOK_SECRET, "slack": slack.url + SLACK_PATH, "disc": discord.url + DISCORD_PATH,
                      "tg": TELEGRAM_TOKEN})
    listed = w.cli("notify", "list").stdout
    for name, kind in (("hook", "webhook"), ("slack", "slack"), ("disc", "discord"), ("tg", "telegram")):
        line = next((l for l in listed.splitlines() if l.startswith(name + "\t")), "")
        assert kind in line and "secret set" in line, f"notify list: {listed!r}"
    for secret in (WEBHOOK_SECRET, SLACK_PATH, DISCORD_PATH, TELEGRAM_TOKEN):
        assert secret not in listed, "notify list printed a channel's secret"
    assert call(w.server, w.key).status_code == 200

    # The operator's kill switch, from the host, while the server runs.
    frozen = w.cli("freeze", "--user", OWNER, "--reason", "incident 42")
    assert f"user:{w.owner_id}" in frozen.stdout, frozen.stdout
    channels = {"hook": hook, "slack": slack, "disc": discord, "tg": telegram}
    wait_until(lambda: all(r.delivered() for r in channels.values()), DELIVERY,
               lambda: "not every channel got the alarm: " + json.dumps({n: len(r.requests) for n, r in channels.items()}))
    time.sleep(QUIET)
    for name, receiver in channels.items():
        assert len(receiver.requests) == 1, f"{name} got {len(receiver.requests)} requests for one alarm"
    assert_frozen(w.server, w.key)

    # The generic webhook: the alarm as JSON, signed over "<timestamp>.<body>" with the sealed secret.
    record = hook.requests[0]
    assert record["method"] == "POST" and record["path"] == "/alarms"
    assert record["headers"]["content-type"].startswith("application/json")
    message = json.loads(record["body"])
    assert set(message) == {"id", "event", "severity", "summary", "at", "detail"}, message
    assert message["event"] == "kill_switch" and message["severity"] == "critical", message
    assert message["detail"]["scope"] == f"user:{w.owner_id}" and message["detail"]["reason"] == "incident 42", message
    assert "incident 42" in message["summary"] and OWNER in message["summary"], message
    assert record["headers"]["x-warden-alarm-id"] == message["id"]
    assert verify_signature(record), "the webhook's signature does not verify with the signing secret"
    assert not verify_signature(record, secret=WEBHOOK_SECRET + "x")
    assert abs(int(record["headers"]["x-warden-timestamp"]) - time.time()) < 60
    text = f"[Warden critical] {message['summary']}"

    # The chat channels: each its own shape, at the secret URL (Telegram: the token in the Bot API path).
    # Slack: its control characters escaped and formatting off; Discord: a code block, no mentions.
    slack_text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert slack.requests[0]["path"] == SLACK_PATH
    assert json.loads(slack.requests[0]["body"]) == {"text": slack_text, "mrkdwn": False}
    assert discord.requests[0]["path"] == DISCORD_PATH
    assert json.loads(discord.requests[0]["body"]) == {"content": f"```\n{text}\n```", "allowed_mentions": {"parse": []}}
    assert telegram.requests[0]["path"] == f"/bot{TELEGRAM_TOKEN}/sendMessage", telegram.requests[0]["path"]
    assert json.loads(telegram.requests[0]["body"]) == {"chat_id": TELEGRAM_CHAT, "text": text}

    # The API's record: every delivery delivered, on the first attempt. Administrators only.
    alarm = w.alarm(message["id"])
    assert alarm and alarm["event"] == "kill_switch" and alarm["severity"] == "critical" and alarm["summary"] == message["summary"]
    assert alarm["detail"] == message["detail"]
    assert sorted(d["channel"] for d in alarm["deliveries"]) == ["disc", "hook", "slack", "tg"], alarm
    for d in alarm["deliveries"]:
        assert d["state"] == "delivered" and d["attempts"] == 1 and d["delivered_at"] and d.get("next_attempt_at") is None, d
    denied = requests.get(w.api + "/alarms", headers=w.owner)
    assert denied.status_code == 403 and denied.json()["code"] == "not_admin", denied.text

    # Routing: the lift is a warning (only the webhook takes warnings); a test alarm goes to the channel named.
    w.cli("unfreeze", "--user", OWNER)
    w.cli("notify", "test", "tg")
    wait_until(lambda: len(hook.delivered()) == 2 and len(telegram.delivered()) == 2, DELIVERY,
               lambda: f"hook {len(hook.requests)}, tg {len(telegram.requests)}")
    time.sleep(QUIET)
    assert webhook_events(hook) == ["kill_switch", "kill_switch_lifted"]
    assert json.loads(hook.requests[1]["body"])["severity"] == "warning"
    assert len(slack.requests) == 1 and len(discord.requests) == 1, "a channel got an event it is not routed"
    assert json.loads(telegram.requests[1]["body"])["text"].startswith("[Warden info] Test alarm")
    assert call(w.server, w.key).status_code == 200


# -------------------------------------------------------------------------------------------- 2. honey tokens

def test_a_honey_token_is_refused_like_an_unknown_key_alarms_and_freezes_its_owner(world, receivers):
    hook = receivers()
    w = world(notify=f"""
        [notify.hook]
        kind = "webhook"
        url = "{hook.url}/h"
        events = ["honey_token_used"]
        """, sealed={"hook": WEBHOOK_SECRET})
    assert call(w.server, w.key).status_code == 200
    decoy = w.honey(label="canary-in-env")
    assert decoy["token"].startswith("wdn_") and decoy["kind"] == "agent_key"
    listed = requests.get(w.api + "/honey-tokens", headers=w.owner).json()["honey_tokens"]
    assert [t["id"] for t in listed] == [decoy["id"]] and "token" not in listed[0], listed
    for kind, shape in (("openai", r"sk-proj-[A-Za-z0-9_-]{20,}"), ("anthropic", r"sk-ant-api03-[A-Za-z0-9_-]{20,}"),
                        ("binance", r"[A-Za-z0-9]{64}")):
        made = w.honey(kind=kind, label=f"shape-{kind}")
        assert re.fullmatch(shape, made["token"]), (kind, made["token"])
        assert requests.delete(w.api + f"/honey-tokens/{made['id']}", headers=w.owner).status_code == 204
    sent = len(w.upstream.requests)

    # Refused exactly as a made-up key is: same status, same body.
    made_up = call(w.server, "wdn_" + secrets.token_urlsafe(32))
    honey = call(w.server, decoy["token"])
    assert made_up.status_code == 401 and honey.status_code == 401, (made_up.text, honey.text)
    assert honey.content == made_up.content, f"the decoy's refusal differs: {honey.text} vs {made_up.text}"
    assert honey.headers["content-type"] == made_up.headers["content-type"]

    # Its owner's keys are frozen, by the decoy; nothing reached the service.
    time.sleep(0.3)
    assert_frozen(w.server, w.key)
    assert len(w.upstream.requests) == sent, "a call with a decoy or a frozen key reached the service"
    freezes = requests.get(w.api + "/freeze", headers=w.owner).json()["freezes"]
    assert [(f["scope"], f["frozen_by"]) for f in freezes] == [(f"user:{w.owner_id}", f"honey:{decoy['id']}")], freezes

    # The owner sees the refused call in the audit log, with the alarm, the caller's address and the decoy's id.
    entries = requests.get(w.api + "/audit", headers=w.owner, params={"action": "gateway.refuse"}).json()["entries"]
    rows = [e for e in entries if e["detail"] and json.loads(e["detail"]).get("alarm") == "honey_token_used"]
    assert len(rows) == 1, entries
    detail = json.loads(rows[0]["detail"])
    assert detail["honey_token"] == decoy["id"] and detail["client"] == "127.0.0.1", detail
    assert decoy["token"] not in json.dumps(entries)

    # The alarm: critical, naming the decoy and the caller's address, never the token.
    wait_until(lambda: hook.delivered(), DELIVERY, "no honey_token_used alarm was delivered")
    message = hook.messages()[0]
    assert message["event"] == "honey_token_used" and message["severity"] == "critical", message
    assert message["detail"]["honey_token"] == decoy["id"] and message["detail"]["client"] == "127.0.0.1", message
    assert decoy["token"] not in hook.requests[0]["body"].decode()

    # The owner, a person, lifts a freeze a decoy set; the real key works again.
    lifted = requests.post(w.api + "/unfreeze", headers=w.owner, json={})
    assert lifted.status_code == 200 and lifted.json() == {"scope": f"user:{w.owner_id}", "changed": True}, lifted.text
    assert call(w.server, w.key).status_code == 200

    # An OpenAI-shaped decoy, presented where the service takes its own key, trips the same way.
    openai_decoy = w.honey(kind="openai", label="openai-decoy")
    made_up = call(w.server, "sk-proj-" + secrets.token_urlsafe(36), header="service")
    honey = call(w.server, openai_decoy["token"], header="service")
    assert honey.status_code == 401 and honey.content == made_up.content, (honey.text, made_up.text)
    time.sleep(0.3)
    assert_frozen(w.server, w.key)
    wait_until(lambda: len(hook.delivered()) == 2, DELIVERY, "the OpenAI decoy raised no alarm")
    assert hook.messages()[1]["detail"]["honey_token"] == openai_decoy["id"]
    assert openai_decoy["token"] not in hook.requests[1]["body"].decode()
    assert requests.post(w.api + "/unfreeze", headers=w.owner, json={}).status_code == 200

    # A deleted decoy is an unknown key like any other: it no longer freezes anything.
    assert requests.delete(w.api + f"/honey-tokens/{openai_decoy['id']}", headers=w.owner).status_code == 204
    assert call(w.server, openai_decoy["token"], header="service").status_code == 401
    time.sleep(0.3)
    assert call(w.server, w.key).status_code == 200
    assert len(w.upstream.requests) == sent + 2, "a decoy's or a frozen key's call reached the service"
    time.sleep(QUIET)
    assert len(hook.requests) == 2, webhook_events(hook)


# -------------------------------------------------------------------------------------- 3. restart, undelivered

def test_an_undelivered_alarm_survives_a_restart_and_arrives_once(world, receivers):
    hook = receivers(status=500)
    w = world(notify=f"""
        [notify.hook]
        kind = "webhook"
        url = "{hook.url}/h"
        """, sealed={"hook": WEBHOOK_SECRET})
    w.cli("freeze", "--user", OWNER)
    wait_until(lambda: hook.requests, DELIVERY, "the first attempt never reached the receiver")

    def first_attempt_recorded():
        alarms = w.alarms()
        d = alarms[0]["deliveries"][0] if alarms and alarms[0]["deliveries"] else None
        return d if d and d["attempts"] == 1 and d["last_error"] else None
    delivery = wait_until(first_attempt_recorded, DELIVERY, "the failed attempt was not recorded")
    assert delivery["state"] == "pending" and "500" in delivery["last_error"] and delivery["next_attempt_at"], delivery
    assert w.server.stop() == 0

    hook.status = 200
    w.server = w.serve()
    w.api = w.server.url + "/api/v1"
    w.admin = w.login(ADMIN, ADMIN_PASSWORD)
    wait_until(lambda: hook.delivered(), 15, lambda: f"not delivered after the restart: {w.alarms()}")
    time.sleep(QUIET)
    assert len(hook.delivered()) == 1 and len(hook.requests) == 2, [r.get("status") for r in hook.requests]
    first, second = (json.loads(r["body"]) for r in hook.requests)
    assert first["id"] == second["id"] and second["event"] == "kill_switch"
    assert verify_signature(hook.requests[1])
    alarms = w.alarms()
    assert len(alarms) == 1, alarms
    (delivery,) = alarms[0]["deliveries"]
    assert delivery["state"] == "delivered" and delivery["attempts"] == 2, delivery


# -------------------------------------------------------------------------------------- 4. a dead channel

def test_a_dead_channel_does_not_hold_up_the_others(world, receivers):
    live = receivers()
    dead_port = free_port()  # nothing listens there
    w = world(notify=f"""
        [notify.dead]
        kind = "webhook"
        url = "http://127.0.0.1:{dead_port}/h"

        [notify.live]
        kind = "discord"
        """, sealed={"dead": WEBHOOK_SECRET, "live": live.url + DISCORD_PATH})
    started = time.time()
    w.cli("freeze", "--user", OWNER)
    wait_until(lambda: live.delivered(), DELIVERY, "the working channel did not get the alarm")
    assert time.time() - started < DELIVERY

    def dead_attempted():
        alarm = w.alarms()[0]
        return {d["channel"]: d for d in alarm["deliveries"]} if any(d["attempts"] for d in alarm["deliveries"]
                                                                       if d["channel"] == "dead") else None
    deliveries = wait_until(dead_attempted, DELIVERY, "the dead channel was never tried")
    assert deliveries["live"]["state"] == "delivered", deliveries
    dead = deliveries["dead"]
    assert dead["state"] == "pending" and dead["attempts"] == 1 and dead["last_error"] and dead["next_attempt_at"], dead
    # Another alarm while the dead channel waits out its backoff: the working one gets it just as promptly.
    w.cli("unfreeze", "--user", OWNER)
    wait_until(lambda: len(live.delivered()) == 2, DELIVERY, "the second alarm was held up")
    assert "Kill switch lifted" in live.messages()[1]["content"]


# -------------------------------------------------------------------------------------- 5. no secret in messages

def test_no_message_and_no_log_line_carries_a_secret(world, receivers):
    hook, slack, telegram = receivers(), receivers(), receivers()
    dead_slack_path = "/services/T111/B111/PLANTEDdeadSlackPath"
    w = world(notify=f"""
        [notify.hook]
        kind = "webhook"
        url = "{hook.url}/h"
        min_severity = "info"

        [notify.slack]
        kind = "slack"
        min_severity = "info"

        [notify.tg]
        kind = "telegram"
        chat_id = "{TELEGRAM_CHAT}"
        base_url = "{telegram.url}"
        min_severity = "info"

        [notify.deadslack]
        kind = "slack"
        min_severity = "info"
        """, sealed={"hook": WEBHOOK_SECRET, "slack": slack.url + SLACK_PATH, "tg": TELEGRAM_TOKEN,
                      "deadslack": f"http://127.0.0.1:{free_port()}{dead_slack_path}"})
    rotated_token = "ghp_rotated_PLANTED_0004"
    wrong_password = "guess-PLANTED-password-0005"
    assert call(w.server, w.key, header="service").status_code == 200
    decoy = w.honey(label="decoy")
    openai_decoy = w.honey(kind="openai", label="openai-decoy")
    # A decoy used with secrets in the query string: the log keeps no query string, so no alarm carries it.
    leak = f"?api_key={w.key}&token={fakes.REAL_SERVICE_TOKEN}"
    assert call(w.server, decoy["token"], path="/proxy/open/items" + leak).status_code == 401
    assert requests.post(w.api + "/unfreeze", headers=w.owner, json={}).status_code == 200
    assert call(w.server, openai_decoy["token"], header="service", path="/proxy/open/x" + leak).status_code == 401
    assert requests.post(w.api + "/unfreeze", headers=w.owner, json={}).status_code == 200
    r = requests.patch(w.api + f"/credentials/{w.credential}", headers=w.owner, json={"secret": {"token": rotated_token}})
    assert r.status_code == 200, r.text
    assert requests.delete(w.api + f"/credentials/{w.credential}", headers=w.owner).status_code == 204
    for _ in range(5):
        assert requests.post(w.api + "/auth/login", json={"email": OWNER, "password": wrong_password}).status_code == 401
    w.cli("notify", "test")
    expected = {"honey_token_used", "kill_switch", "kill_switch_lifted", "credential_rotated", "credential_deleted",
                "failed_logins", "test"}
    wait_until(lambda: expected <= set(webhook_events(hook)) and len(slack.delivered()) == len(hook.delivered())
               and len(telegram.delivered()) == len(hook.delivered()), 2 * DELIVERY,
               lambda: f"events delivered: {webhook_events(hook)}; slack {len(slack.requests)}, tg {len(telegram.requests)}")
    assert len(hook.delivered()) == 10, webhook_events(hook)  # honey and freeze twice each, two lifts, 4 more

    planted = {"the service credential": fakes.REAL_SERVICE_TOKEN, "the rotated credential": rotated_token,
               "the agent key": w.key, "the decoy": decoy["token"], "the OpenAI decoy": openai_decoy["token"],
               "the webhook signing secret": WEBHOOK_SECRET, "the Slack URL's secret path": SLACK_PATH.rsplit("/", 1)[1],
               "the dead Slack URL's secret path": dead_slack_path.rsplit("/", 1)[1],
               "the Telegram bot token": TELEGRAM_TOKEN.split(":")[1], "a guessed password": wrong_password,
               "the owner's password": OWNER_PASSWORD}
    for receiver in (hook, slack, telegram):
        for record in receiver.requests:
            sent = record["body"].decode() + json.dumps({k: v for k, v in record["headers"].items()})
            for what, value in planted.items():
                assert value not in sent, f"an alarm to {receiver.url}{record['path']} carried {what}: {sent}"
    log = w.server.output()
    assert "alarm not delivered" in log, "the dead channel's failure was not logged"
    for what, value in planted.items():
        assert value not in log, f"the server log carried {what}"


# ------------------------------------------------------------------------------ 6. two servers, one store

def test_a_freeze_stops_every_key_on_every_server_and_only_a_person_lifts_it(world, store_env):
    w = world(env=store_env)
    a, b = w.server, w.serve()
    api_a, api_b = a.url + "/api/v1", b.url + "/api/v1"
    admin_b = w.login(ADMIN, ADMIN_PASSWORD, server=b)
    owner_b = w.login(OWNER, OWNER_PASSWORD, server=b)
    for server in (a, b):
        assert call(server, w.key).status_code == 200  # each server holds the key in its cache
    sent = len(w.upstream.requests)

    r = requests.post(api_a + "/freeze", headers=w.admin, json={"all": True, "reason": "drill"})
    assert r.status_code == 201 and r.json() == {"scope": "all", "changed": True}, r.text
    again = requests.post(api_a + "/freeze", headers=w.admin, json={"all": True})
    assert again.status_code == 200 and again.json() == {"scope": "all", "changed": False}, again.text
    assert_frozen(a, w.key)
    time.sleep(0.3)
    assert_frozen(b, w.key)
    assert len(w.upstream.requests) == sent, "a frozen key's call reached the service"
    freezes = requests.get(api_b + "/freeze", headers=owner_b).json()["freezes"]
    assert [(f["scope"], f["reason"]) for f in freezes] == [("all", "drill")] and freezes[0]["frozen_at"], freezes

    # Not for a non-admin: freezing or lifting all keys, or lifting an administrator's freeze of their own keys.
    assert requests.post(api_b + "/freeze", headers=owner_b, json={"all": True}).status_code == 403
    assert requests.post(api_b + "/freeze", headers=owner_b, json={"email": ADMIN}).status_code == 403
    assert requests.post(api_b + "/unfreeze", headers=owner_b, json={"all": True}).status_code == 403
    # Never for an agent key, however it is presented.
    for headers in ({"X-Warden-Key": w.key}, {"Authorization": f"Bearer {w.key}"}):
        for method, path, body in (("POST", "/unfreeze", {"all": True}), ("POST", "/unfreeze", {}),
                                   ("POST", "/freeze", {}), ("GET", "/freeze", None)):
            r = requests.request(method, api_b + path, headers=headers, json=body)
            assert r.status_code == 401, f"an agent key's {method} {path}: {r.status_code} {r.text}"
    assert_frozen(b, w.key)

    lifted = requests.post(api_b + "/unfreeze", headers=admin_b, json={"all": True})
    assert lifted.status_code == 200 and lifted.json() == {"scope": "all", "changed": True}, lifted.text
    assert call(b, w.key).status_code == 200
    time.sleep(0.3)
    assert call(a, w.key).status_code == 200

    # An administrator's freeze of one user, set on A: the user cannot lift it on B; the administrator can.
    scope = f"user:{w.owner_id}"
    r = requests.post(api_a + "/freeze", headers=w.admin, json={"email": OWNER})
    assert r.status_code == 201 and r.json()["scope"] == scope, r.text
    time.sleep(0.3)
    assert_frozen(b, w.key)
    refused = requests.post(api_b + "/unfreeze", headers=owner_b, json={})
    assert refused.status_code == 403 and refused.json()["code"] == "frozen_by_admin", refused.text
    assert_frozen(b, w.key)
    assert requests.post(api_b + "/unfreeze", headers=admin_b, json={"email": OWNER}).json()["changed"] is True
    # The operator's (CLI) freeze is likewise beyond the user.
    w.cli("freeze", "--user", OWNER, "--reason", "from the host")
    listed = w.cli("freeze", "--list").stdout
    assert scope in listed and "cli" in listed and "from the host" in listed, listed
    time.sleep(0.3)
    assert_frozen(a, w.key)
    refused = requests.post(api_a + "/unfreeze", headers=w.owner, json={})
    assert refused.status_code == 403 and refused.json()["code"] == "frozen_by_admin", refused.text
    assert "lifted" in w.cli("unfreeze", "--user", OWNER).stdout
    time.sleep(0.3)
    assert call(a, w.key).status_code == 200 and call(b, w.key).status_code == 200
    assert "no freeze in force" in w.cli("freeze", "--list").stdout

    # A user may freeze their own keys and lift that freeze.
    mine = requests.post(api_b + "/freeze", headers=owner_b, json={"reason": "stepping away"})
    assert mine.status_code == 201 and mine.json()["scope"] == scope, mine.text
    time.sleep(0.3)
    assert_frozen(a, w.key)
    assert requests.post(api_a + "/unfreeze", headers=w.owner, json={}).json() == {"scope": scope, "changed": True}
    time.sleep(0.3)
    assert call(b, w.key).status_code == 200


# -------------------------------------------------------------------------------------- 7. warden run --honey

DUMP_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"


def test_warden_run_honey_gives_decoys_that_trip_the_freeze(world, receivers):
    hook = receivers()
    w = world(notify=f"""
        [notify.hook]
        kind = "webhook"
        url = "{hook.url}/h"
        events = ["honey_token_used"]
        """, sealed={"hook": WEBHOOK_SECRET})
    env = clean_env({"WARDEN_URL": w.server.url, "XDG_CONFIG_HOME": str(w.home)})
    login = subprocess.run([str(BINARY), "login", OWNER, "--password-stdin"], input=OWNER_PASSWORD + "\n",
                           env=env, capture_output=True, text=True, timeout=30)
    assert login.returncode == 0, login.stderr
    out = w.tmp / "env.json"
    ran = subprocess.run([str(BINARY), "run", "--honey", "--venue", "open", "--", sys.executable, "-c", DUMP_ENV, str(out)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    child = json.loads(out.read_text())
    assert child["WARDEN_ADMIN_KEY"].startswith("wdn_"), child.get("WARDEN_ADMIN_KEY")
    assert child["OPENAI_ADMIN_KEY"].startswith("sk-proj-")
    assert child["ANTHROPIC_ADMIN_KEY"].startswith("sk-ant-api03-")
    assert re.fullmatch(r"[A-Za-z0-9]{64}", child["BINANCE_API_KEY"]) and re.fullmatch(r"[A-Za-z0-9]{64}", child["BINANCE_API_SECRET"])
    assert child["WARDEN_OPEN_API_KEY"].startswith("wdn_") and child["WARDEN_OPEN_API_KEY"] != child["WARDEN_ADMIN_KEY"]
    tokens = requests.get(w.api + "/honey-tokens", headers=w.owner).json()["honey_tokens"]
    assert sorted(t["kind"] for t in tokens) == ["agent_key", "anthropic", "binance", "openai"], tokens
    assert call(w.server, w.key).status_code == 200
    sent = len(w.upstream.requests)

    # The leaked "admin key" used through the gateway: refused like any unknown key, and the owner is frozen.
    r = call(w.server, child["WARDEN_ADMIN_KEY"])
    assert r.status_code == 401, r.text
    time.sleep(0.3)
    assert_frozen(w.server, w.key)
    assert len(w.upstream.requests) == sent
    freezes = requests.get(w.api + "/freeze", headers=w.owner).json()["freezes"]
    decoy_id = next(t["id"] for t in tokens if t["kind"] == "agent_key")
    assert [(f["scope"], f["frozen_by"]) for f in freezes] == [(f"user:{w.owner_id}", f"honey:{decoy_id}")], freezes
    wait_until(lambda: hook.delivered(), DELIVERY, "no alarm for the run's decoy")
    assert hook.messages()[0]["detail"]["honey_token"] == decoy_id
    # Another of the run's decoys, in the service's own header, is a honey token too.
    assert requests.post(w.api + "/unfreeze", headers=w.owner, json={}).status_code == 200
    assert call(w.server, child["ANTHROPIC_ADMIN_KEY"], header="service").status_code == 401
    time.sleep(0.3)
    assert_frozen(w.server, w.key)
    wait_until(lambda: len(hook.delivered()) == 2, DELIVERY, "no alarm for the run's Anthropic decoy")


# -------------------------------------------------------------------------------------- 8. fund movement

def test_a_refused_withdrawal_raises_fund_movement_attempted(world, receivers):
    fx = pytest.importorskip("fake_exchanges")
    binance = fx.binance()
    try:
        funds, other = receivers(), receivers()
        w = world(extra_config=f'[venues.binance]\nbase_url = "{binance.url}"\n\n', notify=f"""
            [notify.funds]
            kind = "webhook"
            url = "{funds.url}/h"
            events = ["fund_movement_attempted"]

            [notify.other]
            kind = "webhook"
            url = "{other.url}/h"
            events = ["kill_switch"]
            """, sealed={"funds": WEBHOOK_SECRET, "other": WEBHOOK_SECRET})
        r = requests.post(w.api + "/credentials", headers=w.owner, json={
            "venue": "binance", "label": "binance", "secret": {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET}})
        assert r.status_code == 201, r.text
        key = requests.post(w.api + "/agent-keys", headers=w.owner, json={
            "name": "trader", "credential_ids": [r.json()["id"]], "access": "trade"}).json()["key"]
        params = f"coin=USDT&network=ETH&address=0x{'1' * 40}&amount=100&recvWindow=5000&timestamp={int(time.time() * 1000)}"
        form = params + "&signature=" + hmac.new(b"agent-throwaway-secret", params.encode(), hashlib.sha256).hexdigest()
        refused = requests.post(w.server.url + "/proxy/binance/sapi/v1/capital/withdraw/apply", data=form,
                                headers={"X-MBX-APIKEY": key, "Content-Type": "application/x-www-form-urlencoded"})
        assert refused.status_code == 403 and "fund movement" in refused.json()["msg"], refused.text
        assert not binance.requests, "the withdrawal reached the exchange"
        wait_until(lambda: funds.delivered(), DELIVERY, "no fund_movement_attempted alarm")
        message = funds.messages()[0]
        assert message["event"] == "fund_movement_attempted" and message["severity"] == "critical", message
        assert message["detail"]["venue"] == "binance" and message["detail"]["path"] == "/sapi/v1/capital/withdraw/apply", message
        assert message["detail"]["method"] == "POST" and OWNER in message["summary"], message
        assert verify_signature(funds.requests[0])
        assert key not in funds.requests[0]["body"].decode() and fx.REAL_BINANCE_SECRET not in funds.requests[0]["body"].decode()
        time.sleep(QUIET)
        assert len(funds.requests) == 1 and not other.requests, "an alarm went to a channel not routed to it"
    finally:
        binance.stop()


# ------------------------------------------------------------------------ channels' configuration and secrets

def test_channel_addresses_and_secrets_are_checked(tmp_path, master_key):
    """Plain http only to this host, in the config and in a sealed webhook URL; each kind's secret in its shape.
    Nothing is sent: no server runs."""
    env = {"WARDEN_MASTER_KEY": master_key}
    data, config = tmp_path / "data", tmp_path / "warden.toml"

    def notify(*args, input=None):
        return warden("notify", *args, "--data-dir", str(data), "--config", str(config), env=env, input=input)

    config.write_text('[notify.hook]\nkind = "webhook"\nurl = "http://10.0.0.1/h"\n')
    refused = notify("list")
    assert refused.returncode != 0 and "notify.hook.url" in refused.stderr and "https" in refused.stderr, refused.stderr
    config.write_text('[notify.hook]\nkind = "telegram"\n')
    refused = notify("list")
    assert refused.returncode != 0 and "chat_id" in refused.stderr, refused.stderr

    config.write_text(textwrap.dedent("""
        [notify.hook]
        kind = "webhook"
        url = "http://127.0.0.1:9/h"

        [notify.slack]
        kind = "slack"

        [notify.tg]
        kind = "telegram"
        chat_id = "1"
        """))
    for channel, secret in (("hook", "too-short"), ("slack", "http://hooks.example.com/services/T/B/X"),
                            ("slack", "ftp://127.0.0.1/services/T/B/X"), ("tg", "no-colon-here"), ("tg", "1:a/b"),
                            ("nosuch", WEBHOOK_SECRET)):
        done = notify("set", channel, input=secret)
        assert done.returncode != 0, f"notify set {channel} accepted {secret!r}"
        assert secret not in done.stdout + done.stderr, "the refusal echoed the secret"
    assert all("NO SECRET" in line for line in notify("list").stdout.splitlines()), notify("list").stdout
    for channel, secret in (("hook", WEBHOOK_SECRET), ("slack", "https://127.0.0.1:9/services/T/B/X"), ("tg", TELEGRAM_TOKEN)):
        done = notify("set", channel, input=secret + "\n")
        assert done.returncode == 0, done.stderr
        assert secret not in done.stdout + done.stderr
    listed = notify("list").stdout
    assert listed.count("secret set") == 3 and "NO SECRET" not in listed, listed


# -------------------------------------------------------------------------- 9. frozen keys cannot mint; a stall

def test_a_frozen_key_cannot_mint_a_child_key(world):
    """On every server, whoever froze it (an administrator, or a decoy's use); after the lift it can again."""
    w = world()
    a, b = w.server, w.serve()
    assert mint(b, w.key).status_code == 201  # a live key mints
    count = len(requests.get(w.api + "/agent-keys", headers=w.owner).json()["agent_keys"])
    assert requests.post(w.api + "/freeze", headers=w.admin, json={"all": True}).status_code == 201
    time.sleep(0.3)
    refusals = [mint(server, w.key) for server in (a, b)]
    assert requests.post(w.api + "/unfreeze", headers=w.admin, json={"all": True}).status_code == 200
    assert call(b, w.honey()["token"]).status_code == 401
    time.sleep(0.3)
    refusals += [mint(server, w.key) for server in (a, b)]
    assert len(requests.get(w.api + "/agent-keys", headers=w.owner).json()["agent_keys"]) == count, "a frozen key minted a key"
    # 403 `frozen`, not 401: the key is known and live, and says why it may not mint (the kill switch).
    assert [(r.status_code, r.json().get("code")) for r in refusals] == [(403, "frozen")] * 4, [(r.status_code, r.text) for r in refusals]
    assert requests.post(w.api + "/unfreeze", headers=w.owner, json={}).status_code == 200
    assert mint(a, w.key).status_code == 201


def test_a_stalled_channel_does_not_hold_up_the_others(world, receivers):
    """A receiver that accepts the connection and never answers (as a blackholed host does): the working
    channel's next alarm still arrives promptly."""
    stalled, live = receivers(status=None, hang=30), receivers()
    w = world(notify=f"""
        [notify.stalled]
        kind = "webhook"
        url = "{stalled.url}/h"

        [notify.live]
        kind = "slack"
        """, sealed={"stalled": WEBHOOK_SECRET, "live": live.url + SLACK_PATH})
    w.cli("freeze", "--user", OWNER)
    wait_until(lambda: live.delivered() and stalled.requests, DELIVERY, "the first alarm did not go out")
    lifted = time.time()
    w.cli("unfreeze", "--user", OWNER)
    try:
        wait_until(lambda: len(live.delivered()) == 2, DELIVERY, "")
    except AssertionError:
        wait_until(lambda: len(live.delivered()) == 2, 20, "the second alarm never arrived")
        raise AssertionError(f"a stalled channel held up the next alarm to a working channel: it arrived after "
                             f"{time.time() - lifted:.1f} s")


# ------------------------------------------------------------------ what an agent writes stays text in a chat

def test_an_agents_path_cannot_mention_everyone_or_plant_a_link_in_a_chat_alarm(world, receivers):
    """A refused call's path and reason are the agent's words: in Slack they cannot become a mention or a
    link, in Discord they cannot leave their code block or mention anyone."""
    fx = pytest.importorskip("fake_exchanges")
    binance = fx.binance()
    try:
        slack, discord = receivers(), receivers()
        w = world(extra_config=f'[venues.binance]\nbase_url = "{binance.url}"\n\n', notify=f"""
            [notify.slack]
            kind = "slack"
            events = ["fund_movement_attempted"]

            [notify.disc]
            kind = "discord"
            events = ["fund_movement_attempted"]
            """, sealed={"slack": slack.url + SLACK_PATH, "disc": discord.url + DISCORD_PATH})
        r = requests.post(w.api + "/credentials", headers=w.owner, json={
            "venue": "binance", "label": "binance", "secret": {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET}})
        key = requests.post(w.api + "/agent-keys", headers=w.owner, json={
            "name": "trader", "credential_ids": [r.json()["id"]], "access": "trade"}).json()["key"]
        hostile = "/sapi/v1/capital/withdraw/apply%20@everyone%20%3C!channel%3E%20%3Chttps://evil.example/ok%7CAll%20clear%3E%20%60%60%60%20%5Bclick%5D(https://evil.example)"
        refused = requests.post(w.server.url + "/proxy/binance" + hostile, headers={"X-MBX-APIKEY": key})
        assert refused.status_code == 403, refused.text
        wait_until(lambda: slack.delivered() and discord.delivered(), DELIVERY, "no chat alarm")
        slack_text = slack.messages()[0]["text"]
        assert "<" not in slack_text and ">" not in slack_text and "&lt;!channel&gt;" in slack_text, slack_text
        assert slack.messages()[0]["mrkdwn"] is False
        body = discord.messages()[0]
        assert body["allowed_mentions"] == {"parse": []}, body
        content = body["content"]
        assert content.startswith("```\n") and content.endswith("\n```") and content.count("```") == 2, content
    finally:
        binance.stop()
