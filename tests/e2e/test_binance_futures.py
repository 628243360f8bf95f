"""Binance USDⓈ-M futures (`binance-futures`) driven by python-binance and ccxt's binanceusdm through Warden, against
the local futures fake (fake_binance_futures.py), which checks every signature as Binance does.

An order is worth its notional (quantity × price, the mark price for market orders and for sells that may fill
above their limit), never its margin; leverage changes are held under `max_leverage` (1 unless the owner raises
it); transfers into or out of the futures wallet never reach a venue.
"""
import concurrent.futures
import json
import threading

import ccxt
import pytest
import requests

import fake_binance_futures as ff
import fake_exchanges as fx
from test_exchanges import (THROWAWAY_BINANCE_SECRET, Exchanges, assert_only_real_credentials, binance_client,
                            binance_refusal, raw, start_warden, throwaway_signed, write_config)

REAL = {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET}


def futures_client(url, key, secret=THROWAWAY_BINANCE_SECRET):
    """python-binance as docs/exchanges.md sets it up: Spot and margin through /proxy/binance, futures through
    /proxy/binance-futures."""
    client = binance_client(url + "/proxy/binance", key, secret)
    client.FUTURES_URL = url + "/proxy/binance-futures/fapi"
    return client


@pytest.fixture
def fut(start, tmp_path, master_key):
    fakes = {"binance": fx.binance(), "binance-futures": ff.binance_futures()}
    config = tmp_path / "warden.toml"
    write_config(config, fakes)
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), fakes)
    world.creds = {venue: world.credential(venue, REAL) for venue in fakes}
    world.fake = fakes["binance-futures"]
    yield world
    for fake in fakes.values():
        fake.stop()


def posted(fake, path):
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].split("?")[0] == path]


def audit_rows(world, action="gateway.forward"):
    entries = requests.get(world.api + "/audit", params={"action": action}, headers=world.auth).json()["entries"]
    return [json.loads(e["detail"]) for e in entries]


def test_the_fake_checks_what_python_binance_sends():
    fake = ff.binance_futures()
    try:
        client = binance_client(fake.url, fx.REAL_BINANCE_KEY, fx.REAL_BINANCE_SECRET)
        client.FUTURES_URL = fake.url + "/fapi"
        assert client.futures_change_leverage(symbol="BTCUSDT", leverage=3)["leverage"] == 3
        assert client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")["status"] == "FILLED"
        assert client.futures_position_information(symbol="BTCUSDT")[0]["positionAmt"] == "0.001"
        wrong = binance_client(fake.url, fx.REAL_BINANCE_KEY, "not-the-secret")
        wrong.FUTURES_URL = fake.url + "/fapi"
        assert "Signature" in binance_refusal(lambda: wrong.futures_account_balance(), 401)
    finally:
        fake.stop()


