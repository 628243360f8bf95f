"""Alpaca (`alpaca`: US stocks and crypto) driven by alpaca-py and ccxt through Warden, against the local fake
(fake_alpaca.py), which checks Alpaca's key headers on its trading host and on its market data host apart.

Warden sends market data calls (`/v2/stocks/…`, `/v1beta3/crypto/…`) to the market data host and prices orders
from its snapshots with the real credential; closing positions, replacing orders, wallets, bank links and the
Broker API never reach the venue.
"""
import concurrent.futures
import json
import threading

import ccxt
import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockSnapshotRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest

import fake_alpaca as fa
from test_exchanges import assert_only_real_credentials, Exchanges, raw, start_warden

REAL = {"api_key": fa.REAL_ALPACA_KEY, "api_secret": fa.REAL_ALPACA_SECRET}
THROWAWAY_SECRET = "agent-throwaway-alpaca-secret"


@pytest.fixture
def al(start, tmp_path, master_key):
    fake = fa.alpaca()
    config = tmp_path / "warden.toml"
    config.write_text(f'[venues.alpaca]\nbase_url = "{fake.url}"\nmarket_data_url = "{fake.data.url}"\n')
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"alpaca": fake})
    world.creds = {"alpaca": world.credential("alpaca", REAL)}
    world.fake = fake
    yield world
    fake.stop()
    fake.data.stop()


def trading(world, key):
    return TradingClient(key, THROWAWAY_SECRET, url_override=world.url + "/proxy/alpaca")


def created(fake):
    return [json.loads(r["body"]) for r in fake.requests if r["path"] == "/v2/orders" and r.get("accepted")]


def refused(call):
    with pytest.raises(APIError) as caught:
        call()
    return str(caught.value)


def test_the_fake_checks_keys_as_alpaca_does(al):
    client = TradingClient(fa.REAL_ALPACA_KEY, fa.REAL_ALPACA_SECRET, url_override=al.fake.url)
    assert client.get_account().cash == "1000"
    data = StockHistoricalDataClient(fa.REAL_ALPACA_KEY, fa.REAL_ALPACA_SECRET, url_override=al.fake.data.url)
    assert data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"].latest_trade.price == 200
    wrong = TradingClient(fa.REAL_ALPACA_KEY, "not-the-secret", url_override=al.fake.url)
    assert "not authorized" in refused(wrong.get_account)


