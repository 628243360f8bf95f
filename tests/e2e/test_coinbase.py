"""Coinbase Advanced Trade (`coinbase`) driven by coinbase-advanced-py and ccxt through Warden, against the local fake
(fake_coinbase.py), which checks every JWT as Coinbase checks a CDP key's.

The official SDK speaks only HTTPS, so Warden serves TLS here (a throwaway CA, trusted through REQUESTS_CA_BUNDLE).
The SDKs sign their JWTs with a throwaway EC key and the agent key as the key's name; Warden reads the name and
signs its own JWT with the stored key. A market buy by `quote_size` is worth that amount; fund movement (sends,
withdrawals, deposits, portfolio moves, conversions) never reaches the venue.
"""
import concurrent.futures
import json
import threading

import ccxt
import pytest
import requests
from coinbase import jwt_generator
from coinbase.rest import RESTClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from requests.exceptions import HTTPError

import fake_coinbase as fc
from conftest import warden
from test_exchanges import assert_only_real_credentials, OWNER, PASSWORD, Exchanges, write_config
from test_tls import PKI, TLSServer

REAL = {"api_key": fc.REAL_COINBASE_KEY, "api_secret": fc.REAL_COINBASE_SECRET}
THROWAWAY_PEM = ec.generate_private_key(ec.SECP256R1()).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()


