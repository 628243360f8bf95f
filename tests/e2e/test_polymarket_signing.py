"""Polymarket orders and level-1 calls signed inside Warden (issue 9), end to end with the real `warden` binary,
py-clob-client 0.34.6 and the fake CLOB of fake_exchanges.py configured with the stored wallet's address.

With a wallet, the fake verifies what the CTF Exchange and the CLOB verify: it recovers the signer of every order's
EIP-712 signature (on the neg-risk exchange's domain for a neg-risk token) and of the level-1 ClobAuth headers, and
accepts only the stored wallet. The agent's SDK holds a throwaway wallet key and a Warden agent key as its API key;
its own signatures are discarded, and neither its wallet's address nor the agent key may ever reach the venue.
"""
import importlib.util
import json
import pathlib
import time

import pytest
import requests
from eth_account import Account
from py_clob_client.clob_types import ApiCreds, OrderArgs, PostOrdersArgs
from py_clob_client.exceptions import PolyApiException
from py_clob_client.headers.headers import create_level_1_headers
from py_clob_client.http_helpers import helpers as clob_http
from py_clob_client.order_builder.constants import BUY, SELL
from py_clob_client.signer import Signer
from py_clob_client import client as clob_module
from py_clob_client.client import ClobClient

import fake_exchanges as fx
from test_exchanges import OWNER, Exchanges, orders_seen, poly_refusal, start_warden

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHAIN_ID = 137
def stored_answer(agent):
    """What the caller gets for minted credentials: its own agent key as the API key, placeholders for the rest."""
    return {"apiKey": agent, "secret": "stored-in-warden", "passphrase": "stored-in-warden"}


def _key_hex(account):
    key = account.key.hex()
    return key if key.startswith("0x") else "0x" + key


# The wallet whose key Warden holds. Only the fake knows its address; its key is planted in Warden alone.
_STORED = Account.create()
STORED_KEY = _key_hex(_STORED)
STORED_ADDRESS = _STORED.address
# What the agent's SDK holds: a throwaway wallet and throwaway level-2 secrets.
_THROWAWAY = Account.create()
THROWAWAY_KEY = _key_hex(_THROWAWAY)
THROWAWAY_ADDRESS = _THROWAWAY.address
THROWAWAY_SECRET = "YWdlbnQtdGhyb3dhd2F5LXBvbHktc2VjcmV0LTAwMDA="  # urlsafe base64, as the SDK needs
THROWAWAY_PASSPHRASE = "agent-throwaway-passphrase-signing"


def poly_client(url, api_key, secret=THROWAWAY_SECRET, passphrase=THROWAWAY_PASSPHRASE, wallet_key=THROWAWAY_KEY):
    return ClobClient(url, chain_id=CHAIN_ID, key=wallet_key,
                      creds=ApiCreds(api_key=api_key, api_secret=secret, api_passphrase=passphrase))


def stored_secret(**overrides):
    secret = {"api_key": fx.REAL_POLY_API_KEY, "api_secret": fx.REAL_POLY_API_SECRET,
              "passphrase": fx.REAL_POLY_PASSPHRASE, "address": STORED_ADDRESS, "private_key": STORED_KEY}
    secret.update(overrides)
    return {k: v for k, v in secret.items() if v is not None}


def write_config(path, fake, extra=()):
    path.write_text("\n".join(["[venues.polymarket]", f'base_url = "{fake.url}"', *extra, ""]))


def throwaway_forms():
    """Every spelling of the throwaway wallet's address (and of the agent's own secrets) the venue must never see."""
    bare = THROWAWAY_ADDRESS[2:]
    return [THROWAWAY_ADDRESS, bare, bare.lower(), bare.upper(), THROWAWAY_KEY[2:], THROWAWAY_SECRET, THROWAWAY_PASSPHRASE]


def request_blob(r):
    return (r["method"] + r["path"] + json.dumps(r["headers"]) + r["body"].decode("latin-1")).lower()


