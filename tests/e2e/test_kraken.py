"""Kraken Spot (`kraken`) driven by python-kraken-sdk and ccxt through Warden, against the local Kraken fake
(fake_kraken.py), which checks every API-Sign and every nonce as Kraken does.

Warden replaces the SDK's nonce with one from the store, above every nonce it handed out before (across
restarts) and above the clock in nanoseconds; orders are valued like Spot orders elsewhere; withdrawals,
transfers, staking and WebSocket tokens never reach the venue.
"""
import concurrent.futures
import json
import threading
import time
from urllib.parse import parse_qsl

import ccxt
import pytest
import requests
from kraken.exceptions import KrakenPermissionDeniedError
from kraken.spot import Market, Trade, User

import fake_kraken as fk
from test_exchanges import assert_only_real_credentials, OWNER, PASSWORD, Exchanges, raw, start_warden, write_config

REAL = {"api_key": fk.REAL_KRAKEN_KEY, "api_secret": fk.REAL_KRAKEN_SECRET}
THROWAWAY_SECRET = "dGhyb3dhd2F5LWtyYWtlbi1zZWNyZXQtb2YtdGhlLWFnZW50"  # base64, as the SDKs want


@pytest.fixture
def kr(start, tmp_path, master_key):
    fake = fk.kraken()
    config = tmp_path / "warden.toml"
    write_config(config, {"kraken": fake})
    env = {"WARDEN_MASTER_KEY": master_key}
    world = Exchanges(start_warden(start, env, config, tmp_path / "data"), {"kraken": fake})
    world.creds = {"kraken": world.credential("kraken", REAL)}
    world.fake = fake
    world.restart = lambda: restart(world, start, env, config, tmp_path / "data")
    yield world
    fake.stop()


def restart(world, start, env, config, data):
    world.server.stop()
    world.server = start_warden(start, env, config, data, create_owner=False)
    world.login()


def sdk(world, key, kind=Trade):
    """python-kraken-sdk keeps only the host of its URL (its paths start at /0/): Warden serves Kraken there too."""
    return kind(key=key, secret=THROWAWAY_SECRET, url=world.url)


def sent(fake, method):
    return [r for r in fake.requests if r["path"] == "/0/private/" + method]


def form(record):
    return dict(parse_qsl(record["body"].decode(), keep_blank_values=True))


def nonces(fake):
    return [int(form(r)["nonce"]) for r in fake.requests if r["path"].startswith("/0/private/")]


def refusal(call, status=403):
    with pytest.raises(Exception) as caught:
        call()
    text = str(caught.value)
    assert text.startswith(f"{status} - "), text
    error = json.loads(text.split(" - ", 1)[1])["error"][0]
    assert error.startswith(("EGeneral:", "EAPI:")), error
    return error


def test_the_fake_checks_signatures_and_nonces_as_kraken_does():
    fake = fk.kraken()
    try:
        trade = Trade(key=fk.REAL_KRAKEN_KEY, secret=fk.REAL_KRAKEN_SECRET, url=fake.url)
        order = trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.001", price="40000")
        assert trade.cancel_order(txid=order["txid"][0])["count"] == 1
        # A nonce at or below the highest is refused, and so is another secret's signature.
        data = f"nonce={max(fake.state['nonces'])}"
        headers = {"API-Key": fk.REAL_KRAKEN_KEY, "API-Sign": fk.kraken_sign("/0/private/Balance", max(fake.state["nonces"]), data),
                   "Content-Type": "application/x-www-form-urlencoded"}
        assert requests.post(fake.url + "/0/private/Balance", data=data, headers=headers).json()["error"] == ["EAPI:Invalid nonce"]
        wrong = Trade(key=fk.REAL_KRAKEN_KEY, secret=THROWAWAY_SECRET, url=fake.url)
        with pytest.raises(Exception, match="Invalid signature"):
            wrong.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001")
    finally:
        fake.stop()


