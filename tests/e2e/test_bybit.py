"""Bybit v5 (`bybit`: spot and linear perpetuals) driven by pybit and ccxt through Warden, against the local fake
(fake_bybit.py), which checks every X-BAPI-SIGN as Bybit does.

A spot market buy counts `qty` in the quote coin (Bybit's default) unless `marketUnit` says otherwise; perpetuals
count notional; leverage changes are held under `max_leverage`; transfers, withdrawals and sub-account keys never
reach the venue. Bybit's SDKs read errors only from HTTP 200 answers, so Warden's refusals are 200 with `retCode`.
"""
import concurrent.futures
import json
import threading

import ccxt
import pytest
from pybit.exceptions import InvalidRequestError
from pybit.unified_trading import HTTP

import fake_bybit as fb
from test_exchanges import assert_only_real_credentials, Exchanges, raw, start_warden, write_config

REAL = {"api_key": fb.REAL_BYBIT_KEY, "api_secret": fb.REAL_BYBIT_SECRET}
THROWAWAY_SECRET = "agent-throwaway-bybit-secret"


@pytest.fixture
def by(start, tmp_path, master_key):
    fake = fb.bybit()
    config = tmp_path / "warden.toml"
    write_config(config, {"bybit": fake})
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"bybit": fake})
    world.creds = {"bybit": world.credential("bybit", REAL)}
    world.fake = fake
    yield world
    fake.stop()


def session(world, key):
    """pybit as docs/exchanges.md sets it up: its endpoint is an attribute."""
    s = HTTP(api_key=key, api_secret=THROWAWAY_SECRET, max_retries=1)
    s.endpoint = world.url + "/proxy/bybit"
    return s


def created(fake):
    return [json.loads(r["body"]) for r in fake.requests if r["path"] == "/v5/order/create" and r.get("accepted")]


def refused(call):
    with pytest.raises(InvalidRequestError) as caught:
        call()
    return caught.value.message


def test_pybit_spot_and_perpetuals_paper_then_live(by):
    fake, key = by.fake, by.key(venues=("bybit",))
    s = session(by, key)
    assert s.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]["markPrice"] == "50000"
    assert s.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]["totalEquity"] == "1000"

    paper = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="50")  # 50 USDT
    assert paper["retCode"] == 0 and paper["result"]["orderLinkId"].startswith("wdn-"), paper
    assert "max_leverage (1x)" in refused(lambda: s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="2",
                                                                 sellLeverage="1"))
    assert not created(fake) and [round(o["notional_usd"], 2) for o in by.paper_orders()] == [50]  # 50 USDT, at 8 decimals

    by.put_profile(risk={"max_leverage": 5})
    by.live("bybit")
    assert s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="2.5")["retCode"] == 0
    assert fake.state["leverage"]["BTCUSDT"] == "5"
    assert "max_leverage (5x)" in refused(lambda: s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="1",
                                                                 sellLeverage="5.01"))
    limit = s.place_order(category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.0016", price="50000")
    assert fake.state["orders"][limit["result"]["orderId"]]["orderLinkId"].startswith("wdn-")
    assert s.cancel_order(category="linear", symbol="BTCUSDT", orderId=limit["result"]["orderId"])["retCode"] == 0
    assert s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="90")["retCode"] == 0

    for args, reason in (
        ({"category": "spot", "side": "Buy", "orderType": "Market", "qty": "150"}, "max_leg_usd"),  # 150 USDT
        # The same qty in the base coin is 0.003 × 50000.
        ({"category": "spot", "side": "Buy", "orderType": "Market", "qty": "0.003", "marketUnit": "baseCoin"}, "max_leg_usd"),
        ({"category": "spot", "side": "Sell", "orderType": "Market", "qty": "0.003"}, "max_leg_usd"),
        ({"category": "linear", "side": "Sell", "orderType": "Limit", "qty": "0.003", "price": "1"}, "max_leg_usd"),
        ({"category": "linear", "side": "Buy", "orderType": "Market", "qty": "0.001", "takeProfit": "60000"}, "takeProfit"),
        ({"category": "linear", "side": "Buy", "orderType": "Market", "qty": "0.001", "triggerPrice": "40000"}, "triggerPrice"),
        ({"category": "spot", "side": "Buy", "orderType": "Market", "qty": "1", "isLeverage": 1}, "margin"),
        ({"category": "inverse", "side": "Buy", "orderType": "Market", "qty": "1"}, "category"),
        ({"category": "linear", "side": "Buy", "orderType": "Limit", "qty": "0.001", "price": "1e4"}, "plain decimal"),
        ({"category": "linear", "side": "buy", "orderType": "Market", "qty": "0.001"}, "side"),
    ):
        message = refused(lambda: s.place_order(symbol="BTCUSDT", **args))
        assert reason in message, (args, message)
    assert [o["qty"] for o in created(fake)] == ["0.0016", "90"]
    # Bybit describes the key a call is signed with, the key itself included: the agent sees its own key there.
    described = s.get_api_key_information()["result"]
    assert described["apiKey"] == key and described["uta"] == 1, described
    assert_only_real_credentials(fake, [key], throwaway=(THROWAWAY_SECRET,))


def ccxt_bybit(world, key):
    exchange = ccxt.bybit({"apiKey": key, "secret": THROWAWAY_SECRET})
    exchange.urls["api"] = {name: world.url + "/proxy/bybit" for name in exchange.urls["api"]}
    return exchange