def assert_never_seen(fake, needles, what):
    for r in fake.requests:
        blob = request_blob(r)
        for needle in needles:
            assert needle.lower() not in blob, f"{r['method']} {r['path']} carried {what}: {needle[:12]}…"


def order_signatures(fake):
    return [s for s in fake.state["signatures"] if s["kind"] == "order"]


def l1_signatures(fake):
    return [s for s in fake.state["signatures"] if s["kind"] in ("create", "derive")]


def l1_call(world, method, path, agent_key, nonce=None, sdk_headers=True):
    """A level-1 call through Warden, as an agent would make it with `requests`: its agent key in X-Warden-Key, and
    (like py-clob-client's create_level_1_headers) POLY_* headers signed by its throwaway wallet, which Warden
    must replace."""
    headers = {"X-Warden-Key": agent_key} if agent_key else {}
    if sdk_headers:
        headers.update(create_level_1_headers(Signer(THROWAWAY_KEY, CHAIN_ID), nonce))
    elif nonce is not None:
        headers["POLY_NONCE"] = str(nonce)
    return requests.request(method, world.url + "/proxy/polymarket" + path, headers=headers, timeout=30)


def load_vectors():
    spec = importlib.util.spec_from_file_location("eip712_vectors", ROOT / "tests" / "vectors" / "eip712_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main()


# ----------------------------------------------------------------------------------------------------- world

@pytest.fixture
def fake():
    venue = fx.polymarket(wallet_address=STORED_ADDRESS)
    yield venue
    venue.stop()


def make_world(start, tmp_path, master_key, fake, extra_config=(), secret=None):
    config = tmp_path / "warden.toml"
    write_config(config, fake, extra_config)
    env = {"WARDEN_MASTER_KEY": master_key}
    world = Exchanges(start_warden(start, env, config, tmp_path / "data"), {"polymarket": fake})
    world.creds = {"polymarket": world.credential("polymarket", secret or stored_secret())}
    return world


@pytest.fixture
def world(start, tmp_path, master_key, fake):
    return make_world(start, tmp_path, master_key, fake)


def agent_key(world, access="trade"):
    return world.key(venues=("polymarket",), access=access)


# ------------------------------------------------------------------------------- the fake, checked directly

def test_fake_digests_match_the_vectors():
    """The fake's EIP-712 code reproduces tests/vectors (eth-account and py-clob-client agree on them)."""
    vectors = load_vectors()
    for v in vectors["orders"]:
        order = dict(v["order"], salt=int(v["order"]["salt"]), signatureType=int(v["order"]["signatureType"]),
                     side="BUY" if v["order"]["side"] == "0" else "SELL", signature=v["signature"])
        digest = fx.poly_order_digest(order, v["verifyingContract"])
        assert "0x" + digest.hex() == v["digest"], v["label"]
        assert fx.recover_signer(digest, v["signature"]) == vectors["address"]
    for v in vectors["clob_auth"]:
        m = v["message"]
        digest = fx.clob_auth_digest(m["address"], m["timestamp"], int(m["nonce"]))
        assert "0x" + digest.hex() == v["digest"]
        assert fx.recover_signer(digest, v["signature"]) == vectors["address"]


def test_fake_clob_checks_wallet_signatures_as_the_venue_does(fake):
    """Without Warden: py-clob-client holding the wallet key is accepted (orders on both exchanges' domains, level 1
    create and derive, then the rotated credentials); the throwaway wallet, a wrong domain, a wrong signature type,
    a high-S signature and the old credentials after rotation are refused."""
    client = poly_client(fake.url, fx.REAL_POLY_API_KEY, fx.REAL_POLY_API_SECRET, fx.REAL_POLY_PASSPHRASE, STORED_KEY)
    buy = client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))
    assert client.post_order(buy)["success"] is True
    neg = client.create_order(OrderArgs(token_id=fx.POLY_NEG_RISK_TOKEN_ID, price=0.5, size=10, side=BUY))
    assert client.post_order(neg)["success"] is True
    assert [(s["signer"], s["domain"], s["accepted"]) for s in order_signatures(fake)] == [
        (STORED_ADDRESS, "exchange", True), (STORED_ADDRESS, "neg_risk", True)]

    # The throwaway wallet's order (maker = signer = throwaway), posted with valid level-2 headers.
    throwaway = poly_client(fake.url, fx.REAL_POLY_API_KEY, fx.REAL_POLY_API_SECRET, fx.REAL_POLY_PASSPHRASE, THROWAWAY_KEY)
    assert poly_refusal(lambda: client.post_order(
        throwaway.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))), 400) == "invalid signature"

    def post_raw(order):
        body = json.dumps({"order": order, "owner": fx.REAL_POLY_API_KEY, "orderType": "GTC", "postOnly": False},
                          separators=(",", ":"))
        ts = str(int(time.time()))
        headers = {"POLY_ADDRESS": STORED_ADDRESS, "POLY_API_KEY": fx.REAL_POLY_API_KEY,
                   "POLY_PASSPHRASE": fx.REAL_POLY_PASSPHRASE, "POLY_TIMESTAMP": ts,
                   "POLY_SIGNATURE": fx.poly_sign(fx.REAL_POLY_API_SECRET, ts, "POST", "/order", body.encode()),
                   "Content-Type": "application/json"}
        return requests.post(fake.url + "/order", data=body, headers=headers, timeout=10)

    def signed(order, exchange):
        sig = Account.unsafe_sign_hash(fx.poly_order_digest(order, exchange), STORED_KEY).signature.hex()
        return dict(order, signature=sig if sig.startswith("0x") else "0x" + sig)

    good = dict(buy.dict(), salt=buy.order["salt"])
    assert post_raw(signed(good, fx.POLY_EXCHANGE)).status_code == 200
    neg_order = dict(neg.dict(), salt=neg.order["salt"])
    wrong_domain = post_raw(signed(neg_order, fx.POLY_EXCHANGE))
    assert (wrong_domain.status_code, wrong_domain.json()) == (400, {"error": "invalid signature"})
    type_one = post_raw(signed(dict(good, signatureType=1), fx.POLY_EXCHANGE))
    assert (type_one.status_code, type_one.json()) == (400, {"error": "invalid signature"})
    by_throwaway = Account.unsafe_sign_hash(fx.poly_order_digest(good, fx.POLY_EXCHANGE), THROWAWAY_KEY).signature.hex()
    assert post_raw(dict(good, signature="0x" + by_throwaway.removeprefix("0x"))).status_code == 400
    low = bytes.fromhex(signed(good, fx.POLY_EXCHANGE)["signature"][2:])
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high = low[:32] + (n - int.from_bytes(low[32:64], "big")).to_bytes(32, "big") + bytes([55 - low[64]])
    assert post_raw(dict(good, signature="0x" + high.hex())).status_code == 400
    assert post_raw(dict(good, salt=str(good["salt"]), signature=signed(good, fx.POLY_EXCHANGE)["signature"])).status_code == 400

    # Level 1: the wallet creates, then derives, the same credentials; the throwaway wallet is refused.
    with pytest.raises(PolyApiException) as caught:
        throwaway.create_api_key(0)
    assert caught.value.status_code == 401
    created = client.create_api_key(0)
    assert created.api_key != fx.REAL_POLY_API_KEY
    assert l1_signatures(fake)[-1] == {"kind": "create", "signer": STORED_ADDRESS, "address": STORED_ADDRESS, "nonce": 0,
                                       "timestamp": l1_signatures(fake)[-1]["timestamp"], "accepted": True}
    assert poly_refusal(lambda: client.get_orders(), 401)  # the old credentials no longer work
    rotated = poly_client(fake.url, created.api_key, created.api_secret, created.api_passphrase, STORED_KEY)
    assert len(rotated.get_orders()) == 3  # buy, neg and the hand-signed one
    with pytest.raises(PolyApiException) as caught:
        client.create_api_key(0)
    assert caught.value.status_code == 400
    assert client.derive_api_key(0) == created
    with pytest.raises(PolyApiException) as caught:
        client.derive_api_key(5)
    assert caught.value.status_code == 400
    stale = create_level_1_headers(Signer(STORED_KEY, CHAIN_ID), 1)
    stale["POLY_TIMESTAMP"] = str(int(stale["POLY_TIMESTAMP"]) - 600)
    assert requests.post(fake.url + "/auth/api-key", headers=stale, timeout=10).status_code == 401


