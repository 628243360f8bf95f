"""ccxt and python-binance, each with its default options, through Warden against the fake Binance
(fake_exchanges.py, which verifies every signature). ccxt reads margin pairs and coin configuration from /sapi
while it loads markets: those reads pass, each by method and exact path, while withdrawals, transfers and margin
loans are refused before the venue, whatever the SDK calls them. Last, the reads kalshi-python and py-clob-client
make that Warden had left unlisted."""
import json
from urllib.parse import parse_qsl, urlsplit

import ccxt
import pytest
import requests

import fake_exchanges as fx
from py_clob_client.clob_types import OrdersScoringParams

from test_exchanges import (THROWAWAY_BINANCE_SECRET, assert_only_real_credentials, binance_refusal, ex, fakes,  # noqa: F401
                            kalshi_order, kalshi_refusal, orders_seen, poly_order, poly_refusal, raw, record_binance_signatures,
                            record_kalshi_signatures, record_poly_signatures, throwaway_signed)


def ccxt_binance(url, agent_key):
    """The set-up docs/exchanges.md shows: Warden's URL for every endpoint that carries a key; Binance's public
    futures and options market data (read while loading markets, with no key) left where it is."""
    exchange = ccxt.binance({"apiKey": agent_key, "secret": THROWAWAY_BINANCE_SECRET})
    exchange.urls["api"] = {name: api if "Public" in name else url + "/proxy/binance/" + api.split("/", 3)[3]
                            for name, api in exchange.urls["api"].items()}
    return exchange


def signatures_made_by(exchange):
    """The signatures ccxt computes with its throwaway secret, as it sends them."""
    seen, sign = [], exchange.sign

    def recording(*args, **kwargs):
        request = sign(*args, **kwargs)
        params = urlsplit(request["url"]).query + "&" + (request.get("body") or "")
        seen.extend(v for k, v in parse_qsl(params) if k == "signature")
        return request
    exchange.sign = recording
    return seen


@pytest.fixture
def exchange(ex):
    """ccxt's binance with default options; Binance's public futures hosts are the fake too (nothing leaves)."""
    fake = ex.fakes["binance"]
    ex.live("binance")
    ex.agent = ex.key()
    exchange = ccxt_binance(ex.url, ex.agent)
    exchange.urls["api"] = {name: api.replace("https://fapi.binance.com", fake.url).replace("https://dapi.binance.com", fake.url)
                            .replace("https://eapi.binance.com", fake.url)
                            for name, api in exchange.urls["api"].items()}
    assert all(api.startswith("http://127.0.0.1:") for api in exchange.urls["api"].values()), exchange.urls["api"]
    assert exchange.options["fetchMargins"] is True and exchange.options["fetchCurrencies"] is True
    return exchange


def sapi_seen(fake, method="GET"):
    return sorted({r["path"].split("?")[0] for r in fake.requests if r["method"] == method and r["path"].startswith("/sapi/")})


def test_ccxt_loads_markets_trades_and_reads_with_its_default_options(ex, exchange):
    fake = ex.fakes["binance"]
    signatures = signatures_made_by(exchange)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "ETH/BTC", "BNB/USDT"} <= set(markets)
    assert markets["BTC/USDT"]["marginModes"] == {"cross": True, "isolated": True}  # /sapi/v1/margin/allPairs, isolated/allPairs
    assert exchange.currencies["USDT"]["networks"]["ERC20"]["fee"] == 4  # from /sapi/v1/capital/config/getall
    assert sapi_seen(fake) == ["/sapi/v1/capital/config/getall", "/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs"]
    # The futures market lists came from Binance's public futures hosts, with no key at all.
    futures = [r for r in fake.requests if r["path"].startswith(("/fapi/", "/dapi/"))]
    assert futures and all("x-mbx-apikey" not in r["headers"] for r in futures)

    assert exchange.fetch_balance()["USDT"]["free"] == 1000
    assert exchange.fetch_ticker("BTC/USDT")["last"] == 50000

    limit = exchange.create_order("BTC/USDT", "limit", "buy", 0.0008, 50000)  # 40 USD
    assert limit["status"] == "open" and int(limit["id"]) in fake.state["orders"]
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [limit["id"]]
    assert exchange.cancel_order(limit["id"], "BTC/USDT")["status"] == "canceled"
    assert fake.state["orders"][int(limit["id"])]["status"] == "CANCELED"
    market = exchange.create_order("BTC/USDT", "market", "buy", 0.001)      # 50 USD at the last price
    assert market["status"] == "closed" and market["filled"] == 0.001
    trades = exchange.fetch_my_trades("BTC/USDT")
    assert [(t["order"], t["amount"], t["price"]) for t in trades] == [(market["id"], 0.001, 50000)]

    withdrawals = exchange.fetch_withdrawals("USDT")                        # a read of the withdrawal history
    assert [(w["type"], w["amount"], w["status"]) for w in withdrawals] == [("withdrawal", 8.91, "ok")]
    assert "/sapi/v1/capital/withdraw/history" in sapi_seen(fake)

    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 2
    assert len(orders_seen(fake, "DELETE", "/api/v3/order")) == 1
    assert signatures, "ccxt signed nothing"
    assert_only_real_credentials(fake, [ex.agent, *signatures])
    assert ex.trading()["live_usd"] == pytest.approx(90.0)


