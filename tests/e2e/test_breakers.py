"""Circuit breakers under generated bursts: many concurrent live orders of random sizes from one key family, driven
with python-binance against the fake Binance. The oracle is what reached the venue: never more orders than
orders_per_minute, never more notional than notional_usd_per_hour, however the burst interleaves; the family is
frozen and the breaker_tripped alarm raised; a person lifts it."""
import concurrent.futures
import os
import random

import pytest
import requests
from binance.exceptions import BinanceAPIException

import fake_exchanges as fx
from test_alarms import DELIVERY, WEBHOOK_SECRET, Receiver, wait_until
from test_exchanges import Exchanges, binance_grantee, orders_seen, start_warden
from conftest import warden

SEED = int(os.environ.get("WARDEN_FUZZ_SEED", "28"))


@pytest.fixture
def venue(start, tmp_path, master_key):
    binance, hook = fx.binance(), Receiver()
    config = tmp_path / "warden.toml"
    config.write_text(f"""
[venues.binance]
base_url = "{binance.url}"

[notify.desk]
kind = "webhook"
url = "{hook.url}/alarms"
events = ["breaker_tripped"]
""")
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    server = start_warden(start, env, config, data)
    assert warden("notify", "set", "desk", "--data-dir", str(data), "--config", str(config), env=env, input=WEBHOOK_SECRET).returncode == 0
    world = Exchanges(server, {"binance": binance})
    world.creds = {"binance": world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})}
    world.hook = hook
    yield world
    binance.stop()
    hook.stop()


def burst(world, key, sizes):
    """Places one LIMIT buy at 50000 per size (in units of 0.0001 BTC, 5 USD) at once; returns the refusals' messages."""
    def one(units):
        try:
            world.binance(key).create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                            quantity=f"{units / 10000:.4f}", price="50000.00")
            return None
        except BinanceAPIException as e:
            return e.message
    with concurrent.futures.ThreadPoolExecutor(len(sizes)) as pool:
        return [m for m in pool.map(one, sizes) if m is not None]


@pytest.mark.parametrize("round_", range(3))
def test_a_burst_never_gets_past_a_breaker(venue, round_):
    w, fake = venue, venue.fakes["binance"]
    rng = random.Random(SEED * 10 + round_)
    orders_limit, notional_limit = rng.randint(3, 8), rng.choice([60, 90, 120])
    r = requests.put(w.api + "/profile", headers=w.auth, json={
        "risk": {"max_leg_usd": 100}, "breakers": {"orders_per_minute": orders_limit, "notional_usd_per_hour": notional_limit}})
    assert r.status_code == 200, r.text
    w.live("binance")
    root = requests.post(w.api + "/agent-keys", headers=w.auth,
                         json={"name": "bot", "credential_ids": [w.creds["binance"]], "access": "trade"}).json()
    # Half the burst from a key minted below the root: one family, one count.
    child = requests.post(w.api + "/agent-keys/child", headers={"X-Warden-Key": root["key"]}, json={"ttl_seconds": 600}).json()
    sizes = [rng.randint(1, 6) for _ in range(rng.randint(30, 50))]
    refusals = burst(w, root["key"], sizes[::2]) + burst(w, child["key"], sizes[1::2]) if rng.random() < 0.5 else None
    if refusals is None:  # or all at once, both keys interleaved
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            parts = list(pool.map(lambda args: burst(w, *args), [(root["key"], sizes[::2]), (child["key"], sizes[1::2])]))
        refusals = parts[0] + parts[1]
    sent = orders_seen(fake, "POST", "/api/v3/order")
    sent_usd = sum(float(fx_form(r)["quantity"]) * float(fx_form(r)["price"]) for r in sent)
    assert 0 < len(sent) <= orders_limit, (len(sent), orders_limit, refusals[:3])
    assert sent_usd <= notional_limit + 1e-9, (sent_usd, notional_limit)
    assert any("circuit breaker" in m for m in refusals), refusals[:5]
    # The family stays frozen: one more order from either key is refused and never sent.
    assert burst(w, child["key"], [1]) and len(orders_seen(fake, "POST", "/api/v3/order")) == len(sent)
    freezes = requests.get(w.api + "/freeze", headers=w.auth).json()["freezes"]
    assert [f["scope"] for f in freezes] == [f"family:{root['id']}"] and freezes[0]["frozen_by"].startswith("breaker:"), freezes
    wait_until(lambda: w.hook.delivered(), DELIVERY, "no breaker_tripped alarm")
    assert w.hook.messages()[0]["event"] == "breaker_tripped"
    # Its owner lifts it; the family trades again.
    assert requests.post(w.api + "/unfreeze", headers=w.auth, json={"family": child["id"]}).json()["changed"] is True
    assert burst(w, root["key"], [1]) == []
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == len(sent) + 1


def fx_form(request):
    """The parameters of an order the fake received (query string and form body)."""
    text = (request["path"].split("?", 1)[1] if "?" in request["path"] else "") + "&" + request["body"].decode()
    return dict(p.split("=", 1) for p in text.split("&") if "=" in p)


def test_a_credential_owners_breakers_hold_for_a_grantees_burst(venue, tmp_path, master_key):
    """The grantee sets no breaker; the credential's owner allows 2 orders a minute on their account: a grantee's
    burst on the shared credential gets no more through."""
    w, fake = venue, venue.fakes["binance"]
    assert requests.put(w.api + "/profile", headers=w.auth, json={
        "risk": {"max_leg_usd": 100}, "breakers": {"orders_per_minute": 2}}).status_code == 200
    w.live("binance")
    _, key = binance_grantee(w, tmp_path, master_key)
    refusals = burst(w, key, [2] * 12)
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 2, refusals
    assert any("circuit breaker" in m for m in refusals), refusals