# ------------------------------------------------------------------------------ a. orders signed by Warden

def test_orders_are_signed_by_warden_with_the_stored_wallet(world, monkeypatch):
    """py-clob-client with a throwaway wallet and an agent key places a BUY, a SELL and a neg-risk BUY through
    Warden; the fake recovers the stored wallet from each (on the right exchange's domain), and never sees the
    throwaway wallet, the agent key, or anything the SDK signed."""
    fake = world.fakes["polymarket"]
    world.live("polymarket")
    agent = agent_key(world)
    client = poly_client(world.url + "/proxy/polymarket", agent)
    sdk_hmacs, create = [], clob_module.create_level_2_headers

    def recording(*args, **kwargs):
        headers = create(*args, **kwargs)
        sdk_hmacs.append(headers["POLY_SIGNATURE"])
        return headers
    monkeypatch.setattr(clob_module, "create_level_2_headers", recording)

    sdk_orders = [
        client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY)),          # 5 USD
        client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.6, size=10, side=SELL)),         # 6 USD
        client.create_order(OrderArgs(token_id=fx.POLY_NEG_RISK_TOKEN_ID, price=0.5, size=4, side=BUY)),  # 2 USD
    ]
    for signed in sdk_orders:
        assert signed.order["maker"] == THROWAWAY_ADDRESS  # what the agent built
    posted = [client.post_order(signed) for signed in sdk_orders]
    assert all(p["success"] is True and p["orderID"] in fake.state["orders"] for p in posted), posted

    forwarded = [json.loads(r["body"]) for r in orders_seen(fake, "POST", "/order")]
    assert len(forwarded) == 3
    for sent, signed in zip(forwarded, sdk_orders):
        order, built = sent["order"], signed.dict()
        assert order["maker"].lower() == order["signer"].lower() == STORED_ADDRESS.lower()
        assert order["signatureType"] == 0
        for field in ("salt", "taker", "tokenId", "makerAmount", "takerAmount", "expiration", "nonce", "feeRateBps", "side"):
            assert order[field] == built[field], (field, order[field], built[field])
        assert order["signature"] != signed.signature
        assert sent["owner"] == fx.REAL_POLY_API_KEY
    checks = order_signatures(fake)
    assert [(c["signer"], c["domain"], c["accepted"]) for c in checks] == [
        (STORED_ADDRESS, "exchange", True), (STORED_ADDRESS, "exchange", True), (STORED_ADDRESS, "neg_risk", True)]
    # The neg-risk order's signature is for the neg-risk exchange only.
    neg = forwarded[2]["order"]
    assert fx.recover_signer(fx.poly_order_digest(neg, fx.POLY_NEG_RISK_EXCHANGE), neg["signature"]) == STORED_ADDRESS
    assert fx.recover_signer(fx.poly_order_digest(neg, fx.POLY_EXCHANGE), neg["signature"]) != STORED_ADDRESS

    assert sorted(o["id"] for o in client.get_orders()) == sorted(p["orderID"] for p in posted)
    assert client.cancel(posted[0]["orderID"])["canceled"] == [posted[0]["orderID"]]

    private = [r for r in fake.requests if r.get("auth") != "public"]
    assert private and all(r.get("auth") == "ok" for r in private), [(r["path"], r.get("auth")) for r in private]
    assert all(r["headers"]["poly_address"] == STORED_ADDRESS for r in private)
    sdk_signatures = [s.signature for s in sdk_orders] + [s.signature[2:] for s in sdk_orders] + sdk_hmacs
    assert_never_seen(fake, throwaway_forms(), "the throwaway wallet or secrets")
    assert_never_seen(fake, [agent], "the agent key")
    assert_never_seen(fake, sdk_signatures, "a signature the SDK made")
    assert_never_seen(fake, [STORED_KEY[2:]], "the stored private key")
    # Warden's neg-risk lookup is cached: at most its own one plus the SDK's for the two orders on one token.
    lookups = [r for r in fake.requests if r["path"] == "/neg-risk?token_id=" + fx.POLY_TOKEN_ID]
    assert len(lookups) <= 2, len(lookups)
    assert world.trading()["live_usd"] == pytest.approx(13.0)