def test_python_kraken_sdk_paper_then_live_with_store_kept_nonces(kr):
    fake, key = kr.fake, kr.key(venues=("kraken",))
    # The key's owner used it before with a tool counting in 10 ns steps: Warden's nonces start above.
    fake.state["nonces"].append(int(time.time() * 100_000_000) + 5_000_000_000)
    assert "XXBTZUSD" in sdk(kr, key, Market).get_ticker(pair="XBTUSD")
    assert sdk(kr, key, User).get_balances()["ZUSD"]["balance"] == "1000.0000"

    trade = sdk(kr, key)
    paper = trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001")
    assert paper["descr"]["order"].startswith("buy 0.00100000 XBTUSD @ market") and paper["txid"][0].startswith("OWDN"), paper
    assert not sent(fake, "AddOrder")
    assert [o["notional_usd"] for o in kr.paper_orders()] == [50.025]

    kr.live("kraken")
    limit = trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.0016", price="50000")  # 80 USD
    txid = limit["txid"][0]
    assert fake.state["orders"][txid]["status"] == "open"
    cl_ord_id = fake.state["orders"][txid]["cl_ord_id"]
    assert cl_ord_id.startswith("77646e2d-") and len(cl_ord_id) == 36, cl_ord_id  # Warden's wdn-… id, as a UUID
    assert trade.cancel_order(txid=txid)["count"] == 1
    assert trade.create_order(ordertype="market", side="sell", pair="XXBTZUSD", volume="0.001")["txid"]

    for call, reason in (
        (lambda: trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.003"), "max_leg_usd"),
        # A sell far below the market fills at the market: worth 0.003 × 50000.
        (lambda: trade.create_order(ordertype="limit", side="sell", pair="XBTUSD", volume="0.003", price="1"), "max_leg_usd"),
        (lambda: trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="1", price="+10"), "plain decimal"),
        (lambda: trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001", leverage="2"), "margin"),
        (lambda: trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="10", oflags="viqc"), "viqc"),
        (lambda: trade.create_order(ordertype="market", side="buy", pair="XBTUSD", volume="0.001", validate=True), "validate"),
        (lambda: trade.create_order(ordertype="stop-loss", side="sell", pair="XBTUSD", volume="0.001", price="40000"), "not priced"),
        (lambda: trade.create_order(ordertype="market", side="buy", pair="XBTEUR", volume="0.001"), "pair"),
    ):
        error = refusal(call, 403 if reason == "max_leg_usd" else 400)
        assert reason in error, error
    assert len(sent(fake, "AddOrder")) == 2

    # A restart forgets no nonce: the next ones still rise.
    before = nonces(fake)
    kr.restart()
    assert sdk(kr, key, User).get_balances()["ZUSD"]["balance"] == "1000.0000"
    after = nonces(fake)
    assert len(after) == len(before) + 1 and after == sorted(after) and len(set(after)) == len(after)
    assert all(r.get("auth") != "rejected: nonce" for r in fake.requests)
    assert_only_real_credentials(fake, [key], throwaway=(THROWAWAY_SECRET,))


def ccxt_kraken(world, key):
    exchange = ccxt.kraken({"apiKey": key, "secret": THROWAWAY_SECRET})
    exchange.urls["api"] = {**exchange.urls["api"], "public": world.url + "/proxy/kraken", "private": world.url + "/proxy/kraken"}
    return exchange