def test_ccxt_cannot_move_funds_or_pass_the_per_order_cap(ex, exchange):
    fake = ex.fakes["binance"]
    exchange.load_markets()
    before = len(fake.requests)
    refused = {
        "withdraw": lambda: exchange.withdraw("USDT", 100, "0x" + "1" * 40, params={"network": "ETH"}),
        "transfer": lambda: exchange.transfer("USDT", 100, "spot", "funding"),
        "transfer to margin": lambda: exchange.transfer("USDT", 100, "spot", "margin"),
        "borrow_cross_margin": lambda: exchange.borrow_cross_margin("USDT", 100),
        "repay_cross_margin": lambda: exchange.repay_cross_margin("USDT", 100),
        "borrow_isolated_margin": lambda: exchange.borrow_isolated_margin("BTC/USDT", "USDT", 100),
        "repay_isolated_margin": lambda: exchange.repay_isolated_margin("BTC/USDT", "USDT", 100),
    }
    for name, call in refused.items():
        with pytest.raises(ccxt.ExchangeError) as caught:
            call()
        assert "fund movement" in str(caught.value), (name, caught.value)
    # An order over max_leg_usd (100): 0.003 BTC at 50000 is 150 USD; a market sell of 0.041 ETH at 2500 is 102.50.
    for call in (lambda: exchange.create_order("BTC/USDT", "limit", "buy", 0.003, 50000),
                 lambda: exchange.create_order("ETH/USDT", "market", "sell", 0.041)):
        with pytest.raises(ccxt.ExchangeError) as caught:
            call()
        assert "max_leg_usd" in str(caught.value), caught.value
    reached = [(r["method"], r["path"]) for r in fake.requests[before:]]
    assert not [r for r in reached if r[0] != "GET"], reached  # only the price reads for the cap check
    assert not sapi_seen(fake, "POST") and not orders_seen(fake, "POST", "/api/v3/order")
    assert ex.trading()["live_usd"] == pytest.approx(0)


def test_python_binance_common_calls(ex):
    fake = ex.fakes["binance"]
    agent = ex.key()
    client = ex.binance(agent)
    signatures = record_binance_signatures(client)
    assert {s["symbol"] for s in client.get_exchange_info()["symbols"]} == set(fx.BINANCE_PRICES)
    assert client.get_symbol_info("ETHBTC")["quoteAsset"] == "BTC"
    assert {t["symbol"]: t["price"] for t in client.get_all_tickers()} == fx.BINANCE_PRICES
    assert client.get_asset_details()["USDT"]["withdrawStatus"] is True
    assert client.get_asset_details(asset="BTC") == {"BTC": client.get_asset_details()["BTC"]}
    assert [p["symbol"] for p in client.get_margin_all_pairs()] == list(fx.BINANCE_PRICES)
    assert {a["assetName"] for a in client.get_margin_all_assets()} == set(fx.BINANCE_COINS)
    assert [p["symbol"] for p in client.get_all_isolated_margin_symbols()] == list(fx.BINANCE_PRICES)
    assert [c["coin"] for c in client.get_all_coins_info()] == list(fx.BINANCE_COINS)
    assert client.get_system_status() == {"status": 0, "msg": "normal"}
    assert client.get_account_status() == {"data": "Normal"}
    assert client.get_account_api_trading_status()["data"]["isLocked"] is False
    assert client.get_account_api_permissions()["enableWithdrawals"] is False
    assert client.get_trade_fee(symbol="BTCUSDT") == [{"symbol": "BTCUSDT", "makerCommission": "0.001", "takerCommission": "0.001"}]
    assert client.get_withdraw_history(coin="USDT")[0]["amount"] == "8.91000000"
    assert client.get_deposit_history() == []
    assert len(signatures) >= 10
    assert_only_real_credentials(fake, [agent, *signatures])
    # The public status call went unsigned; the others carry Warden's signature (the fake checked each one).
    status = [r for r in fake.requests if r["path"].startswith("/sapi/v1/system/status")]
    assert status and all(r["auth"] == "public" and "signature=" not in r["path"] for r in status)