def test_a_batch_is_checked_order_by_order_and_each_is_signed_by_warden(world):
    """py-clob-client's post_orders: every order of the batch is held under the caps, re-signed with the stored
    wallet (the right exchange's domain for each), and the fake accepts each; the day's volume holds the sum."""
    fake = world.fakes["polymarket"]
    world.live("polymarket")
    client = poly_client(world.url + "/proxy/polymarket", agent_key(world))
    batch = [PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))),
             PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_NEG_RISK_TOKEN_ID, price=0.6, size=5, side=SELL)))]
    answers = client.post_orders(batch)
    assert [a["success"] for a in answers] == [True, True], answers
    [sent] = orders_seen(fake, "POST", "/orders")
    items = json.loads(sent["body"])
    assert [i["owner"] for i in items] == [fx.REAL_POLY_API_KEY] * 2
    assert all(i["order"]["maker"].lower() == i["order"]["signer"].lower() == STORED_ADDRESS.lower() for i in items)
    assert [(c["signer"], c["domain"], c["accepted"]) for c in order_signatures(fake)] == [
        (STORED_ADDRESS, "exchange", True), (STORED_ADDRESS, "neg_risk", True)]
    assert_never_seen(fake, throwaway_forms(), "the throwaway wallet or secrets")
    assert world.trading()["live_usd"] == pytest.approx(5.0 + 3.0)


