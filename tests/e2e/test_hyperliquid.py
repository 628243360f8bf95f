"""Hyperliquid (`hyperliquid`: perpetuals) driven by hyperliquid-python-sdk and ccxt through Warden, against the local
fake (fake_hyperliquid.py), which recovers the signer of every exchange action as Hyperliquid does.

The agent's SDK signs with a throwaway wallet; Warden reads the action, writes it in Hyperliquid's member order and
signs it with the wallet key in the vault. Orders are valued at their limit (buys) or at least at the market (sells);
leverage changes are held under `max_leverage`; sends, withdrawals, transfers, agent and builder-fee approvals never
reach the venue.
"""
import concurrent.futures
import json
import threading

import ccxt
import eth_account
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

import fake_hyperliquid as fh
from test_exchanges import Exchanges, raw, start_warden, write_config

REAL = {"private_key": fh.REAL_HL_WALLET_KEY}
THROWAWAY = eth_account.Account.create()


@pytest.fixture
def hl(start, tmp_path, master_key):
    fake = fh.hyperliquid()
    config = tmp_path / "warden.toml"
    write_config(config, {"hyperliquid": fake})
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"hyperliquid": fake})
    world.creds = {"hyperliquid": world.credential("hyperliquid", REAL)}
    world.fake = fake
    yield world
    fake.stop()


def exchange(world, key):
    """hyperliquid-python-sdk as docs/exchanges.md sets it up: a throwaway wallet, the agent key in the session."""
    ex = Exchange(THROWAWAY, world.url + "/proxy/hyperliquid", account_address=fh.REAL_HL_ADDRESS)
    ex.session.headers["X-Warden-Key"] = key
    return ex


def placed(fake):
    return [r for r in fake.requests if r["path"] == "/exchange" and r.get("accepted")]


def exchange_actions(fake):
    return [r for r in fake.requests if r["path"] == "/exchange"]


def refused(answer, reason):
    assert answer["status"] == "err" and reason in answer["response"], answer


