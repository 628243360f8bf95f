"""OKX v5 (`okx`: spot and linear perpetual swaps) driven by python-okx and ccxt through Warden, against the local fake
(fake_okx.py), which checks every OK-ACCESS-SIGN and the passphrase as OKX does.

A spot market buy counts `sz` in the quote currency (OKX's default) unless `tgtCcy` says otherwise; a swap's `sz`
counts contracts, each `ctVal` of the underlying (read from OKX's instrument list); leverage is held under
`max_leverage`; funding transfers, withdrawals, sub-accounts and loans never reach the venue.
"""
import concurrent.futures
import json
import threading

import ccxt
import okx.Account as OkxAccount
import okx.MarketData as OkxMarket
import okx.Trade as OkxTrade
import pytest

import fake_okx as fo
from test_exchanges import assert_only_real_credentials, Exchanges, raw, start_warden, write_config

REAL = {"api_key": fo.REAL_OKX_KEY, "api_secret": fo.REAL_OKX_SECRET, "passphrase": fo.REAL_OKX_PASSPHRASE}
THROWAWAY_SECRET, THROWAWAY_PASSPHRASE = "agent-throwaway-okx-secret", "agent-throwaway-passphrase"


@pytest.fixture
def ok(start, tmp_path, master_key):
    fake = fo.okx()
    config = tmp_path / "warden.toml"
    write_config(config, {"okx": fake})
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"okx": fake})
    world.creds = {"okx": world.credential("okx", REAL)}
    world.fake = fake
    yield world
    fake.stop()


def sdk(world, key, api=OkxTrade.TradeAPI):
    # flag "0": live trading (python-okx's default, "1", asks for OKX's demo environment).
    return api(key, THROWAWAY_SECRET, THROWAWAY_PASSPHRASE, False, "0", domain=world.url + "/proxy/okx")


def placed(fake):
    out = []
    for r in fake.requests:
        if r["path"] in ("/api/v5/trade/order", "/api/v5/trade/batch-orders") and r.get("accepted"):
            body = json.loads(r["body"])
            out += body if isinstance(body, list) else [body]
    return out