def test_a_dry_run_batch_fills_on_paper(world):
    fake = world.fakes["polymarket"]
    client = poly_client(world.url + "/proxy/polymarket", agent_key(world))
    batch = [PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))),
             PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.6, size=5, side=SELL)))]
    answers = client.post_orders(batch)
    assert [(a["success"], a["status"]) for a in answers] == [(True, "matched")] * 2
    assert orders_seen(fake, "POST", "/orders") == [] and order_signatures(fake) == []
    assert sorted(o["side"] for o in world.paper_orders()) == ["buy", "sell"]
    assert world.trading()["paper_usd"] == pytest.approx(5.0 + 3.0)


def test_dry_run_orders_are_neither_signed_nor_forwarded(world):
    fake = world.fakes["polymarket"]
    client = poly_client(world.url + "/proxy/polymarket", agent_key(world))
    posted = client.post_order(client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY)))
    assert posted["success"] is True
    assert orders_seen(fake, "POST", "/order") == [] and order_signatures(fake) == []
    assert [o["instrument"] for o in world.paper_orders()] == [fx.POLY_TOKEN_ID]


# ------------------------------------------------------------------------------------------ b. level 1

def test_level_one_calls_are_signed_by_warden_and_the_new_credentials_stay_inside(world, tmp_path):
    """Create and derive through Warden are signed with the stored wallet (ClobAuth); the venue's answer is stored
    in the credential, the caller gets placeholders, and later level-2 calls work with the rotated credentials
    (the fake accepts only those)."""
    fake = world.fakes["polymarket"]
    world.live("polymarket")
    agent = agent_key(world)

    r = l1_call(world, "POST", "/auth/api-key", agent, nonce=0)
    assert (r.status_code, r.json()) == (200, stored_answer(agent)), r.text
    [check] = l1_signatures(fake)
    assert check["kind"] == "create" and check["accepted"] and check["signer"] == STORED_ADDRESS and check["nonce"] == 0
    assert abs(int(check["timestamp"]) - time.time()) < 30
    [seen] = orders_seen(fake, "POST", "/auth/api-key")
    assert seen["headers"]["poly_address"] == STORED_ADDRESS and seen["headers"]["poly_nonce"] == "0"
    first = dict(fake.state["api_keys"][0])
    assert fake.state["creds"] == first
    for value in first.values():
        assert value not in r.text

    # Level 2 through Warden now works only because Warden stored the rotated credentials.
    client = poly_client(world.url + "/proxy/polymarket", agent)
    assert client.get_orders() == []
    posted = client.post_order(client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY)))
    assert posted["success"] is True and fake.state["orders"][posted["orderID"]]["owner"] == first["api_key"]
    last = orders_seen(fake, "POST", "/order")[-1]
    assert last["auth"] == "ok" and last["headers"]["poly_api_key"] == first["api_key"]

    # The SDK's own create_api_key, with X-Warden-Key added to its HTTP client: nonce 1 makes a second key...
    clob_http._http_client.headers["X-Warden-Key"] = agent
    try:
        sdk_answer = poly_client(world.url + "/proxy/polymarket", agent).create_api_key(1)
    finally:
        del clob_http._http_client.headers["X-Warden-Key"]
    assert (sdk_answer.api_key, sdk_answer.api_secret, sdk_answer.api_passphrase) == (agent, "stored-in-warden", "stored-in-warden")
    second = dict(fake.state["api_keys"][1])
    assert fake.state["creds"] == second and second != first
    assert [o["id"] for o in client.get_orders()] == [posted["orderID"]]
    assert orders_seen(fake, "GET", "/data/orders")[-1]["headers"]["poly_api_key"] == second["api_key"]

    # ...and deriving nonce 0 brings back the first one, which Warden stores again.
    r = l1_call(world, "GET", "/auth/derive-api-key", agent, nonce=0, sdk_headers=False)
    assert (r.status_code, r.json()) == (200, stored_answer(agent)), r.text
    assert l1_signatures(fake)[-1]["kind"] == "derive" and l1_signatures(fake)[-1]["signer"] == STORED_ADDRESS
    assert fake.state["creds"] == first
    assert [o["id"] for o in client.get_orders()] == [posted["orderID"]]
    assert orders_seen(fake, "GET", "/data/orders")[-1]["headers"]["poly_api_key"] == first["api_key"]

    # The SDK's usual idiom keeps working through Warden: the answer's API key is the agent key itself.
    clob_http._http_client.headers["X-Warden-Key"] = agent
    try:
        idiom = poly_client(world.url + "/proxy/polymarket", agent)
        idiom.set_api_creds(idiom.create_or_derive_api_creds())
    finally:
        del clob_http._http_client.headers["X-Warden-Key"]
    assert [o["id"] for o in idiom.get_orders()] == [posted["orderID"]]

    # A read key, or no key at all, cannot mint credentials; nothing reaches the venue.
    before = len(fake.requests)
    reader = agent_key(world, access="read")
    for method, path in (("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")):
        assert l1_call(world, method, path, reader, nonce=2).status_code == 403
        assert l1_call(world, method, path, None, nonce=2).status_code in (401, 403)
    assert len(fake.requests) == before

    assert all(r.get("auth") in ("ok", "public") for r in fake.requests), [(r["path"], r.get("auth")) for r in fake.requests]
    assert_never_seen(fake, throwaway_forms(), "the throwaway wallet or secrets")
    assert_never_seen(fake, [agent, reader, STORED_KEY[2:]], "an agent key or the stored private key")
    minted = [v for creds in fake.state["api_keys"].values() for k, v in creds.items() if k != "api_key"]
    audit = requests.get(world.api + "/audit?limit=500", headers=world.auth).text
    assert "credential.rotate" in audit
    answers = audit + "".join(requests.get(world.api + path, headers=world.auth).text for path in ("/credentials", "/profile"))
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert OWNER.encode() in stored  # the search does read the database
    log = world.server.output()
    for value in minted:
        assert value not in answers and value not in log and value.encode() not in stored