def test_alpaca_py_paper_then_live_with_market_data_on_its_own_host(al):
    fake, key = al.fake, al.key(venues=("alpaca",))
    client = trading(al, key)
    assert client.get_account().cash == "1000"
    # Market data goes to the market data host, with the real key.
    data = StockHistoricalDataClient(key, THROWAWAY_SECRET, url_override=al.url + "/proxy/alpaca")
    assert data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="AAPL"))["AAPL"].latest_quote.ask_price == 200
    assert [r["path"] for r in fake.data.requests] == ["/v2/stocks/snapshots?symbols=AAPL"]
    assert not [r for r in fake.requests if "/stocks/" in r["path"]]

    paper = client.submit_order(MarketOrderRequest(symbol="AAPL", qty=0.2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY))
    assert paper.status == "filled" and paper.client_order_id.startswith("wdn-"), paper
    # 0.2 shares at 200, filled on paper 5 bp (the simulator's default slippage) above.
    assert not created(fake) and [round(o["notional_usd"], 2) for o in al.paper_orders()] == [40.02]

    al.live("alpaca")
    limit = client.submit_order(
        LimitOrderRequest(symbol="AAPL", qty=0.4, limit_price=200, side=OrderSide.BUY, time_in_force=TimeInForce.GTC))
    assert fake.state["orders"][str(limit.id)]["client_order_id"].startswith("wdn-")
    client.cancel_order_by_id(limit.id)
    assert fake.state["orders"][str(limit.id)]["status"] == "canceled"
    assert client.submit_order(MarketOrderRequest(symbol="BRK.B", notional=90, side=OrderSide.BUY,
                                                  time_in_force=TimeInForce.DAY)).status == "filled"
    for order, reason in (
        (MarketOrderRequest(symbol="AAPL", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY), "max_leg_usd"),
        (MarketOrderRequest(symbol="AAPL", notional=150, side=OrderSide.BUY, time_in_force=TimeInForce.DAY), "max_leg_usd"),
        # A sell's limit does not bound it: 1 share sells at the market's 200 at least.
        (LimitOrderRequest(symbol="AAPL", qty=1, limit_price=1, side=OrderSide.SELL, time_in_force=TimeInForce.DAY),
         "max_leg_usd"),
        (MarketOrderRequest(symbol="BTC/USD", qty=0.003, side=OrderSide.BUY, time_in_force=TimeInForce.GTC), "max_leg_usd"),
        (MarketOrderRequest(symbol="AAPL", qty=0.1, side=OrderSide.BUY, time_in_force=TimeInForce.OPG), "time_in_force"),
        (MarketOrderRequest(symbol="AAPL", qty=0.1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, order_class="bracket",
                            take_profit={"limit_price": 300}, stop_loss={"stop_price": 100}), "take_profit"),
    ):
        message = refused(lambda: client.submit_order(order))
        assert reason in message, (order, message)
    assert [(o["symbol"], o.get("qty"), o.get("notional")) for o in created(fake)] == [("AAPL", 0.4, None), ("BRK.B", None, 90)]
    assert_only_real_credentials(fake, [key], throwaway=(THROWAWAY_SECRET,))
    assert_only_real_credentials(fake.data, [key], throwaway=(THROWAWAY_SECRET,))


def test_ccxt_alpaca_crypto_out_of_the_box(al):
    al.live("alpaca")
    key = al.key(venues=("alpaca",))
    exchange = ccxt.alpaca({"apiKey": key, "secret": THROWAWAY_SECRET})
    exchange.urls["api"] = {name: al.url + "/proxy/alpaca" for name in exchange.urls["api"]}
    assert "BTC/USD" in exchange.load_markets()
    assert exchange.fetch_balance()["USD"]["free"] == 1000
    assert exchange.fetch_ticker("BTC/USD")["last"] == 50000
    assert exchange.create_order("BTC/USD", "limit", "buy", 0.001, 40000)["id"] in al.fake.state["orders"]
    assert exchange.create_order("BTC/USD", "market", "buy", 0.001)["id"] in al.fake.state["orders"]
    # ccxt reads Alpaca's 403 as ExchangeNotAvailable, whatever its message, as it does Alpaca's own refusals.
    with pytest.raises(ccxt.ExchangeNotAvailable, match="max_leg_usd"):
        exchange.create_order("BTC/USD", "market", "sell", 0.01)
    with pytest.raises(ccxt.BadRequest, match="stop_price"):
        exchange.create_order("BTC/USD", "limit", "buy", 0.001, 40000, params={"triggerPrice": 41000})
    assert [o["qty"] for o in created(al.fake)] == ["0.001", "0.001"]
    assert_only_real_credentials(al.fake, [key], throwaway=(THROWAWAY_SECRET,))


ALPACA_FUND_MOVEMENT = [
    "/v2/wallets", "/v2/wallets/transfers", "/v2/wallets/whitelists", "/v2/WALLETS/transfers", "/v1/accounts/a1/transfers",
    "/v1/accounts/a1/ach_relationships", "/v1/accounts/a1/recipient_banks", "/v1/journals", "/v1/transfers",
    "/v2/account/../wallets/transfers", "/v2//wallets/transfers", "/v2/%77allets/transfers", "/v2/orders/../wallets",
    "/v2/account/withdrawals", "/v2/ach_relationships", "/v2/bank/transfer",
]
ALPACA_UNLISTED = ["/v2/account/configurations", "/v2/positions/AAPL/exercise", "/v2/watchlists", "/v2/orders/abc/replace"]