@pytest.fixture
def cb(start, tmp_path, master_key, monkeypatch):
    pki = PKI(tmp_path / "pki")
    cert, key, _ = pki.issue("server", "warden.test", server=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", pki.ca_path)  # requests, the SDK and ccxt trust the throwaway CA
    fake = fc.coinbase()
    config = tmp_path / "warden.toml"
    write_config(config, {"coinbase": fake})
    config.write_text(f'[server]\ntls_cert = "{cert}"\ntls_key = "{key}"\n\n' + config.read_text())
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    assert warden("user", "create", OWNER, PASSWORD, "--no-reset", "--data-dir", str(data), "--config", str(config), env=env).returncode == 0
    server = TLSServer(data, env, ("--config", str(config)), pki.ca_path)
    server.wait_ready()
    world = Exchanges(server, {"coinbase": fake})
    world.creds = {"coinbase": world.credential("coinbase", REAL)}
    world.fake = fake
    yield world
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()
    fake.stop()


def sdk(world, key):
    return RESTClient(api_key=key, api_secret=THROWAWAY_PEM, base_url=f"127.0.0.1:{world.server.port}/proxy/coinbase")


def placed(fake):
    return [json.loads(r["body"]) for r in fake.requests if r["path"] == "/api/v3/brokerage/orders" and r.get("accepted")]


def refusal(call):
    with pytest.raises(HTTPError) as caught:
        call()
    return str(caught.value)


def test_the_fake_checks_the_jwt_as_coinbase_does():
    fake = fc.coinbase()
    try:
        host = fake.url.split("://")[1]
        uri = jwt_generator.format_jwt_uri("GET", "/api/v3/brokerage/accounts").replace("api.coinbase.com", host)
        good = jwt_generator.build_rest_jwt(uri, fc.REAL_COINBASE_KEY, fc.REAL_COINBASE_SECRET)
        assert requests.get(fake.url + "/api/v3/brokerage/accounts", headers={"Authorization": f"Bearer {good}"}).status_code == 200
        forged = jwt_generator.build_rest_jwt(uri, fc.REAL_COINBASE_KEY, THROWAWAY_PEM)
        assert requests.get(fake.url + "/api/v3/brokerage/accounts", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        elsewhere = jwt_generator.build_rest_jwt(uri.replace("accounts", "orders"), fc.REAL_COINBASE_KEY, fc.REAL_COINBASE_SECRET)
        assert requests.get(fake.url + "/api/v3/brokerage/accounts", headers={"Authorization": f"Bearer {elsewhere}"}).status_code == 401
    finally:
        fake.stop()


def test_the_official_sdk_over_tls_paper_then_live(cb):
    fake, key = cb.fake, cb.key(venues=("coinbase",))
    client = sdk(cb, key)
    assert client.get_product("BTC-USD")["price"] == "50000"
    assert [a["available_balance"]["value"] for a in client.get_accounts()["accounts"]][0] == "1000"

    paper = client.market_order_buy(client_order_id="paper-1", product_id="BTC-USD", quote_size="50")
    assert paper["success"] is True and paper["success_response"]["client_order_id"] == "paper-1", paper
    assert not placed(fake) and [round(o["notional_usd"]) for o in cb.paper_orders()] == [50]

    cb.live("coinbase")
    limit = client.limit_order_gtc_buy(client_order_id="live-1", product_id="BTC-USD", base_size="0.0016", limit_price="50000")
    order_id = limit["success_response"]["order_id"]
    assert fake.state["orders"][order_id]["status"] == "OPEN"
    assert client.cancel_orders(order_ids=[order_id])["results"][0]["success"] is True
    assert client.market_order_buy(client_order_id="live-2", product_id="BTC-USD", quote_size="90")["success"] is True

    for call, reason in (
        (lambda: client.market_order_buy(client_order_id="x1", product_id="BTC-USD", quote_size="150"), "max_leg_usd"),
        (lambda: client.market_order_buy(client_order_id="x2", product_id="BTC-USD", base_size="0.003"), "max_leg_usd"),
        # A sell far below the market fills at the market: 0.003 × 50000.
        (lambda: client.limit_order_gtc_sell(client_order_id="x3", product_id="BTC-USD", base_size="0.003", limit_price="1"),
         "max_leg_usd"),
        (lambda: client.stop_limit_order_gtc_buy(client_order_id="x4", product_id="BTC-USD", base_size="0.001", limit_price="40000",
                                                 stop_price="39000", stop_direction="STOP_DIRECTION_STOP_DOWN"), "not priced"),
        (lambda: client.market_order_buy(client_order_id="x5", product_id="BTC-EUR", quote_size="10"), "product_id"),
        (lambda: client.market_order_buy(client_order_id="x6", product_id="BTC-USD", quote_size="1e2"), "plain decimal"),
    ):
        message = refusal(call)
        assert reason in message, message
    assert [o["client_order_id"] for o in placed(fake)] == ["live-1", "live-2"]
    assert_only_real_credentials(fake, [key], throwaway=(THROWAWAY_PEM,))


def test_ccxt_coinbase_out_of_the_box(cb):
    cb.live("coinbase")
    key = cb.key(venues=("coinbase",))
    # requests_trust_env: ccxt reads REQUESTS_CA_BUNDLE (the throwaway CA) only when told to.
    exchange = ccxt.coinbase({"apiKey": key, "secret": THROWAWAY_PEM, "requests_trust_env": True})
    exchange.urls["api"] = {"rest": f"https://127.0.0.1:{cb.server.port}/proxy/coinbase"}
    assert {"BTC/USD", "ETH/USD"} <= set(exchange.load_markets())
    assert exchange.fetch_balance()["USD"]["free"] == 1000
    order = exchange.create_order("BTC/USD", "limit", "buy", 0.001, 40000)
    assert cb.fake.state["orders"][order["id"]]["status"] == "OPEN"
    exchange.cancel_order(order["id"], "BTC/USD")
    exchange.create_order("BTC/USD", "market", "buy", 0.001, 50000)
    with pytest.raises(ccxt.ExchangeError, match="max_leg_usd"):
        exchange.create_order("BTC/USD", "market", "buy", 0.01, 50000)
    with pytest.raises(ccxt.ExchangeError, match="fund movement"):
        exchange.withdraw("BTC", 0.01, "bc1q" + "x" * 38)
    assert len(placed(cb.fake)) == 2
    assert_only_real_credentials(cb.fake, [key], throwaway=(THROWAWAY_PEM,))


COINBASE_FUND_MOVEMENT = [
    "/v2/accounts/acc-1/transactions", "/v2/accounts/acc-1/withdrawals", "/v2/accounts/acc-1/deposits", "/v2/accounts/acc-1/buys",
    "/v2/accounts/acc-1/sells", "/api/v3/brokerage/portfolios/move_funds", "/api/v3/brokerage/convert/quote",
    "/api/v3/brokerage/convert/trade/t-1", "/api/v3/brokerage/intx/allocate", "/api/v3/brokerage/cfm/sweeps/schedule",
    "/api/v3/brokerage/payment_methods", "/V2/accounts/acc-1/transactions", "/api/v3/brokerage//portfolios/move_funds",
    "/api/v3/brokerage/orders/../portfolios/move_funds", "/api/v3/brokerage/portfolios/%6dove_funds",
]
COINBASE_UNLISTED = ["/api/v3/brokerage/orders/edit", "/api/v3/brokerage/orders/edit_preview",
                     "/api/v3/brokerage/orders/close_position", "/api/v3/brokerage/portfolios", "/api/v3/brokerage/Orders",
                     "/api/v3/brokerage/orders/"]


def test_fund_movement_and_unlisted_calls_never_reach_coinbase(cb):
    cb.live("coinbase")
    key = cb.key(venues=("coinbase",))
    headers = {"X-Warden-Key": key, "Content-Type": "application/json"}
    body = json.dumps({"type": "send", "to": "0x" + "1" * 40, "amount": "100", "currency": "USDC", "funds": {"value": "100"},
                       "product_id": "BTC-USD", "side": "BUY", "client_order_id": "m",
                       "order_configuration": {"market_market_ioc": {"quote_size": "10"}}}).encode()
    for path in COINBASE_FUND_MOVEMENT + COINBASE_UNLISTED:
        for method in ("POST",) + (("GET",) if path in COINBASE_FUND_MOVEMENT[:5] else ()):
            status, answer = raw_tls(cb, method, "/proxy/coinbase" + path, headers, body if method == "POST" else b"")
            assert status in (400, 403), (method, path, status, answer[:200])
    order = {"client_order_id": "c", "product_id": "BTC-USD", "side": "BUY"}
    for configuration in (
        {"market_market_ioc": {"quote_size": "10", "base_size": "1"}},
        {"market_market_ioc": {"quote_size": 10}},
        {"limit_limit_gtc": {"base_size": "1", "limit_price": "1", "post_only": "false"}},
        {"limit_limit_gtc": {"quote_size": "10", "limit_price": "1"}},
        {"market_market_ioc": {"quote_size": "10"}, "limit_limit_gtc": {"base_size": "1", "limit_price": "1"}},
        {"trigger_bracket_gtc": {"base_size": "1", "limit_price": "1", "stop_trigger_price": "1"}},
        {"twap_limit_gtd": {"base_size": "1", "limit_price": "1"}},
    ):
        status, answer = raw_tls(cb, "POST", "/proxy/coinbase/api/v3/brokerage/orders", headers,
                                 json.dumps(dict(order, order_configuration=configuration)).encode())
        assert status == 400, (configuration, status, answer[:200])
    for extra in ({"leverage": "5"}, {"margin_type": "CROSS"}, {"preview_id": "p"}):
        payload = json.dumps(dict(order, order_configuration={"market_market_ioc": {"quote_size": "10"}}, **extra)).encode()
        status, answer = raw_tls(cb, "POST", "/proxy/coinbase/api/v3/brokerage/orders", headers, payload)
        assert status == 400, (extra, status, answer[:200])
    twice = b'{"client_order_id":"c","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"10","quote_size":"9000"}}}'
    assert raw_tls(cb, "POST", "/proxy/coinbase/api/v3/brokerage/orders", headers, twice)[0] == 400
    reached = [r for r in cb.fake.requests if r["path"] != "/api/v3/brokerage/accounts?limit=250"]
    assert reached == [], [(r["method"], r["path"]) for r in reached]


def raw_tls(world, method, path, headers, body=b""):
    response = requests.request(method, world.server.url + path, headers=headers, data=body)
    return response.status_code, response.content


def test_the_daily_cap_is_exact_under_concurrent_orders(cb):
    cb.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 500})
    cb.live("coinbase")
    key = cb.key(venues=("coinbase",))
    local = threading.local()

    def order(i):
        if not hasattr(local, "client"):
            local.client = sdk(cb, key)
        try:
            if i % 2:
                return local.client.market_order_buy(client_order_id=f"c{i}", product_id="BTC-USD", quote_size="40")
            return local.client.limit_order_gtc_buy(client_order_id=f"c{i}", product_id="ETH-USD", base_size="0.016", limit_price="2500")
        except HTTPError as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(order, range(40)))
    accepted = [r for r in results if not isinstance(r, HTTPError)]
    assert len(accepted) == 12, [str(r)[:160] for r in results if isinstance(r, HTTPError)][:3]
    assert all("daily_cap_usd" in str(r) for r in results if isinstance(r, HTTPError))
    assert len(placed(cb.fake)) == 12
    assert cb.trading()["live_usd"] == 480