def test_a_level_one_answer_warden_cannot_store_never_reaches_the_agent(world):
    """An answer that holds minted secrets Warden could not read or store is a 502 in the venue's shape, its body
    withheld; a refusal is passed on only when it names no credential."""
    fake = world.fakes["polymarket"]
    agent = agent_key(world)
    shapes = [
        lambda m: (200, json.dumps({"apiKey": m["api_key"], "secret": m["secret"]}).encode()),  # no passphrase
        lambda m: (200, json.dumps({"api_key": m["api_key"], "secret": m["secret"], "passphrase": m["passphrase"]}).encode()),
        lambda m: (200, json.dumps({"apiKey": m["api_key"], "secret": 5, "passphrase": m["passphrase"]}).encode() + b"garbage"),
        lambda m: (201, f"key={m['api_key']} secret={m['secret']} passphrase={m['passphrase']}".encode()),
        lambda m: (400, json.dumps({"error": "retry later", "creds": {"Secret": m["secret"]}}).encode()),
        lambda m: (500, f"internal error: minted {m['passphrase']}, api-key {m['api_key']}".encode()),
    ]
    for nonce, shape in enumerate(shapes):
        fake.state["l1_answer"] = shape
        r = l1_call(world, "POST", "/auth/api-key", agent, nonce=nonce)
        minted = fake.state["api_keys"][nonce]
        assert r.status_code == 502, (nonce, r.status_code, r.text)
        assert "error" in r.json(), r.text  # the venue's own error shape
        for value in minted.values():
            assert value not in r.text, (nonce, r.text)
    # A refusal that names no credential is the venue's to tell.
    fake.state["l1_answer"] = lambda m: (400, b'{"error": "Could not create api key"}')
    r = l1_call(world, "POST", "/auth/api-key", agent, nonce=len(shapes))
    assert (r.status_code, r.json()) == (400, {"error": "Could not create api key"}), r.text
    # Nothing was stored: level 2 still signs with the planted credentials.
    fake.state["l1_answer"] = None
    fake.state["creds"] = {"api_key": fx.REAL_POLY_API_KEY, "secret": fx.REAL_POLY_API_SECRET, "passphrase": fx.REAL_POLY_PASSPHRASE}
    assert poly_client(world.url + "/proxy/polymarket", agent).get_orders() == []
    audit = requests.get(world.api + "/audit?limit=500", headers=world.auth).text
    assert "credential.rotate" not in audit
    for creds in fake.state["api_keys"].values():
        for value in creds.values():
            assert value not in audit and value not in world.server.output()