def test_the_fake_recovers_signers_as_hyperliquid_does():
    fake = fh.hyperliquid(mainnet=False)  # the SDK signs for testnet anywhere but its own mainnet URL
    try:
        real = Exchange(eth_account.Account.from_key(fh.REAL_HL_WALLET_KEY), fake.url)
        answer = real.order("BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}})
        assert "resting" in answer["response"]["data"]["statuses"][0], answer
        other = Exchange(eth_account.Account.create(), fake.url)
        assert "does not exist" in other.order("BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}})["response"]
        assert len(placed(fake)) == 1
    finally:
        fake.stop()


def test_sdk_paper_then_live_signed_by_warden(hl):
    fake, key = hl.fake, hl.key(venues=("hyperliquid",))
    ex = exchange(hl, key)
    info = Info(hl.url + "/proxy/hyperliquid", skip_ws=True)
    assert float(info.all_mids()["BTC"]) == 50000
    assert info.user_state(fh.REAL_HL_ADDRESS)["marginSummary"]["accountValue"] == "1000.0"

    paper = ex.order("BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}})
    assert paper["status"] == "ok" and "filled" in paper["response"]["data"]["statuses"][0], paper
    refused(ex.update_leverage(2, "BTC"), "max_leverage (1x)")
    assert not exchange_actions(fake) and [round(o["notional_usd"]) for o in hl.paper_orders()] == [50]

    hl.put_profile(risk={"max_leverage": 5})
    hl.live("hyperliquid")
    rest = ex.order("BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}})
    oid = rest["response"]["data"]["statuses"][0]["resting"]["oid"]
    order = fake.state["orders"][oid]
    assert order["cloid"].startswith("0x77646e2d"), order  # Warden's client order id, "wdn-…" in hex
    assert ex.cancel("BTC", oid)["response"]["data"]["statuses"] == ["success"]
    # A market order is an IOC limit 5% through the mid: 0.02 ETH at 2625 is worth 52.5.
    assert "filled" in ex.market_open("ETH", True, 0.02)["response"]["data"]["statuses"][0]
    assert ex.update_leverage(5, "BTC")["status"] == "ok" and fake.state["leverage"]["BTC"]["value"] == 5
    refused(ex.update_leverage(6, "BTC"), "max_leverage (5x)")
    with_cloid = ex.order("ETH", False, 0.01, 2600, {"limit": {"tif": "Alo"}}, cloid=Cloid.from_str("0x" + "ab" * 16))
    assert "resting" in with_cloid["response"]["data"]["statuses"][0], with_cloid
    for answer, reason in (
        (ex.order("BTC", True, 0.003, 50000, {"limit": {"tif": "Gtc"}}), "max_leg_usd"),
        # A sell's limit does not bound it: 0.003 BTC sells at the market's 50000 at least.
        (ex.order("BTC", False, 0.003, 1, {"limit": {"tif": "Ioc"}}), "max_leg_usd"),
        (ex.order("BTC", True, 0.001, 50000, {"trigger": {"triggerPx": 49000, "isMarket": True, "tpsl": "sl"}}), "trigger"),
        (ex.order("BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}}, builder={"b": "0x" + "1" * 40, "f": 10}), "builder"),
    ):
        refused(answer, reason)
    for call in (lambda: ex.usd_transfer(1, "0x" + "1" * 40), lambda: ex.withdraw_from_bridge(1, "0x" + "1" * 40),
                 lambda: ex.approve_agent()[0], lambda: ex.approve_builder_fee("0x" + "1" * 40, "0.01%"),
                 lambda: ex.vault_usd_transfer("0x" + "1" * 40, True, 1), lambda: ex.usd_class_transfer(1, True),
                 lambda: ex.spot_transfer(1, "0x" + "1" * 40, "PURR:0xc1fb593aeffbeb02f85e0308e9956a90"),
                 lambda: ex.sub_account_transfer("0x" + "1" * 40, True, 1)):
        refused(call(), "fund movement")
    actions = exchange_actions(fake)
    assert {r["signer"] for r in actions} == {fh.REAL_HL_ADDRESS.lower()}, actions
    assert all(r["auth"] == "ok" for r in actions)
    assert [r["action"]["type"] for r in actions] == ["order", "cancel", "order", "updateLeverage", "order"]
    assert len(placed(fake)) == 3


def test_a_batch_is_valued_order_by_order(hl):
    hl.live("hyperliquid")
    ex = exchange(hl, hl.key(venues=("hyperliquid",)))
    one = {"coin": "BTC", "is_buy": True, "sz": 0.001, "limit_px": 50000, "order_type": {"limit": {"tif": "Gtc"}}, "reduce_only": False}
    answer = ex.bulk_orders([one, dict(one, sz=0.0015)])
    assert [list(s) for s in answer["response"]["data"]["statuses"]] == [["resting"], ["resting"]], answer
    refused(ex.bulk_orders([one, dict(one, sz=0.003)]), "max_leg_usd")
    assert len(placed(hl.fake)) == 1 and hl.trading()["live_usd"] == 125


def test_ccxt_hyperliquid_out_of_the_box(hl):
    hl.put_profile(risk={"max_leverage": 3})
    hl.live("hyperliquid")
    key = hl.key(venues=("hyperliquid",))
    ex = ccxt.hyperliquid({"walletAddress": fh.REAL_HL_ADDRESS, "privateKey": THROWAWAY.key.hex(),
                           "headers": {"X-Warden-Key": key}})
    ex.urls["api"] = {"public": hl.url + "/proxy/hyperliquid", "private": hl.url + "/proxy/hyperliquid"}
    assert "BTC/USDC:USDC" in ex.load_markets()
    assert ex.fetch_balance()["USDC"]["total"] == 1000
    assert ex.create_order("BTC/USDC:USDC", "limit", "buy", 0.001, 40000)["id"]
    assert ex.create_order("BTC/USDC:USDC", "market", "buy", 0.001, 50000)["id"]  # IOC at 5% through 50000: 52.5
    ex.set_leverage(3, "BTC/USDC:USDC")
    with pytest.raises(ccxt.ExchangeError, match="max_leverage"):
        ex.set_leverage(4, "BTC/USDC:USDC")
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        ex.create_order("BTC/USDC:USDC", "market", "sell", 0.003, 50000)
    with pytest.raises(ccxt.ExchangeError, match="fund movement"):
        ex.withdraw("USDC", 10, "0x" + "1" * 40)
    # ccxt asks to approve its builder fee and set a referrer as it starts: refused, and its orders carry no builder.
    types = [r["action"]["type"] for r in exchange_actions(hl.fake)]
    assert types == ["order", "order", "updateLeverage"], types
    assert {r["signer"] for r in exchange_actions(hl.fake)} == {fh.REAL_HL_ADDRESS.lower()}


def test_fund_movement_and_hostile_bodies_never_reach_hyperliquid(hl):
    hl.put_profile(risk={"max_leverage": 50})
    hl.live("hyperliquid")
    key = hl.key(venues=("hyperliquid",))
    headers = {"X-Warden-Key": key, "Content-Type": "application/json"}
    order = {"a": 0, "b": True, "p": "50000", "s": "0.001", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    fund = [{"type": t, "hyperliquidChain": "Mainnet", "signatureChainId": "0x66eee", "destination": "0x" + "1" * 40,
             "amount": "100", "time": 1} for t in ("usdSend", "spotSend", "withdraw3", "usdClassTransfer", "sendAsset",
                                                   "approveAgent", "approveBuilderFee", "UsdSend", "tokenDelegate")]
    fund += [{"type": "vaultTransfer", "vaultAddress": "0x" + "1" * 40, "isDeposit": True, "usd": 1},
             {"type": "subAccountTransfer", "subAccountUser": "0x" + "1" * 40, "isDeposit": True, "usd": 1},
             {"type": "multiSig", "signatureChainId": "0x66eee", "signatures": [], "payload": {}},
             {"type": "cDeposit", "wei": 1}, {"type": "createSubAccount", "name": "x"}]
    for action in fund:
        status, answer = raw(hl.server, "POST", "/proxy/hyperliquid/exchange", headers,
                             json.dumps({"action": action, "nonce": 1, "signature": {}}).encode())
        assert status == 200 and "fund movement" in json.loads(answer)["response"], (action, answer[:200])
    hostile = [
        {"action": {"type": "order", "orders": [dict(order, s=0.001)], "grouping": "na"}},
        {"action": {"type": "order", "orders": [dict(order, b=1)], "grouping": "na"}},
        {"action": {"type": "order", "orders": [dict(order, a=10000)], "grouping": "na"}},
        {"action": {"type": "order", "orders": [dict(order, t={"trigger": {"isMarket": True, "triggerPx": "1", "tpsl": "tp"}})],
                    "grouping": "na"}},
        {"action": {"type": "order", "orders": [order], "grouping": "normalTpsl"}},
        {"action": {"type": "order", "orders": [order], "grouping": "na", "builder": {"b": "0x" + "1" * 40, "f": 0}}},
        {"action": {"type": "order", "orders": [order], "grouping": "na"}, "vaultAddress": "0x" + "1" * 40},
        {"action": {"type": "order", "orders": [order], "grouping": "na"}, "expiresAfter": 99999999999999},
        {"action": {"type": "order", "orders": [dict(order, x=1)], "grouping": "na"}},
        {"action": {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 51.5}},
        {"action": {"type": "updateIsolatedMargin", "asset": 0, "isBuy": True, "ntli": 100}},
        {"action": {"type": "setReferrer", "code": "X"}},
    ]
    for body in hostile:
        status, answer = raw(hl.server, "POST", "/proxy/hyperliquid/exchange", headers, json.dumps(body).encode())
        assert status == 200 and json.loads(answer)["status"] == "err", (body, answer[:200])
    twin = b'{"action":{"type":"order","orders":[{"a":0,"b":true,"p":"50000","s":"0.001","s":"5","r":false,' \
           b'"t":{"limit":{"tif":"Gtc"}}}],"grouping":"na"}}'
    for path, body in (("/exchange", twin), ("/exchange?x=1", json.dumps(hostile[0]).encode()), ("/EXCHANGE", twin),
                       ("/exchange/", json.dumps({"action": {"type": "usdSend"}}).encode()), ("/info", b'{"type":1}')):
        status, answer = raw(hl.server, "POST", "/proxy/hyperliquid" + path, headers, body)
        assert status == 200 and json.loads(answer)["status"] == "err", (path, answer[:200])
    assert exchange_actions(hl.fake) == [], [r["action"] for r in exchange_actions(hl.fake)]


def test_the_daily_cap_is_exact_under_concurrent_orders(hl):
    hl.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    hl.live("hyperliquid")
    key = hl.key(venues=("hyperliquid",))
    local = threading.local()

    def order(i):
        if not hasattr(local, "ex"):
            local.ex = exchange(hl, key)
        if i % 2:
            return local.ex.order("BTC", True, 0.0008, 50000, {"limit": {"tif": "Gtc"}})
        return local.ex.order("ETH", False, 0.016, 2400, {"limit": {"tif": "Gtc"}})  # a sell: 0.016 × 2500 at least
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    ok = [r for r in results if r["status"] == "ok"]
    assert len(ok) == 12, [r for r in results if r["status"] != "ok"][:3]
    assert all("daily_cap_usd" in r["response"] for r in results if r["status"] != "ok")
    assert len(placed(hl.fake)) == 12 and hl.trading()["live_usd"] == 480


def test_an_action_is_never_signed_off_exchange_whatever_the_operator_opens(start, tmp_path, master_key):
    fake = fh.hyperliquid()
    config = tmp_path / "warden.toml"
    write_config(config, {"hyperliquid": fake}, allow={"hyperliquid": ["POST /*/exchange", "GET /**", "PUT /**", "DELETE /**"]})
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"hyperliquid": fake})
    try:
        world.creds = {"hyperliquid": world.credential("hyperliquid", REAL)}
        world.put_profile(risk={"max_leverage": 5})
        world.live("hyperliquid")
        for access in ("trade", "read"):
            headers = {"X-Warden-Key": world.key(venues=("hyperliquid",), access=access), "Content-Type": "application/json"}
            for action, reason in (({"type": "updateLeverage", "asset": 0, "isCross": False, "leverage": 50}, "POSTed to /exchange"),
                                   ({"type": "order", "orders": [{"a": 0, "b": True, "p": "50000", "s": "1", "r": False,
                                                                  "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"},
                                    "POSTed to /exchange"),
                                   ({"type": "usdSend", "destination": "0x" + "1" * 40, "amount": "1"}, "fund movement")):
                body = json.dumps({"action": action, "nonce": 1, "signature": {}}).encode()
                for method, path in (("POST", "/v1/exchange"), ("GET", "/exchange"), ("PUT", "/exchange"),
                                     ("DELETE", "/exchange"), ("GET", "/v1/exchange")):
                    status, answer = raw(world.server, method, "/proxy/hyperliquid" + path, headers, body)
                    assert status == 200 and reason in json.loads(answer)["response"], (access, method, path, answer[:200])
        assert [r for r in fake.requests if "exchange" in r["path"]] == []
    finally:
        fake.stop()