def test_python_binance_trades_futures_paper_then_live_within_the_caps_and_max_leverage(fut):
    fake, key = fut.fake, fut.key(venues=("binance-futures",))
    client = futures_client(fut.url, key)
    assert client.futures_mark_price(symbol="BTCUSDT")["markPrice"] == "50000.00"
    assert client.futures_account_balance()[0]["availableBalance"] == "1000.00"

    # Paper: Warden answers in the venue's shape; no order and no leverage change reaches it.
    paper = client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    # The mark plus the simulator's 5 bps of slippage.
    assert paper["status"] == "FILLED" and paper["avgPrice"] == "50025.00000000" and paper["cumQuote"] == "50.02500000", paper
    assert "max_leverage (1x)" in binance_refusal(lambda: client.futures_change_leverage(symbol="BTCUSDT", leverage=5))
    assert client.futures_change_leverage(symbol="BTCUSDT", leverage=1)["leverage"] == 1
    fut.put_profile(risk={"max_leverage": 10})
    assert fut.profile()["risk"]["max_leverage"] == 10
    assert client.futures_change_leverage(symbol="ETHUSDT", leverage=10)["leverage"] == 10
    assert "max_leverage (10x)" in binance_refusal(lambda: client.futures_change_leverage(symbol="BTCUSDT", leverage=11))
    assert not posted(fake, "/fapi/v1/order") and not posted(fake, "/fapi/v1/leverage")
    assert [o["notional_usd"] for o in fut.paper_orders() if o["venue"] == "binance-futures"] == [50.025]

    # Live, after the futures wallet passed the go-live checks.
    fut.live("binance-futures")
    assert client.futures_change_leverage(symbol="BTCUSDT", leverage=3)["leverage"] == 3
    assert fake.state["leverage"]["BTCUSDT"] == 3
    limit = client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0016",
                                        price="50000")  # 80 USD
    assert limit["status"] == "NEW" and limit["orderId"] in fake.state["orders"]
    assert client.futures_cancel_order(symbol="BTCUSDT", orderId=limit["orderId"])["status"] == "CANCELED"
    assert client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001")["status"] == "FILLED"

    # max_leg_usd 100 is notional, not margin: 0.003 BTC is 150 USD whatever the leverage.
    refusals = [
        lambda: client.futures_create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.003"),
        # A sell far below the mark fills at the market: worth 0.003 × 50000, not 0.003 × 1.
        lambda: client.futures_create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.003",
                                            price="1"),
        lambda: client.futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0021",
                                            price="50000"),
    ]
    for call in refusals:
        assert "max_leg_usd" in binance_refusal(call)
    fake.state["marks"]["ETHUSDT"] = "60000.00"  # the mark moved: a market order is worth what it is now
    assert "max_leg_usd" in binance_refusal(
        lambda: client.futures_create_order(symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.002"))
    # Orders Warden cannot value (conditional, price-matched, closing a whole position) are refused with the reason.
    for extra in ({"type": "STOP_MARKET", "stopPrice": "40000"}, {"type": "LIMIT", "price": "50000", "priceMatch": "OPPONENT"},
                  {"type": "MARKET", "closePosition": "true"}, {"type": "TRAILING_STOP_MARKET", "callbackRate": "1"}):
        status, body = raw(fut.server, "POST", "/proxy/binance-futures/fapi/v1/order", {"X-MBX-APIKEY": key},
                           throwaway_signed("symbol=BTCUSDT&side=SELL&quantity=0.001&" + "&".join(f"{k}={v}" for k, v in extra.items())).encode())
        assert status in (400, 403), (extra, status, body)
    assert client.futures_position_information(symbol="BTCUSDT")[0]["positionAmt"] == "-0.001"  # the market sell: a short

    assert len(posted(fake, "/fapi/v1/order")) == 2 and len(posted(fake, "/fapi/v1/leverage")) == 1
    classes = [(d["class"], d.get("mode"), d.get("leverage")) for d in audit_rows(fut) + audit_rows(fut, "gateway.simulate")]
    assert ("leverage", "live", "3") in classes and ("leverage", "paper", "10") in classes, classes
    assert_only_real_credentials(fake, [key])


def ccxt_usdm(url, key):
    """ccxt's binanceusdm with its default options: futures endpoints through /proxy/binance-futures, the Spot wallet
    reads it makes while loading markets through /proxy/binance, each with the same agent key."""
    exchange = ccxt.binanceusdm({"apiKey": key, "secret": THROWAWAY_BINANCE_SECRET})
    proxied = {}
    for name, api in exchange.urls["api"].items():
        host, path = api.split("/", 3)[2], api.split("/", 3)[3]
        venue = "binance-futures" if host.startswith("fapi.") else "binance"
        proxied[name] = f"{url}/proxy/{venue}/{path}"
    exchange.urls["api"] = proxied
    return exchange


def test_ccxt_binanceusdm_out_of_the_box(fut):
    fut.put_profile(risk={"max_leverage": 5})
    fut.live("binance", "binance-futures")
    key = fut.key(venues=("binance", "binance-futures"))
    exchange = ccxt_usdm(fut.url, key)
    markets = exchange.load_markets()
    assert {"BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(markets)
    assert exchange.fetch_balance()["USDT"]["free"] == 1000
    assert exchange.set_leverage(5, "BTC/USDT:USDT")["leverage"] == 5
    with pytest.raises(ccxt.ExchangeError, match="max_leverage"):
        exchange.set_leverage(6, "BTC/USDT:USDT")
    order = exchange.create_order("BTC/USDT:USDT", "limit", "buy", 0.001, 40000)
    assert order["status"] == "open" and int(order["id"]) in fut.fake.state["orders"]
    assert exchange.cancel_order(order["id"], "BTC/USDT:USDT")["status"] == "canceled"
    assert exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.001)["status"] == "closed"
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    assert exchange.fetch_positions(["BTC/USDT:USDT"])[0]["contracts"] == 0.001
    for call in (lambda: exchange.transfer("USDT", 10, "future", "spot"),
                 lambda: exchange.withdraw("USDT", 10, "0x" + "1" * 40, params={"network": "ETH"})):
        with pytest.raises(ccxt.ExchangeError, match="fund movement"):
            call()
    for fake in fut.fakes.values():
        assert not [r for r in fake.requests if "transfer" in r["path"].lower() or "withdraw/apply" in r["path"]]
        assert_only_real_credentials(fake, [key])


FUTURES_FUND_MOVEMENT = [
    # Transfers between the Spot and futures wallets, and withdrawals, wherever an agent points them.
    "/sapi/v1/futures/transfer", "/sapi/v1/asset/transfer", "/sapi/v1/capital/withdraw/apply", "/wapi/v3/withdraw.html",
    "/sapi/v1/sub-account/futures/transfer", "/sapi/v1/futures/loan/borrow", "/fapi/v1/transfer", "/fapi/v1/asset/transfer",
    "/fapi/v1/TRANSFER", "/fapi/v1/%74ransfer", "/fapi/v1/../../sapi/v1/futures/transfer", "/fapi/v1/withdraw",
    "/SAPI/v1/futures/transfer", "/sapi/v1/futures/transfer;x=1", "/sapi//v1/futures/transfer",
]
# Not on Warden's list: an order change, batches and algo orders (not valued), margin and position settings.
FUTURES_UNLISTED = [
    ("PUT", "/fapi/v1/order"), ("POST", "/fapi/v1/batchOrders"), ("PUT", "/fapi/v1/batchOrders"), ("POST", "/fapi/v1/algoOrder"),
    ("POST", "/fapi/v1/marginType"), ("POST", "/fapi/v1/positionMargin"), ("POST", "/fapi/v1/positionSide/dual"),
    ("POST", "/fapi/v1/multiAssetsMargin"), ("POST", "/fapi/v1/Leverage"), ("POST", "/fapi/v2/leverage"),
    ("POST", "/fapi/v1/convert/acceptQuote"), ("POST", "/fapi/v1/Order"), ("POST", "/fapi/v1/order/"),
]


def test_fund_movement_and_unlisted_calls_never_reach_the_futures_venue(fut):
    fut.put_profile(risk={"max_leverage": 125})
    fut.live("binance-futures")
    key = fut.key(venues=("binance-futures",))
    headers = {"X-MBX-APIKEY": key}
    client = futures_client(fut.url, key)
    client.MARGIN_API_URL = fut.url + "/proxy/binance-futures/sapi"
    assert "fund movement" in binance_refusal(lambda: client.futures_account_transfer(asset="USDT", amount="100", type=2))
    form = throwaway_signed("asset=USDT&amount=100&type=2&coin=USDT&address=0x1111111111111111111111111111111111111111")
    for path in FUTURES_FUND_MOVEMENT:
        for method, target, body in (("POST", path, form.encode()), ("GET", path + "?" + form, b"")):
            status, answer = raw(fut.server, method, "/proxy/binance-futures" + target, headers, body)
            assert status in (400, 403), (method, path, status, answer[:200])
    order = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=50000&orderId=1&leverage=2"
    for method, path in FUTURES_UNLISTED:
        status, answer = raw(fut.server, method, "/proxy/binance-futures" + path, headers, throwaway_signed(order).encode())
        assert status in (400, 403), (method, path, status, answer[:200])
    # Leverage in every spelling Binance might read as more than max_leverage, or as two values.
    for params in ("symbol=BTCUSDT&leverage=126", "symbol=BTCUSDT&leverage=1000", "symbol=BTCUSDT&leverage=0",
                   "symbol=BTCUSDT&leverage=-5", "symbol=BTCUSDT&leverage=%2B5", "symbol=BTCUSDT&leverage=5.0",
                   "symbol=BTCUSDT&leverage=5&leverage=200", "symbol=BTCUSDT&leverage=1e2", "symbol=BTCUSDT&leverage=0x10",
                   "symbol=BTCUSDT&leverage=%D9%A5", "symbol=BTCUSDT&leverage=5&extra=1", "symbol=btcusdt&leverage=5",
                   "symbol=BTCUSDT_250328&leverage=5", "leverage=5"):
        status, answer = raw(fut.server, "POST", "/proxy/binance-futures/fapi/v1/leverage", headers, throwaway_signed(params).encode())
        assert status in (400, 403), (params, status, answer[:200])
    status, _ = raw(fut.server, "POST", "/proxy/binance-futures/fapi/v1/leverage?leverage=5", headers,
                    throwaway_signed("symbol=BTCUSDT&leverage=200").encode())
    assert status == 400  # in the query and the body: Binance would read one of them
    reached = [r for r in fut.fake.requests if r["method"] != "GET" or "transfer" in r["path"].lower()]
    assert reached == [], [(r["method"], r["path"]) for r in reached]


def test_the_daily_cap_is_exact_under_concurrent_spot_and_futures_orders(fut):
    """100 concurrent 40 USD orders, half to Spot, half to futures, with leverage changes among them: the owner's
    daily cap of 500 USD spans both venues, so exactly 12 orders reach them."""
    fut.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500, "max_leverage": 3})
    fut.live("binance", "binance-futures")
    key = fut.key(venues=("binance", "binance-futures"))
    local = threading.local()

    def client():
        if not hasattr(local, "client"):
            local.client = futures_client(fut.url, key)
        return local.client

    def spot():
        return client().create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0008", price="50000")

    def futures():
        return client().futures_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0008",
                                             price="50000")

    def leverage(n):
        return lambda: client().futures_change_leverage(symbol="BTCUSDT", leverage=n)

    jobs = [spot, futures] * 50 + [leverage(2), leverage(4)] * 5

    def run(job):
        try:
            return job()
        except Exception as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(run, jobs))
    orders = [r for r in results[:100] if isinstance(r, dict)]
    assert len(orders) == 12, [str(r)[:120] for r in results[:100] if not isinstance(r, dict)][:3]
    refused = [str(r) for r in results[:100] if not isinstance(r, dict)]
    assert all("daily_cap_usd" in r for r in refused), refused[:3]
    at_venues = posted(fut.fakes["binance"], "/api/v3/order") + posted(fut.fake, "/fapi/v1/order")
    assert len(at_venues) == 12
    levers = results[100:]
    assert sum(isinstance(r, dict) for r in levers) == 5 and all("max_leverage" in str(r) for r in levers if not isinstance(r, dict))
    assert all(r["leverage"] == 2 for r in levers if isinstance(r, dict))
    assert {p["leverage"] for p in (dict(kv.split("=") for kv in r["body"].decode().split("&"))
                                    for r in posted(fut.fake, "/fapi/v1/leverage"))} == {"2"}
    assert fut.trading()["live_usd"] == 480