# ---------------------------------------------------------------------------------------- c. policy refusals

def test_an_order_the_policy_refuses_is_neither_signed_nor_forwarded(world):
    fake = world.fakes["polymarket"]
    world.live("polymarket")
    client = poly_client(world.url + "/proxy/polymarket", agent_key(world))
    assert "max_leg_usd" in poly_refusal(lambda: client.post_order(
        client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=201, side=BUY))))       # 100.5 USD
    assert "max_leg_usd" in poly_refusal(lambda: client.post_order(
        client.create_order(OrderArgs(token_id=fx.POLY_NEG_RISK_TOKEN_ID, price=0.51, size=200, side=SELL))))  # 102 USD
    # A batch with one order over the cap is refused whole, and nothing of it is reserved.
    batch = [PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))),
             PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=201, side=BUY)))]
    assert "max_leg_usd" in poly_refusal(lambda: client.post_orders(batch), 403)
    assert orders_seen(fake, "POST", "/order") == [] and orders_seen(fake, "POST", "/orders") == []
    assert order_signatures(fake) == []
    assert world.trading()["live_usd"] == pytest.approx(0)


# ---------------------------------------------------------------------------- d. the key stays in the vault

def test_the_private_key_never_reaches_the_database_the_log_or_an_answer(world, tmp_path):
    world.live("polymarket")
    agent = agent_key(world)
    client = poly_client(world.url + "/proxy/polymarket", agent)
    assert client.post_order(client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY)))["success"]
    assert l1_call(world, "POST", "/auth/api-key", agent, nonce=0).status_code == 200
    poly_refusal(lambda: client.post_order(client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=201, side=BUY))))
    # A second credential, stored with the bare-hex spelling of the same key.
    created = requests.post(world.api + "/credentials", headers=world.auth,
                            json={"venue": "polymarket", "label": "bare", "secret": stored_secret(private_key=STORED_KEY[2:])})
    assert created.status_code == 201, created.text
    answers = created.text + "".join(
        requests.get(world.api + path, headers=world.auth).text
        for path in ("/credentials", f"/credentials/{world.creds['polymarket']}", "/audit?limit=500", "/usage",
                     "/paper/orders", "/profile"))

    bare = STORED_KEY[2:]
    spellings = [bare, bare.upper(), bare[:32], bare[32:]]
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").rglob("*") if p.is_file())
    assert OWNER.encode() in stored  # the search does read the database
    log = world.server.output()
    assert log
    raw_key = bytes.fromhex(bare)
    assert raw_key not in stored, "the raw key bytes are in the data directory"
    for text in spellings:
        assert text.lower().encode() not in stored.lower(), "the private key is in the data directory"
        assert text.lower() not in log.lower(), "the private key is in the log"
        assert text.lower() not in answers.lower(), "the private key is in an API answer"
    assert_never_seen(world.fakes["polymarket"], spellings, "the stored private key")


