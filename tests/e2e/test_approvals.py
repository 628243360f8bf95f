"""Orders above the owner's approve_above_usd wait for a person: held with their reservation, never sent until
approved; approved, they are signed afresh and sent by Warden; rejected or expired, they release what they held.
Driven with python-binance against the fake Binance (which checks every signature and the timestamp's window);
the alarm with the approval's link reaches a local webhook receiver."""
import json
import time

import pytest
import requests

import fake_exchanges as fx
from conftest import warden
from test_alarms import DELIVERY, WEBHOOK_SECRET, Receiver, verify_signature, wait_until
from test_exchanges import Exchanges, binance_grantee, binance_refusal, orders_seen, start_warden

APPROVAL_SECONDS = 10


@pytest.fixture
def held(start, tmp_path, master_key):
    """Warden with the fake Binance, a webhook for approval alarms, an owner live on Binance who asks for
    approval above 20 USD, and a trade key."""
    binance, hook = fx.binance(), Receiver()
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[venues.binance]
base_url = "{binance.url}"

[gateway]
approval_seconds = {APPROVAL_SECONDS}

[notify.desk]
kind = "webhook"
url = "{hook.url}/alarms"
events = ["approval_waiting"]
""")
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    server = start_warden(start, env, config, data)
    sealed = warden("notify", "set", "desk", "--data-dir", str(data), "--config", str(config), env=env, input=WEBHOOK_SECRET)
    assert sealed.returncode == 0, sealed.stderr
    world = Exchanges(server, {"binance": binance})
    world.creds = {"binance": world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})}
    r = requests.put(world.api + "/profile", headers=world.auth, json={"risk": {"max_leg_usd": 100, "approve_above_usd": 20}})
    assert r.status_code == 200 and r.json()["risk"]["approve_above_usd"] == 20, r.text
    world.live("binance")
    world.agent = world.key(venues=("binance",))
    world.hook = hook
    yield world
    binance.stop()
    hook.stop()


def place(world, quantity="0.0008"):
    """A LIMIT buy at 50000 (0.0008 BTC: 40 USD); returns the refusal's message when held."""
    return world.binance(world.agent).create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity=quantity, price="50000.00")


def hold(world):
    """Places a 40 USD order, which is held; returns the approval's id."""
    message = binance_refusal(lambda: place(world))
    assert message.startswith("held for approval") and "40" in message, message
    return message.split("GET /api/v1/approvals/")[1].split()[0]


def as_agent(world, approval):
    r = requests.get(f"{world.api}/approvals/{approval}", headers={"X-Warden-Key": world.agent})
    assert r.status_code == 200, r.text
    return r.json()