def test_ccxt_kraken_out_of_the_box(kr):
    kr.live("kraken")
    key = kr.key(venues=("kraken",))
    exchange = ccxt_kraken(kr, key)
    assert {"BTC/USD", "ETH/USD", "BTC/USDT"} <= set(exchange.load_markets())
    assert exchange.fetch_balance()["USD"]["free"] == 1000
    order = exchange.create_order("BTC/USD", "limit", "buy", 0.001, 40000)
    assert kr.fake.state["orders"][order["id"]]["status"] == "open"
    assert exchange.cancel_order(order["id"], "BTC/USD")
    assert exchange.create_order("ETH/USD", "market", "buy", 0.01)["id"] in kr.fake.state["orders"]
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        exchange.create_order("BTC/USD", "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError, match="fund movement"):
        exchange.withdraw("USD", 10, "0x" + "1" * 40, params={"key": "my-bank"})
    with pytest.raises(ccxt.ExchangeError, match="not on Warden's list"):
        exchange.privatePostGetWebSocketsToken()  # a token would let the agent trade over Kraken's WebSocket, past Warden
    assert not [r for r in kr.fake.requests if "Withdraw" in r["path"] or "WebSockets" in r["path"]]
    assert_only_real_credentials(kr.fake, [key], throwaway=(THROWAWAY_SECRET,))


KRAKEN_FUND_MOVEMENT = [
    "Withdraw", "WithdrawCancel", "WithdrawInfo", "WithdrawMethods", "WithdrawAddresses", "WithdrawStatus", "WalletTransfer",
    "Stake", "Unstake", "Earn/Allocate", "Earn/Deallocate", "CreateSubaccount", "AccountTransfer", "withdraw", "WITHDRAW",
    "%57ithdraw", "Withdraw/", "Withdraw;x", "x/../Withdraw", "STAKE", "earn/allocate",
]
KRAKEN_UNLISTED = ["GetWebSocketsToken", "AddOrderBatch", "EditOrder", "AmendOrder", "DepositAddresses", "AddExport", "balance",
                   "Balance/x", "addorder"]


def test_fund_movement_and_unlisted_calls_never_reach_kraken(kr):
    kr.live("kraken")
    key = kr.key(venues=("kraken",))
    headers = {"API-Key": key, "API-Sign": "agent-signature"}
    body = b"asset=XBT&key=my-wallet&amount=1&nonce=1"
    for name in KRAKEN_FUND_MOVEMENT + KRAKEN_UNLISTED:
        for prefix in ("/proxy/kraken/0/private/", "/proxy/kraken/0/public/", "/proxy/kraken//0/private/"):
            status, answer = raw(kr.server, "POST", prefix + name, headers, body)
            assert status in (400, 403), (prefix + name, status, answer[:200])
            assert json.loads(answer)["error"][0].startswith("EGeneral:"), answer
    # Orders Kraken might read otherwise: parameters twice, in the query, names Warden does not know, JSON bodies.
    for target, payload in (
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&volume=5&nonce=1"),
        ("/proxy/kraken/0/private/AddOrder?volume=5", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&nonce=1"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&close%5Bordertype%5D=limit"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&displayvol=1"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&trigger=index"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBT%2FUSD&type=buy&ordertype=market&volume=0.001"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=BUY&ordertype=market&volume=0.001"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=1e-3"),
        ("/proxy/kraken/0/private/AddOrder", b"pair=XBTUSD&type=buy&ordertype=market&volume=0.001&asset_class=tokenized_asset"),
        ("/proxy/kraken/0/private/AddOrder", b'{"pair":"XBTUSD","type":"buy","ordertype":"market","volume":"5"}'),
    ):
        status, answer = raw(kr.server, "POST", target, headers, payload)
        assert status == 400, (target, payload, status, answer[:200])
    reached = [r for r in kr.fake.requests if r["path"] != "/0/private/Balance"]  # the go-live check
    assert reached == [], [(r["method"], r["path"]) for r in reached]


def test_the_daily_cap_is_exact_under_concurrent_orders_and_nonces_never_repeat(kr):
    """40 concurrent 40 USD orders under a 500 USD daily cap: exactly 12 reach Kraken. Kraken refuses a nonce
    below the highest unless the key has a nonce window, which an owner sets for concurrent bots."""
    kr.fake.state["nonce_window"] = 10**12
    kr.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    kr.live("kraken")
    key = kr.key(venues=("kraken",))
    local = threading.local()

    def order(_):
        if not hasattr(local, "trade"):
            local.trade = sdk(kr, key)
        try:
            return local.trade.create_order(ordertype="limit", side="buy", pair="XBTUSD", volume="0.0008", price="50000")
        except Exception as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    placed = [r for r in results if isinstance(r, dict)]
    assert len(placed) == 12, [str(r)[:160] for r in results if not isinstance(r, dict)][:3]
    assert all("daily_cap_usd" in str(r) for r in results if not isinstance(r, dict))
    assert len(sent(kr.fake, "AddOrder")) == 12 and len(kr.fake.state["orders"]) == 12
    used = nonces(kr.fake)
    assert len(set(used)) == len(used)
    assert kr.trading()["live_usd"] == 480