def test_ccxt_bybit_out_of_the_box(by):
    by.put_profile(risk={"max_leverage": 3})
    by.live("bybit")
    key = by.key(venues=("bybit",))
    exchange = ccxt_bybit(by, key)
    assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(exchange.load_markets())
    assert exchange.fetch_balance()["USDT"]["free"] == 1000
    assert exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000)["id"] in by.fake.state["orders"]
    assert exchange.create_order("BTC/USDT", "market", "buy", 0.001, 50000)["id"]  # ccxt sends 50 USDT of quote
    exchange.set_leverage(3, "BTC/USDT:USDT")
    with pytest.raises(ccxt.ExchangeError, match="max_leverage"):
        exchange.set_leverage(4, "BTC/USDT:USDT")
    assert exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001)["id"]
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    for call in (lambda: exchange.transfer("USDT", 10, "spot", "swap"),
                 lambda: exchange.withdraw("USDT", 10, "0x" + "1" * 40, params={"network": "ETH"})):
        with pytest.raises(ccxt.ExchangeError, match="fund movement"):
            call()
    assert [o["qty"] for o in created(by.fake)] == ["0.001", "50", "0.001"]
    assert not [r for r in by.fake.requests if "/v5/asset/" in r["path"] and r["path"] != "/v5/asset/coin/query-info"]
    assert_only_real_credentials(by.fake, [key], throwaway=(THROWAWAY_SECRET,))


BYBIT_FUND_MOVEMENT = [
    "/v5/asset/transfer/inter-transfer", "/v5/asset/transfer/universal-transfer", "/v5/asset/withdraw/create",
    "/v5/asset/withdraw/cancel", "/v5/asset/exchange/convert-execute", "/v5/asset/deposit/deposit-to-account",
    "/v5/user/create-sub-member", "/v5/user/create-sub-api", "/v5/user/update-api", "/v5/user/update-sub-api",
    "/v5/ins-loan/ensure-tokens-convert", "/v5/crypto-loan/borrow", "/v5/lending/purchase", "/v5/earn/place-order",
    "/v5/broker/award/distribute-award", "/v5/ASSET/withdraw/create", "/v5//asset/withdraw/create",
    "/v5/asset/coin/query-info/../../withdraw/create", "/v5/%61sset/withdraw/create", "/v5/account/transfer",
]
BYBIT_UNLISTED = [
    "/v5/order/amend", "/v5/order/create-batch", "/v5/order/amend-batch", "/v5/position/trading-stop",
    "/v5/position/switch-isolated", "/v5/position/switch-mode", "/v5/account/set-margin-mode", "/v5/account/upgrade-to-uta",
    "/v5/spot-margin-trade/switch-mode", "/v5/spot-margin-trade/set-leverage", "/v5/order/Create", "/v5/order/create/",
]


def test_fund_movement_and_unlisted_calls_never_reach_bybit(by):
    by.put_profile(risk={"max_leverage": 100})
    by.live("bybit")
    key = by.key(venues=("bybit",))
    headers = {"X-BAPI-API-KEY": key, "X-BAPI-SIGN": "agent", "X-BAPI-TIMESTAMP": "1", "Content-Type": "application/json"}
    body = json.dumps({"coin": "USDT", "amount": "100", "address": "0x" + "1" * 40, "category": "linear", "symbol": "BTCUSDT",
                       "side": "Buy", "orderType": "Market", "qty": "0.001"}).encode()
    for path in BYBIT_FUND_MOVEMENT + BYBIT_UNLISTED:
        for method in ("POST", "GET"):
            status, answer = raw(by.server, method, "/proxy/bybit" + path, headers, body if method == "POST" else b"")
            assert status == 200 and json.loads(answer)["retCode"] in (10001, 10005), (method, path, answer[:200])
    for order in (
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10","qty":"5000"}',
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":10}',
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10","marketUnit":"quoteCoin ","x":1}',
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10","isLeverage":true}',
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10","isLeverage":"0"}',
        b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001","reduceOnly":"true"}',
        b'{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"0.001","bboSideType":"Queue"}',
        b'\xef\xbb\xbf{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10"}',
        b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10"} {}',
        b'category=spot&symbol=BTCUSDT&side=Buy&orderType=Market&qty=10',
        b'{"category":"linear","symbol":"BTCUSDT","buyLeverage":"2","sellLeverage":"2","buyLeverage":"90"}',
    ):
        path = "/proxy/bybit/v5/position/set-leverage" if b"Leverage" in order else "/proxy/bybit/v5/order/create"
        status, answer = raw(by.server, "POST", path, headers, order)
        assert status == 200 and json.loads(answer)["retCode"] == 10001, (order, answer[:200])
    status, answer = raw(by.server, "POST", "/proxy/bybit/v5/order/create?qty=5000", headers,
                         b'{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Market","qty":"10"}')
    assert json.loads(answer)["retCode"] == 10001
    reached = [r for r in by.fake.requests if r["path"] != "/v5/account/wallet-balance?accountType=UNIFIED"]
    assert reached == [], [(r["method"], r["path"]) for r in reached]


def test_the_daily_cap_is_exact_under_concurrent_spot_and_perpetual_orders(by):
    by.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    by.live("bybit")
    key = by.key(venues=("bybit",))
    local = threading.local()

    def order(i):
        if not hasattr(local, "s"):
            local.s = session(by, key)
        args = ({"category": "spot", "orderType": "Market", "qty": "40"} if i % 2 else
                {"category": "linear", "orderType": "Limit", "qty": "0.0008", "price": "50000"})
        try:
            return local.s.place_order(symbol="BTCUSDT", side="Buy", **args)
        except InvalidRequestError as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    placed = [r for r in results if isinstance(r, dict)]
    assert len(placed) == 12, [str(r)[:160] for r in results if not isinstance(r, dict)][:3]
    assert all("daily_cap_usd" in r.message for r in results if not isinstance(r, dict))
    assert len(created(by.fake)) == 12
    assert by.trading()["live_usd"] == 480