def test_an_order_above_the_threshold_waits_and_is_sent_signed_afresh_once_approved(held):
    w, fake = held, held.fakes["binance"]
    # Below the threshold: sent at once.
    assert place(w, quantity="0.0002")["status"] == "NEW"
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 1
    approval = hold(w)
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 1, "a held order reached the venue"
    assert w.trading()["live_usd"] == pytest.approx(50.0), "the held order's reservation is not held"
    waiting = as_agent(w, approval)
    assert waiting["status"] == "pending" and waiting["notional_usd"] == "40" and waiting["answer"] is None, waiting

    # The owner is told, with a link to the order's page.
    wait_until(lambda: w.hook.delivered(), DELIVERY, "no approval_waiting alarm")
    message = w.hook.messages()[0]
    assert message["event"] == "approval_waiting" and message["link"] == f"{w.url}/approvals/{approval}", message
    assert message["detail"]["notional_usd"] == "40" and verify_signature(w.hook.requests[0]), message
    assert w.agent not in json.dumps(message)

    # Approved after the agent's own timestamp has gone stale: Warden signs it anew, and the venue takes it.
    time.sleep(5.5)
    other = requests.post(w.api + "/approvals/" + approval + "/approve", headers={"Authorization": "Bearer nope"})
    assert other.status_code == 401
    done = requests.post(w.api + f"/approvals/{approval}/approve", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "sent" and done.json()["answer_status"] == 200, done.text
    sent = orders_seen(fake, "POST", "/api/v3/order")
    assert len(sent) == 2 and all(r["auth"] == "ok" for r in sent), sent
    answer = json.loads(as_agent(w, approval)["answer"])
    assert answer["status"] == "NEW" and answer["orderId"] in fake.state["orders"], answer
    assert w.trading()["live_usd"] == pytest.approx(50.0)
    # Once only.
    again = requests.post(w.api + f"/approvals/{approval}/approve", headers=w.auth)
    assert again.status_code == 409 and again.json()["code"] == "approval_sent", again.text
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 2
    rows = requests.get(w.api + "/audit", headers=w.auth).json()["entries"]
    actions = [e["action"] for e in rows]
    assert "gateway.hold" in actions and "approval.approve" in actions, actions


def test_a_rejected_or_expired_order_is_never_sent_and_releases_its_reservation(held):
    w, fake = held, held.fakes["binance"]
    rejected = hold(w)
    assert w.trading()["live_usd"] == pytest.approx(40.0)
    done = requests.post(w.api + f"/approvals/{rejected}/reject", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "rejected", done.text
    assert as_agent(w, rejected)["status"] == "rejected"
    assert w.trading()["live_usd"] == pytest.approx(0.0)
    late = requests.post(w.api + f"/approvals/{rejected}/approve", headers=w.auth)
    assert late.status_code == 409 and late.json()["code"] == "approval_rejected", late.text

    expiring = hold(w)
    deadline = time.time() + APPROVAL_SECONDS + 5
    while as_agent(w, expiring)["status"] != "expired" and time.time() < deadline:
        time.sleep(0.25)
    assert as_agent(w, expiring)["status"] == "expired"
    wait_until(lambda: w.trading()["live_usd"] == pytest.approx(0.0), 3, "the expired order's reservation was kept")
    late = requests.post(w.api + f"/approvals/{expiring}/approve", headers=w.auth)
    assert late.status_code == 409 and late.json()["code"] == "approval_expired", late.text
    assert orders_seen(fake, "POST", "/api/v3/order") == [], "a rejected or expired order reached the venue"


def test_an_approval_sends_nothing_for_a_key_frozen_since_and_no_agent_key_approves(held):
    w, fake = held, held.fakes["binance"]
    approval = hold(w)
    # An agent key cannot approve (not even the one that placed the order).
    by_key = requests.post(w.api + f"/approvals/{approval}/approve", headers={"X-Warden-Key": w.agent})
    assert by_key.status_code == 401, by_key.text
    # The owner's keys are frozen after the hold: approving sends nothing and says why.
    assert requests.post(w.api + "/freeze", headers=w.auth, json={}).status_code == 201
    done = requests.post(w.api + f"/approvals/{approval}/approve", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "failed" and "frozen" in done.json()["reason"], done.text
    assert orders_seen(fake, "POST", "/api/v3/order") == []
    assert w.trading()["live_usd"] == pytest.approx(0.0)


def test_an_order_on_a_shared_credential_waits_for_the_credentials_owner(held, tmp_path, master_key):
    """The grantee asks for no approval, the credential's owner does above 20 USD: the grantee's 40 USD order is held,
    and only the credential's owner, whose account it acts on, can approve it."""
    w, fake = held, held.fakes["binance"]
    grantee, key = binance_grantee(w, tmp_path, master_key)
    message = binance_refusal(lambda: w.binance(key).create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0008", price="50000.00"))
    assert message.startswith("held for approval"), message
    approval = message.split("GET /api/v1/approvals/")[1].split()[0]
    assert orders_seen(fake, "POST", "/api/v3/order") == []
    # The grantee cannot approve an order on someone else's account; the credential's owner can.
    refused = requests.post(w.api + f"/approvals/{approval}/approve", headers=grantee)
    assert refused.status_code == 404, refused.text
    assert [a["id"] for a in requests.get(w.api + "/approvals", headers=w.auth).json()["approvals"]] == [approval]
    done = requests.post(w.api + f"/approvals/{approval}/approve", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "sent", done.text
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 1


def test_an_approval_holds_to_the_owners_settings_as_they_are_when_it_is_sent(held):
    """A limit lowered, or live trading turned off, after the hold: approving sends nothing and says why."""
    w, fake = held, held.fakes["binance"]
    lowered = hold(w)
    assert requests.put(w.api + "/profile", headers=w.auth, json={"risk": {"max_leg_usd": 30}}).status_code == 200
    done = requests.post(w.api + f"/approvals/{lowered}/approve", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "failed" and "max_leg_usd" in done.json()["reason"], done.text
    assert requests.put(w.api + "/profile", headers=w.auth, json={"risk": {"max_leg_usd": 100}}).status_code == 200
    off = hold(w)
    assert requests.put(w.api + "/profile", headers=w.auth, json={"risk": {"allow_live_trading": False}}).status_code == 200
    done = requests.post(w.api + f"/approvals/{off}/approve", headers=w.auth)
    assert done.status_code == 200 and done.json()["status"] == "failed" and "live trading" in done.json()["reason"], done.text
    assert orders_seen(fake, "POST", "/api/v3/order") == []
    assert w.trading()["live_usd"] == pytest.approx(0.0)