def test_the_agents_signature_content_type_and_stray_headers_never_go_upstream(fut):
    """What the agent's SDK signed with its own secret, a Content-Type that does not match the form body, and a
    header spelled with `_` (which CGI-style servers read as the `-` one) stay at Warden."""
    fut.live("binance-futures")
    key = fut.key(venues=("binance-futures",))
    agent_signed = throwaway_signed("symbol=BTCUSDT")
    extra = {"X-MBX-APIKEY": key, "X_MBX_APIKEY": "agent-chosen", "X_HTTP_METHOD_OVERRIDE": "DELETE"}
    status, _ = raw(fut.server, "GET", "/proxy/binance-futures/fapi/v1/depth?" + agent_signed, extra)
    assert status == 200
    status, _ = raw(fut.server, "GET", "/proxy/binance-futures/fapi/v2/balance?" + agent_signed.replace("signature=", "Signature="), extra)
    assert status == 200
    body = throwaway_signed("symbol=BTCUSDT&leverage=1").encode()
    for content_type in ("application/json", "text/plain", "multipart/form-data; boundary=x"):
        status, _ = raw(fut.server, "POST", "/proxy/binance-futures/fapi/v1/leverage", {**extra, "Content-Type": content_type}, body)
        assert status == 200
    agent_signatures = {part.split("=", 1)[1] for part in agent_signed.split("&") if part.startswith("signature=")}
    for r in fut.fake.requests:
        assert not agent_signatures & set(r["path"].replace("?", "&").replace("=", "&").split("&")), r["path"]
        assert r["path"].lower().count("signature=") + r["body"].decode().lower().count("signature=") == (0 if r["path"].startswith("/fapi/v1/depth") else 1), r
        assert not {"x_mbx_apikey", "x_http_method_override"} & set(r["headers"]), r["headers"]
        if r["method"] == "POST":
            assert r["headers"]["content-type"] == "application/x-www-form-urlencoded", r["headers"]
    public = [r for r in fut.fake.requests if r["path"].startswith("/fapi/v1/depth")]
    assert public and "signature" not in public[0]["path"]