def test_python_okx_spot_and_swaps_paper_then_live(ok):
    fake, key = ok.fake, ok.key(venues=("okx",))
    trade, account = sdk(ok, key), sdk(ok, key, OkxAccount.AccountAPI)
    assert sdk(ok, key, OkxMarket.MarketAPI).get_ticker(instId="BTC-USDT")["data"][0]["last"] == "50000"
    assert account.get_account_balance()["data"][0]["details"][0]["availBal"] == "1000"

    paper = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="50")  # 50 USDT
    assert paper["code"] == "0" and paper["data"][0]["clOrdId"].startswith("wdn"), paper
    swap = trade.place_order(instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="market", sz="0.1")  # 0.1 × 0.01 BTC
    assert swap["code"] == "0"
    refused = account.set_leverage(instId="BTC-USDT-SWAP", lever="2", mgnMode="cross")
    assert refused["code"] == "50027" and "max_leverage (1x)" in refused["msg"], refused
    assert not placed(fake)
    assert [round(o["notional_usd"]) for o in ok.paper_orders()] == [50, 50]  # 0.1 contract is 0.001 BTC

    ok.put_profile(risk={"max_leverage": 4})
    ok.live("okx")
    assert account.set_leverage(instId="BTC-USDT-SWAP", lever="4", mgnMode="cross")["code"] == "0"
    assert fake.state["leverage"]["BTC-USDT-SWAP"] == "4"
    limit = trade.place_order(instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="limit", sz="0.16", px="50000")  # 80 USD
    assert limit["code"] == "0", limit
    order_id = limit["data"][0]["ordId"]
    assert fake.state["orders"][order_id]["clOrdId"].startswith("wdn") and "-" not in fake.state["orders"][order_id]["clOrdId"]
    assert trade.cancel_order(instId="BTC-USDT-SWAP", ordId=order_id)["code"] == "0"
    assert trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="90")["code"] == "0"

    for args, reason in (
        ({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "150"}, "max_leg_usd"),
        ({"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "0.003", "tgtCcy": "base_ccy"},
         "max_leg_usd"),
        ({"instId": "BTC-USDT", "tdMode": "cash", "side": "sell", "ordType": "market", "sz": "0.003"}, "max_leg_usd"),
        # Three contracts are 0.03 BTC: 1500 USD, whatever the price written.
        ({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell", "ordType": "limit", "sz": "3", "px": "1"}, "max_leg_usd"),
        ({"instId": "BTC-USDT", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "10"}, "tdMode"),
        ({"instId": "BTC-USD-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1"}, "instId"),
        ({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "optimal_limit_ioc", "sz": "1"}, "not priced"),
        ({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1", "tgtCcy": "quote_ccy"},
         "tgtCcy"),
    ):
        answer = trade.place_order(**args)
        assert answer["code"] != "0" and reason in answer["msg"], (args, answer)
    assert [o["sz"] for o in placed(fake)] == ["0.16", "90"]
    assert_only_real_credentials(fake, [key], throwaway=(THROWAWAY_SECRET, THROWAWAY_PASSPHRASE))


def ccxt_okx(world, key):
    exchange = ccxt.okx({"apiKey": key, "secret": THROWAWAY_SECRET, "password": THROWAWAY_PASSPHRASE})
    exchange.urls["api"] = {name: world.url + "/proxy/okx" for name in exchange.urls["api"]}
    return exchange


def test_ccxt_okx_out_of_the_box(ok):
    ok.put_profile(risk={"max_leverage": 3})
    ok.live("okx")
    key = ok.key(venues=("okx",))
    exchange = ccxt_okx(ok, key)
    assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(exchange.load_markets())
    assert exchange.fetch_balance()["USDT"]["free"] == 1000
    exchange.create_order("BTC/USDT", "limit", "buy", 0.001, 40000)  # ccxt places single orders as a batch of one
    exchange.create_order("BTC/USDT", "market", "buy", 0.001, 50000)
    exchange.set_leverage(3, "BTC/USDT:USDT", params={"mgnMode": "cross"})
    with pytest.raises(ccxt.ExchangeError, match="max_leverage"):
        exchange.set_leverage(4, "BTC/USDT:USDT", params={"mgnMode": "cross"})
    exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.1)  # 0.1 contract: 0.001 BTC
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        exchange.create_order("BTC/USDT:USDT", "market", "buy", 1)  # 0.01 BTC: 500 USD
    for call in (lambda: exchange.transfer("USDT", 10, "spot", "funding"),
                 lambda: exchange.withdraw("USDT", 10, "0x" + "1" * 40, params={"network": "ERC20", "fee": 1})):
        with pytest.raises(ccxt.ExchangeError, match="fund movement"):
            call()
    assert [(o["instId"], o["sz"]) for o in placed(ok.fake)] == [("BTC-USDT", "0.001"), ("BTC-USDT", "0.001"), ("BTC-USDT-SWAP", "0.1")]
    assert_only_real_credentials(ok.fake, [key], throwaway=(THROWAWAY_SECRET, THROWAWAY_PASSPHRASE))


OKX_FUND_MOVEMENT = [
    "/api/v5/asset/transfer", "/api/v5/asset/withdrawal", "/api/v5/asset/cancel-withdrawal", "/api/v5/asset/convert-dust-assets",
    "/api/v5/asset/convert/trade", "/api/v5/finance/savings/purchase-redempt", "/api/v5/finance/staking-defi/purchase",
    "/api/v5/users/subaccount/create-subaccount", "/api/v5/users/subaccount/apikey", "/api/v5/users/subaccount/transfer",
    "/api/v5/account/borrow-repay", "/api/v5/account/spot-manual-borrow-repay", "/api/v5/broker/nd/create-subaccount",
    "/api/v5/ASSET/transfer", "/api/v5//asset/withdrawal", "/api/v5/trade/../asset/transfer", "/api/v5/%61sset/transfer",
]
OKX_UNLISTED = [
    "/api/v5/trade/amend-order", "/api/v5/trade/amend-batch-orders", "/api/v5/trade/close-position", "/api/v5/trade/order-algo",
    "/api/v5/account/set-position-mode", "/api/v5/account/position/margin-balance", "/api/v5/account/set-isolated-mode",
    "/api/v5/tradingBot/grid/order-algo", "/api/v5/copytrading/first-copy-settings", "/api/v5/trade/Order",
    "/api/v5/trade/order/",
]


def test_fund_movement_and_unlisted_calls_never_reach_okx(ok):
    ok.put_profile(risk={"max_leverage": 100})
    ok.live("okx")
    key = ok.key(venues=("okx",))
    headers = {"OK-ACCESS-KEY": key, "OK-ACCESS-SIGN": "agent", "OK-ACCESS-PASSPHRASE": "agent", "Content-Type": "application/json",
               "x-simulated-trading": "1"}
    body = json.dumps({"ccy": "USDT", "amt": "100", "from": "18", "to": "6", "toAddr": "0x" + "1" * 40, "instId": "BTC-USDT",
                       "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "10"}).encode()
    for path in OKX_FUND_MOVEMENT + OKX_UNLISTED:
        for method in ("POST", "GET") if path in OKX_FUND_MOVEMENT else ("POST",):
            status, answer = raw(ok.server, method, "/proxy/okx" + path, headers, body if method == "POST" else b"")
            assert status in (400, 403) and json.loads(answer)["code"] != "0", (method, path, answer[:200])
    for target, order in (
        ("/api/v5/trade/order", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10","sz":"5000"}'),
        ("/api/v5/trade/order", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":10}'),
        ("/api/v5/trade/order", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10","reduceOnly":"true"}'),
        ("/api/v5/trade/order", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10","ccy":"USDT"}'),
        ("/api/v5/trade/order", b'{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1",'
                                b'"attachAlgoOrds":[{"tpTriggerPx":"60000","tpOrdPx":"-1"}]}'),
        ("/api/v5/trade/order", b'\xef\xbb\xbf{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10"}'),
        ("/api/v5/trade/order?sz=5000", b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10"}'),
        ("/api/v5/trade/batch-orders", b'[' + b','.join([b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10"}'] * 21) + b']'),
        ("/api/v5/trade/batch-orders", b'[{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"10"},'
                                       b'{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"500"}]'),
        ("/api/v5/account/set-leverage", b'{"instId":"BTC-USDT-SWAP","lever":"2","mgnMode":"cross","lever":"200"}'),
        ("/api/v5/account/set-leverage", b'{"instId":"BTC-USDT-SWAP","lever":"101","mgnMode":"cross"}'),
        ("/api/v5/account/set-leverage", b'{"ccy":"USDT","lever":"50","mgnMode":"cross"}'),
        ("/api/v5/account/set-leverage", b'{"instId":"BTC-USDT-SWAP","lever":true,"mgnMode":"cross"}'),
    ):
        status, answer = raw(ok.server, "POST", "/proxy/okx" + target, headers, order)
        assert status in (400, 403) and json.loads(answer)["code"] != "0", (target, order, answer[:200])
    reached = [r for r in ok.fake.requests if r["path"] not in ("/api/v5/account/balance",)
               and not r["path"].startswith(("/api/v5/market/ticker", "/api/v5/public/instruments"))]
    assert reached == [], [(r["method"], r["path"]) for r in reached]
    assert not [r for r in ok.fake.requests if "x-simulated-trading" in r["headers"]]


def test_the_daily_cap_is_exact_under_concurrent_spot_and_swap_orders(ok):
    ok.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    ok.live("okx")
    key = ok.key(venues=("okx",))
    local = threading.local()

    def order(i):
        if not hasattr(local, "trade"):
            local.trade = sdk(ok, key)
        args = ({"instId": "BTC-USDT", "tdMode": "cash", "ordType": "market", "sz": "40"} if i % 2 else
                {"instId": "ETH-USDT-SWAP", "tdMode": "cross", "ordType": "limit", "sz": "0.16", "px": "2500"})  # 0.016 ETH
        return local.trade.place_order(side="buy", **args)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    accepted = [r for r in results if r["code"] == "0"]
    assert len(accepted) == 12, [r["msg"] for r in results if r["code"] != "0"][:3]
    assert all("daily_cap_usd" in r["msg"] for r in results if r["code"] != "0")
    assert len(placed(ok.fake)) == 12
    assert ok.trading()["live_usd"] == 480