def test_fund_movement_closing_positions_and_unlisted_calls_never_reach_alpaca(al):
    al.live("alpaca")
    key = al.key(venues=("alpaca",))
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": THROWAWAY_SECRET, "Content-Type": "application/json"}
    body = json.dumps({"amount": "100", "asset": "USDC", "address": "0x" + "1" * 40, "symbol": "AAPL", "qty": "1"}).encode()
    for path in ALPACA_FUND_MOVEMENT + ALPACA_UNLISTED:
        for method in ("POST", "PATCH", "DELETE") + (("GET",) if path in ALPACA_FUND_MOVEMENT else ()):
            status, answer = raw(al.server, method, "/proxy/alpaca" + path, headers, body if method != "GET" else b"")
            assert status in (400, 403), (method, path, answer[:200])
            assert json.loads(answer)["code"] == {400: 40010001, 403: 40310000}[status]
    for method, path in (("DELETE", "/v2/positions"), ("DELETE", "/v2/positions/AAPL"), ("PATCH", "/v2/orders/abc"),
                         ("POST", "/v2/stocks/AAPL/trades")):
        status, answer = raw(al.server, method, "/proxy/alpaca" + path, headers, b'{"qty":"1"}')
        assert status in (400, 403), (method, path, answer[:200])
    for order in (
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1","qty":"50"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":true}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"1e-1"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1","notional":"5"}',
        b'{"symbol":"AAPL","side":"buy","type":"limit","time_in_force":"day","notional":"5","limit_price":"1"}',
        b'{"symbol":"AAPL","side":"buy","type":"stop","time_in_force":"day","qty":"0.1","stop_price":"1"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"cls","qty":"0.1"}',
        b'{"symbol":"aapl","side":"buy","type":"market","time_in_force":"day","qty":"0.1"}',
        b'{"symbol":"BTC/EUR","side":"buy","type":"market","time_in_force":"gtc","qty":"0.001"}',
        b'{"symbol":"AAPL","side":"Buy","type":"market","time_in_force":"day","qty":"0.1"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1","extended_hours":1}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1","order_class":"oto"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1","position_intent":"buy_to_open"}',
        b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1"} {}',
        b'symbol=AAPL&side=buy&type=market&time_in_force=day&qty=0.1',
    ):
        status, answer = raw(al.server, "POST", "/proxy/alpaca/v2/orders", headers, order)
        assert status == 400 and json.loads(answer)["code"] == 40010001, (order, answer[:200])
    status, answer = raw(al.server, "POST", "/proxy/alpaca/v2/orders?qty=50", headers,
                         b'{"symbol":"AAPL","side":"buy","type":"market","time_in_force":"day","qty":"0.1"}')
    assert status == 400
    reached = [r for r in al.fake.requests if r["path"] != "/v2/account"]
    assert reached == [] and al.fake.data.requests == [], [(r["method"], r["path"]) for r in reached]


def test_the_daily_cap_is_exact_under_concurrent_stock_and_crypto_orders(al):
    al.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    al.live("alpaca")
    key = al.key(venues=("alpaca",))
    local = threading.local()

    def order(i):
        if not hasattr(local, "client"):
            local.client = trading(al, key)
        request = (MarketOrderRequest(symbol="AAPL", qty=0.2, side=OrderSide.BUY, time_in_force=TimeInForce.DAY) if i % 2 else
                   LimitOrderRequest(symbol="BTC/USD", qty=0.0008, limit_price=50000, side=OrderSide.BUY,
                                     time_in_force=TimeInForce.GTC))
        try:
            return local.client.submit_order(request)
        except APIError as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    placed = [r for r in results if not isinstance(r, APIError)]
    assert len(placed) == 12, [str(r)[:160] for r in results if isinstance(r, APIError)][:3]
    assert all("daily_cap_usd" in str(r) for r in results if isinstance(r, APIError))
    assert len(created(al.fake)) == 12
    assert al.trading()["live_usd"] == 480