def test_a_listed_read_is_a_read_only_as_itself(ex):
    """The write twin of each read, another spelling of its path, another method in disguise, or an unlisted
    read in a money family: each refused, none reaching the venue."""
    ex.live("binance")
    fake = ex.fakes["binance"]
    agent = ex.key()
    client = ex.binance(agent)
    before = len(fake.requests)
    assert "fund movement" in binance_refusal(lambda: client.get_user_asset())        # POST /sapi/v3/asset/getUserAsset
    assert "fund movement" in binance_refusal(lambda: client.get_dust_assets())       # POST /sapi/v1/asset/dust-btc
    assert "fund movement" in binance_refusal(lambda: client.transfer_dust(asset="BNB"))
    assert "fund movement" in binance_refusal(lambda: client.get_margin_loan_details(asset="USDT", txId="1"))
    headers = {"X-MBX-APIKEY": agent}
    refused = []
    for path in ["/sapi/v1/margin/allPairs", "/sapi/v1/capital/config/getall", "/sapi/v1/capital/withdraw/history",
                 "/sapi/v1/asset/assetDetail", "/sapi/v1/account/apiRestrictions"]:
        signed = throwaway_signed("asset=USDT&amount=1")
        for method in ("POST", "PUT", "DELETE"):
            refused.append((method, path, signed.encode(), {}))
        refused += [
            ("GET", path.upper() + "?" + signed, b"", {}),
            ("GET", path.replace("/v1/", "/V1/") + "?" + signed, b"", {}),
            ("GET", path + "/x?" + signed, b"", {}),
            ("GET", path + "?" + signed, b"", {"X-HTTP-Method-Override": "POST"}),
            ("GET", path + "?" + signed + "&_method=POST", b"", {}),
        ]
    refused += [("GET", p + "?" + throwaway_signed("asset=USDT"), b"", {}) for p in (
        "/sapi/v1/margin/loan", "/sapi/v1/margin/maxBorrowable", "/sapi/v1/asset/transfer", "/sapi/v1/capital/deposit/subAddress",
        "/sapi/v1/capital/withdraw/apply", "/sapi/v2/capital/withdraw/history")]
    for method, path, body, extra in refused:
        status, answer = raw(ex.server, method, "/proxy/binance" + path, {**headers, **extra}, body)
        assert status in (400, 403), f"{method} {path} {extra} -> {status} {answer[:200]}"
        assert json.loads(answer)["code"] < 0
    assert len(fake.requests) == before, [(r["method"], r["path"]) for r in fake.requests[before:]]
    # The exact read itself passes, through the same raw client.
    status, answer = raw(ex.server, "GET", "/proxy/binance/sapi/v1/margin/allPairs?" + throwaway_signed("symbol=BTCUSDT"), headers)
    assert status == 200 and [p["symbol"] for p in json.loads(answer)] == ["BTCUSDT"]


def test_kalshi_python_reads(ex):
    ex.live("kalshi")
    fake = ex.fakes["kalshi"]
    agent = ex.key()
    client = ex.kalshi(agent)
    signatures = record_kalshi_signatures(client)
    event = fx.KALSHI_TICKER.rsplit("-", 1)[0]
    assert client.get_event_metadata(event).market_details[0].market_ticker == fx.KALSHI_TICKER
    assert client.get_user_data_timestamp().as_of_time is not None
    assert client.get_market_orderbook(fx.KALSHI_TICKER).orderbook.yes_dollars == [["0.4400", "100"]]
    assert [g.id for g in client.get_order_groups().order_groups] == ["og-1"]
    order = kalshi_order(client, 2).order
    assert client.get_order_queue_position(order.order_id).queue_position == 3
    by_path = {r["path"].split("?")[0]: r["auth"] for r in fake.requests}
    # The order book and the account's own records went signed by Warden; the public reads unsigned.
    assert by_path[f"/trade-api/v2/markets/{fx.KALSHI_TICKER}/orderbook"] == "ok"
    assert by_path["/trade-api/v2/portfolio/order_groups"] == "ok"
    assert by_path[f"/trade-api/v2/portfolio/orders/{order.order_id}/queue_position"] == "ok"
    assert by_path[f"/trade-api/v2/events/{event}/metadata"] == "public"
    assert_only_real_credentials(fake, [agent, *signatures])
    # Their write twins are not on Warden's list.
    before = len(fake.requests)
    assert "not allowed" in kalshi_refusal(lambda: client.create_order_group(contracts_limit=10))
    assert "not allowed" in kalshi_refusal(lambda: client.reset_order_group("og-1"))
    assert len(fake.requests) == before


def test_py_clob_client_reads(ex, monkeypatch):
    ex.live("polymarket")
    fake = ex.fakes["polymarket"]
    agent = ex.key()
    client = ex.polymarket(agent)
    signatures = record_poly_signatures(monkeypatch)
    assert client.get_closed_only_mode() == {"closed_only": False}
    assert client.get_market_trades_events(fx.POLY_CONDITION_ID)[0]["market"] == fx.POLY_CONDITION_ID
    placed = poly_order(client, 10)
    assert client.are_orders_scoring(OrdersScoringParams(orderIds=[placed["orderID"]])) == {placed["orderID"]: False}
    auth = {(r["method"], r["path"].split("?")[0]): r["auth"] for r in fake.requests}
    assert auth[("GET", "/auth/ban-status/closed-only")] == "ok" and auth[("POST", "/orders-scoring")] == "ok"
    assert auth[("GET", "/live-activity/events/" + fx.POLY_CONDITION_ID)] == "public"
    assert_only_real_credentials(fake, [agent, *signatures])
    before = len(fake.requests)
    assert "not allowed" in poly_refusal(lambda: client.create_readonly_api_key())
    assert "not allowed" in poly_refusal(lambda: client.post_heartbeat(None))
    assert len(fake.requests) == before