# ------------------------------------------------------------------------------ e. address must match the key

def test_a_credential_whose_address_is_not_the_keys_is_refused(world):
    def store(**secret):
        return requests.post(world.api + "/credentials", headers=world.auth,
                             json={"venue": "polymarket", "label": "wallet", "secret": stored_secret(**secret)})

    mismatch = store(address=THROWAWAY_ADDRESS)
    assert mismatch.status_code == 400 and "secret.address" in mismatch.text, mismatch.text
    assert STORED_KEY[2:] not in mismatch.text
    assert store(address=THROWAWAY_ADDRESS, private_key=STORED_KEY[2:]).status_code == 400
    for bad in ("0x" + "00" * 32, "0x" + "ff" * 32, STORED_KEY[:-2], STORED_KEY + "00", "0x" + "zz" * 32):
        assert store(private_key=bad).status_code == 400, bad
    ok = store(private_key=STORED_KEY[2:])
    assert ok.status_code == 201, ok.text
    listed = requests.get(world.api + "/credentials", headers=world.auth).text
    assert STORED_KEY[2:] not in listed.lower()


def test_explicit_default_config_is_accepted(start, tmp_path, master_key, fake):
    """The three [venues.polymarket] settings, written out with their defaults, change nothing."""
    world = make_world(start, tmp_path, master_key, fake, extra_config=(
        "chain_id = 137", 'exchange_address = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"',
        'neg_risk_exchange_address = "0xC5d563A36AE78145C45a50134d48A1215220f80a"'))
    world.live("polymarket")
    client = poly_client(world.url + "/proxy/polymarket", agent_key(world))
    for token in (fx.POLY_TOKEN_ID, fx.POLY_NEG_RISK_TOKEN_ID):
        assert client.post_order(client.create_order(OrderArgs(token_id=token, price=0.5, size=10, side=BUY)))["success"]
    assert [(c["signer"], c["domain"]) for c in order_signatures(fake)] == [
        (STORED_ADDRESS, "exchange"), (STORED_ADDRESS, "neg_risk")]
