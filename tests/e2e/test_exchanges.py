"""The exchange gateway driven by the official clients (python-binance, Kalshi's kalshi_python_sync, py-clob-client)
against local fake venues (fake_exchanges.py) that verify each venue's signature exactly and record every request.

The SDKs hold a Warden agent key where they expect the venue's API key, and throwaway secrets of their own
(HMAC secret, RSA key, passphrase, wallet); Warden discards their signatures and signs with the stored credential.
"""
import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import threading
import time
import sqlite3
import types
import uuid

import pytest
import requests
from binance.client import Client as BinanceClient
from binance.exceptions import BinanceAPIException
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from eth_account import Account
from kalshi_python_sync import ApiException as KalshiApiException
from kalshi_python_sync import Configuration as KalshiConfiguration
from kalshi_python_sync import KalshiClient
from py_clob_client import client as clob_module
from py_clob_client.client import ClobClient
from py_clob_client.clob_types import ApiCreds, AssetType, BalanceAllowanceParams, OrderArgs, PostOrdersArgs
from py_clob_client.exceptions import PolyApiException
from py_clob_client.order_builder.constants import BUY, SELL

import fake_exchanges as fx
from conftest import free_port, warden

OWNER, PASSWORD = "trader@example.com", "trader-password-1"
VENUES = ("binance", "kalshi", "polymarket")

# What the agent's SDKs are configured with besides the agent key: worthless secrets of their own.
THROWAWAY_BINANCE_SECRET = "agent-throwaway-binance-secret-000000000000000000000000000000000"
THROWAWAY_KALSHI_PEM = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
THROWAWAY_POLY_SECRET = base64.urlsafe_b64encode(b"agent-throwaway-poly-secret-0000").decode()
THROWAWAY_POLY_PASSPHRASE = "agent-throwaway-passphrase-0000"
_WALLET = Account.create()
THROWAWAY_WALLET_KEY = _WALLET.key.hex() if _WALLET.key.hex().startswith("0x") else "0x" + _WALLET.key.hex()
THROWAWAY_WALLET_ADDRESS = _WALLET.address
THROWAWAY_SECRETS = (THROWAWAY_BINANCE_SECRET, THROWAWAY_POLY_SECRET, THROWAWAY_POLY_PASSPHRASE)


# ------------------------------------------------------------------------------------------------- SDK clients

def binance_client(url, api_key, secret=THROWAWAY_BINANCE_SECRET):
    # ping=False: python-binance would otherwise call the real api.binance.com from its constructor.
    client = BinanceClient(api_key, secret, ping=False)
    client.API_URL = url + "/api"
    client.MARGIN_API_URL = url + "/sapi"
    return client


def kalshi_client(url, key_id, private_key_pem=THROWAWAY_KALSHI_PEM):
    config = KalshiConfiguration(host=url + "/trade-api/v2")
    config.api_key_id = key_id
    config.private_key_pem = private_key_pem
    return KalshiClient(config)


def poly_client(url, api_key, secret=THROWAWAY_POLY_SECRET, passphrase=THROWAWAY_POLY_PASSPHRASE,
                wallet_key=THROWAWAY_WALLET_KEY):
    return ClobClient(url, chain_id=137, key=wallet_key,
                      creds=ApiCreds(api_key=api_key, api_secret=secret, api_passphrase=passphrase))


def record_binance_signatures(client):
    """The signatures python-binance computes with its throwaway secret, as it sends them."""
    seen = []

    def hook(response, *args, **kwargs):
        request = response.request
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        for part in (request.url.partition("?")[2] + "&" + body).split("&"):
            if part.startswith("signature="):
                seen.append(part.split("=", 1)[1])
    client.session.hooks["response"].append(hook)
    return seen


def record_kalshi_signatures(client):
    """The RSA-PSS signatures kalshi-python computes with its throwaway key."""
    seen, create = [], client.kalshi_auth.create_auth_headers

    def recording(method, url):
        headers = create(method, url)
        seen.append(headers["KALSHI-ACCESS-SIGNATURE"])
        return headers
    client.kalshi_auth.create_auth_headers = recording
    return seen


def record_poly_signatures(monkeypatch):
    """The level-2 HMACs py-clob-client computes with its throwaway secret."""
    seen, create = [], clob_module.create_level_2_headers

    def recording(*args, **kwargs):
        headers = create(*args, **kwargs)
        seen.append(headers["POLY_SIGNATURE"])
        return headers
    monkeypatch.setattr(clob_module, "create_level_2_headers", recording)
    return seen


def kalshi_order(client, count, price=46, client_order_id=None, side="yes"):
    """A limit buy of `count` contracts on `side` at `price` cents (yes_price or no_price)."""
    args = {"ticker": fx.KALSHI_TICKER, "side": side, "action": "buy", "count": count, "type": "limit"}
    args["yes_price" if side == "yes" else "no_price"] = price
    if client_order_id:
        args["client_order_id"] = client_order_id
    return client.create_order(**args)


def poly_order(client, size, price=0.5, side=BUY):
    return client.post_order(client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=price, size=size, side=side)))


# ----------------------------------------------------------------------------------------------------- world

def write_config(path, fakes, allow=None):
    lines = []
    for venue, fake in fakes.items():
        lines += [f"[venues.{venue}]", f'base_url = "{fake.url}"']
        if allow and venue in allow:
            lines.append("allow_endpoints = [" + ", ".join(json.dumps(e) for e in allow[venue]) + "]")
        lines.append("")
    path.write_text("\n".join(lines))


class Exchanges:
    """A running warden with the three fake venues configured, an owner logged in and the real credentials stored."""

    def __init__(self, server, fakes):
        self.server, self.fakes = server, fakes
        self.login()

    @property
    def url(self):
        return self.server.url

    @property
    def api(self):
        return self.server.url + "/api/v1"

    def login(self):
        r = requests.post(self.api + "/auth/login", json={"email": OWNER, "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def store_credentials(self, **overrides):
        secrets = {
            "binance": {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET},
            "kalshi": {"key_id": fx.REAL_KALSHI_KEY_ID, "private_key_pem": fx.REAL_KALSHI_PRIVATE_KEY_PEM},
            "polymarket": {"api_key": fx.REAL_POLY_API_KEY, "api_secret": fx.REAL_POLY_API_SECRET,
                           "passphrase": fx.REAL_POLY_PASSPHRASE, "address": fx.REAL_POLY_ADDRESS},
        }
        secrets.update(overrides)
        self.creds = {venue: self.credential(venue, secret) for venue, secret in secrets.items()}

    def credential(self, venue, secret):
        r = requests.post(self.api + "/credentials", headers=self.auth, json={"venue": venue, "label": venue, "secret": secret})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def key(self, venues=VENUES, access="trade"):
        r = requests.post(self.api + "/agent-keys", headers=self.auth,
                          json={"name": "bot", "credential_ids": [self.creds[v] for v in venues], "access": access})
        assert r.status_code == 201, r.text
        return r.json()["key"]

    def profile(self):
        r = requests.get(self.api + "/profile", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()

    def put_profile(self, risk=None, simulator=None):
        body = {k: v for k, v in (("risk", risk), ("simulator", simulator)) if v is not None}
        r = requests.put(self.api + "/profile", headers=self.auth, json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def go_live(self, venue):
        return requests.post(self.api + "/profile/go-live", headers=self.auth, json={"venue": venue})

    def live(self, *venues):
        for venue in venues:
            r = self.go_live(venue)
            assert r.status_code == 200 and r.json()["live"] is True, r.text

    def trading(self):
        r = requests.get(self.api + "/usage", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()["trading"]

    def paper_orders(self):
        r = requests.get(self.api + "/paper/orders", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()["orders"]

    def paper_balances(self):
        r = requests.get(self.api + "/paper/balances", headers=self.auth)
        assert r.status_code == 200, r.text
        return r.json()

    def binance(self, key):
        return binance_client(self.url + "/proxy/binance", key)

    def kalshi(self, key):
        return kalshi_client(self.url + "/proxy/kalshi", key)

    def polymarket(self, key):
        return poly_client(self.url + "/proxy/polymarket", key)


def binance_grantee(world, tmp_path, master_key):
    """Another user, granted trade on the world's Binance credential, live there with max_leg_usd 100 and no
    approval or breaker of their own; returns their session headers and a trade key on the shared credential."""
    made = warden("user", "create", "grantee@example.com", "grantee-password-1", "--no-reset", "--data-dir", str(tmp_path / "data"),
                  "--config", str(tmp_path / "warden.toml"), env={"WARDEN_MASTER_KEY": master_key})
    assert made.returncode == 0, made.stderr
    assert requests.post(world.api + f"/credentials/{world.creds['binance']}/grants", headers=world.auth,
                         json={"email": "grantee@example.com", "access": "trade"}).status_code == 201
    token = requests.post(world.api + "/auth/login", json={"email": "grantee@example.com", "password": "grantee-password-1"}).json()["access_token"]
    grantee = {"Authorization": f"Bearer {token}"}
    assert requests.put(world.api + "/profile", headers=grantee, json={"risk": {"max_leg_usd": 100}}).status_code == 200
    assert requests.post(world.api + "/profile/go-live", headers=grantee, json={"venue": "binance"}).json()["live"] is True
    key = requests.post(world.api + "/agent-keys", headers=grantee,
                        json={"name": "g", "credential_ids": [world.creds["binance"]], "access": "trade"}).json()["key"]
    return grantee, key


def start_warden(start, env, config, data_dir, store_args=(), create_owner=True):
    args = ("--config", str(config), *store_args)
    if create_owner:
        made = warden("user", "create", OWNER, PASSWORD, "--no-reset", "--data-dir", str(data_dir), *args, env=env)
        assert made.returncode == 0, made.stderr
    return start(env, data_dir=data_dir, args=args)


@pytest.fixture
def fakes():
    venues = {"binance": fx.binance(), "kalshi": fx.kalshi(), "polymarket": fx.polymarket()}
    yield venues
    stopping = [threading.Thread(target=fake.stop) for fake in venues.values()]  # each stop waits out a poll
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join()


@pytest.fixture
def ex(start, tmp_path, master_key, fakes):
    config = tmp_path / "warden.toml"
    write_config(config, fakes)
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    world = Exchanges(start_warden(start, env, config, data), fakes)
    world.store_credentials()
    return world


# ------------------------------------------------------------------------------------------------ assertions

def assert_only_real_credentials(fake, agent_keys, throwaway=THROWAWAY_SECRETS):
    """Every request that reached the venue was signed with the real credential (the fake judged each one), and
    none carries an agent key or a throwaway secret anywhere."""
    assert fake.requests, "nothing reached the venue"
    for r in fake.requests:
        assert r.get("auth") in ("ok", "public"), f"the venue refused {r['method']} {r['path']}: {r.get('auth')}"
        blob = r["method"] + r["path"] + json.dumps(r["headers"]) + r["body"].decode("latin-1")
        for secret in (*agent_keys, *throwaway):
            assert secret not in blob, f"{r['method']} {r['path']} carried an agent key or a throwaway secret"


def orders_seen(fake, method, path):
    return [r for r in fake.requests if r["method"] == method and r["path"].split("?")[0] == path]


def binance_refusal(call, status=403):
    with pytest.raises(BinanceAPIException) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    assert isinstance(caught.value.code, int) and caught.value.code < 0, caught.value
    return caught.value.message


def kalshi_refusal(call, status=403):
    with pytest.raises(KalshiApiException) as caught:
        call()
    assert caught.value.status == status, caught.value
    error = json.loads(caught.value.body)["error"]
    assert error["code"] and error["message"]
    return error["message"]


def poly_refusal(call, status=403):
    with pytest.raises(PolyApiException) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    return caught.value.error_msg["error"]


# ------------------------------------------------------------------------------- the fakes, checked directly

def test_fakes_accept_official_clients(fakes):
    """Each fake, called by the official SDK with the real credentials, accepts reads, an order and its cancel,
    rejects its marker order, and refuses a wrong secret: the fakes check what the SDKs really send."""
    binance, kalshi, poly = fakes["binance"], fakes["kalshi"], fakes["polymarket"]

    client = binance_client(binance.url, fx.REAL_BINANCE_KEY, fx.REAL_BINANCE_SECRET)
    assert client.get_symbol_ticker(symbol="ETHBTC")["price"] == "0.05"
    assert client.get_asset_balance("USDT")["free"] == "1000.00"
    assert len(client.get_klines(symbol="BTCUSDT", interval="1m", limit=2)) == 2
    order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="40000")
    assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [order["orderId"]]
    assert client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])["status"] == "CANCELED"
    assert client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")["status"] == "FILLED"
    assert "insufficient balance" in binance_refusal(
        lambda: client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=fx.BINANCE_REJECT_QUANTITY), 400)
    binance_refusal(lambda: binance_client(binance.url, fx.REAL_BINANCE_KEY, THROWAWAY_BINANCE_SECRET).get_account(), 401)
    binance_refusal(lambda: binance_client(binance.url, "wdn_agent", fx.REAL_BINANCE_SECRET).get_account(), 401)
    assert all(r["auth"] in ("ok", "public") for r in binance.requests[:-2])

    client = kalshi_client(kalshi.url, fx.REAL_KALSHI_KEY_ID, fx.REAL_KALSHI_PRIVATE_KEY_PEM)
    assert client.get_balance().balance == 100_000
    assert client.get_market(fx.KALSHI_TICKER).market.yes_ask == 46
    created = kalshi_order(client, 3, client_order_id="direct-1")
    assert created.order.client_order_id == "direct-1"
    assert [o.order_id for o in client.get_orders().orders] == [created.order.order_id]
    assert client.cancel_order(created.order.order_id).order.status.value == "canceled"
    assert kalshi_refusal(lambda: kalshi_order(client, fx.KALSHI_REJECT_COUNT), 400) == "insufficient balance"
    kalshi_refusal(lambda: kalshi_client(kalshi.url, fx.REAL_KALSHI_KEY_ID).get_balance(), 401)
    assert all(r["auth"] in ("ok", "public") for r in kalshi.requests[:-1])

    client = poly_client(poly.url, fx.REAL_POLY_API_KEY, fx.REAL_POLY_API_SECRET, fx.REAL_POLY_PASSPHRASE, fx.REAL_POLY_WALLET_KEY)
    assert client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))["balance"] == "1000000000"
    assert client.get_order_book(fx.POLY_TOKEN_ID).bids[0].price == "0.48"
    posted = poly_order(client, 10)
    assert posted["success"] and [o["id"] for o in client.get_orders()] == [posted["orderID"]]
    assert client.cancel(posted["orderID"])["canceled"] == [posted["orderID"]]
    batch = client.post_orders([PostOrdersArgs(order=client.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.6, size=10, side=SELL)))])
    assert batch[0]["success"]
    assert poly_refusal(lambda: poly_order(client, 19.98), 400) == "not enough balance / allowance"
    poly_refusal(lambda: poly_client(poly.url, fx.REAL_POLY_API_KEY, THROWAWAY_POLY_SECRET, fx.REAL_POLY_PASSPHRASE,
                                     fx.REAL_POLY_WALLET_KEY).get_orders(), 401)
    poly_refusal(lambda: poly_client(poly.url, fx.REAL_POLY_API_KEY, fx.REAL_POLY_API_SECRET, fx.REAL_POLY_PASSPHRASE,
                                     THROWAWAY_WALLET_KEY).get_orders(), 401)
    assert all(r["auth"] in ("ok", "public") for r in poly.requests[:-2])


# ---------------------------------------------------------------------------------- a. live, with each SDK

def test_binance_live_trading_with_python_binance(ex):
    fake = ex.fakes["binance"]
    ex.live("binance")
    agent = ex.key()
    client = ex.binance(agent)
    sdk_signatures = record_binance_signatures(client)
    balances = {b["asset"]: b["free"] for b in client.get_account()["balances"]}
    assert balances["USDT"] == "1000.00"
    assert client.get_symbol_ticker(symbol="BTCUSDT") == {"symbol": "BTCUSDT", "price": "50000.00"}
    assert client.get_order_book(symbol="BTCUSDT")["asks"] == [["50001.00", "2.00000000"]]
    assert len(client.get_klines(symbol="BTCUSDT", interval="1m", limit=2)) == 2
    assert client.get_server_time()["serverTime"] > 0

    order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0008",
                                price="50000.00")  # 40 USD
    assert order["status"] == "NEW" and order["orderId"] in fake.state["orders"]
    assert order["clientOrderId"].startswith("x-HNA2TXFJ")
    # The order's two rows (before it went out, and the venue's answer) carry the id its answer brought back.
    order_rows = requests.get(ex.api + "/audit", params={"request": client.response.headers["x-warden-request-id"]},
                              headers=ex.auth).json()["entries"]
    assert [(e["action"], json.loads(e["detail"])["class"]) for e in order_rows] == [("gateway.result", "order"), ("gateway.forward", "order")]
    assert [o["orderId"] for o in client.get_open_orders(symbol="BTCUSDT")] == [order["orderId"]]
    canceled = client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])
    assert canceled["status"] == "CANCELED" and fake.state["orders"][order["orderId"]]["status"] == "CANCELED"

    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 1
    assert len(orders_seen(fake, "DELETE", "/api/v3/order")) == 1
    assert len(sdk_signatures) == 4  # account, order, open orders, cancel
    assert_only_real_credentials(fake, [agent, *sdk_signatures])
    private = [r for r in fake.requests if r["auth"] == "ok"]
    assert private and all(r["headers"]["x-mbx-apikey"] == fx.REAL_BINANCE_KEY for r in private)
    trading = ex.trading()
    assert trading["live_usd"] == pytest.approx(40.0) and trading["paper_usd"] == pytest.approx(0)
    assert ex.paper_orders() == []


def test_kalshi_live_trading_with_kalshi_python(ex):
    fake = ex.fakes["kalshi"]
    ex.live("kalshi")
    agent = ex.key()
    client = ex.kalshi(agent)
    sdk_signatures = record_kalshi_signatures(client)
    balance = client.get_balance()
    assert balance.balance == 100_000
    market = client.get_market(fx.KALSHI_TICKER).market
    assert (market.yes_bid, market.yes_ask, market.no_bid_dollars) == (44, 46, "0.5400")
    assert [m.ticker for m in client.get_markets(limit=5).markets] == [fx.KALSHI_TICKER]

    created = kalshi_order(client, 10, price=46, client_order_id="kalshi-live-1")  # 4.60 USD
    assert created is not None, "create_order must answer 201, or kalshi-python returns None"
    assert created.order.client_order_id == "kalshi-live-1" and created.order.status.value == "resting"
    assert created.order.order_id in fake.state["orders"]
    assert [o.order_id for o in client.get_orders().orders] == [created.order.order_id]
    canceled = client.cancel_order(created.order.order_id)
    assert canceled.order.status.value == "canceled" and canceled.reduced_by == 10
    assert client.get_positions().market_positions == []

    assert len(orders_seen(fake, "POST", "/trade-api/v2/portfolio/orders")) == 1
    assert len(sdk_signatures) >= 7  # kalshi_python_sync signs each request twice (the second one is sent)
    assert_only_real_credentials(fake, [agent, *sdk_signatures])
    private = [r for r in fake.requests if r["auth"] == "ok"]
    assert private and all(r["headers"]["kalshi-access-key"] == fx.REAL_KALSHI_KEY_ID for r in private)
    assert ex.trading()["live_usd"] == pytest.approx(4.60)


def test_polymarket_live_trading_with_py_clob_client(ex, monkeypatch):
    fake = ex.fakes["polymarket"]
    ex.live("polymarket")
    agent = ex.key()
    client = ex.polymarket(agent)
    sdk_signatures = record_poly_signatures(monkeypatch)
    assert client.get_ok() == "OK"
    assert client.get_midpoint(fx.POLY_TOKEN_ID) == {"mid": "0.50"}
    assert client.get_price(fx.POLY_TOKEN_ID, "BUY") == {"price": "0.52"}
    assert client.get_order_book(fx.POLY_TOKEN_ID).asks[0].price == "0.52"
    assert client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))["balance"] == "1000000000"

    posted = poly_order(client, 10, price=0.5)  # BUY: makerAmount 5000000, 5 USD
    assert posted["success"] is True and posted["orderID"] in fake.state["orders"]
    assert fake.state["orders"][posted["orderID"]]["owner"] == fx.REAL_POLY_API_KEY
    assert [o["id"] for o in client.get_orders()] == [posted["orderID"]]
    assert client.cancel(posted["orderID"])["canceled"] == [posted["orderID"]]

    assert len(orders_seen(fake, "POST", "/order")) == 1 and len(orders_seen(fake, "DELETE", "/order")) == 1
    assert len(sdk_signatures) == 4  # balance, order, orders, cancel
    assert_only_real_credentials(fake, [agent, *sdk_signatures])
    private = [r for r in fake.requests if r["auth"] == "ok"]
    assert private and all(r["headers"]["poly_address"] == fx.REAL_POLY_ADDRESS
                           and r["headers"]["poly_api_key"] == fx.REAL_POLY_API_KEY
                           and r["headers"]["poly_passphrase"] == fx.REAL_POLY_PASSPHRASE for r in private)
    assert ex.trading()["live_usd"] == pytest.approx(5.0)


# ------------------------------------------------------------------------------------------ b. withdrawals

def throwaway_signed(params):
    """Parameters as an agent's SDK would sign them, with its throwaway secret."""
    params = f"{params}&recvWindow=5000&timestamp={int(time.time() * 1000)}"
    return params + "&signature=" + hmac.new(THROWAWAY_BINANCE_SECRET.encode(), params.encode(), hashlib.sha256).hexdigest()


def raw(server, method, path, headers, body=b""):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", f"127.0.0.1:{server.port}")
    for name, value in headers.items():
        conn.putheader(name, value)
    if body:
        conn.putheader("Content-Type", "application/x-www-form-urlencoded" if not body.startswith(b"{") else "application/json")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body or None)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


BINANCE_FUND_MOVEMENT = [
    "/sapi/v1/capital/withdraw/apply", "/sapi/v1/localentity/withdraw/apply", "/sapi/v1/asset/transfer",
    "/sapi/v1/sub-account/transfer/subToSub", "/sapi/v1/sub-account/transfer/subToMaster",
    "/sapi/v1/sub-account/universalTransfer", "/sapi/v1/sub-account/futures/transfer",
    "/sapi/v1/sub-account/margin/transfer", "/sapi/v1/futures/transfer", "/sapi/v1/margin/transfer",
    "/sapi/v1/margin/isolated/transfer",
]


def test_fund_movement_is_refused_in_every_encoding_and_never_reaches_a_venue(ex):
    ex.live(*VENUES)  # live everywhere: nothing below is held back merely by the simulator
    agent = ex.key()
    before = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}

    # Through the SDK: readable refusals in Binance's shape.
    client = ex.binance(agent)
    sdk_calls = [
        lambda: client.withdraw(coin="USDT", network="ETH", address="0x" + "1" * 40, amount="100"),
        lambda: client.make_universal_transfer(type="MAIN_UMFUTURE", asset="USDT", amount="100"),
        lambda: client.futures_account_transfer(asset="USDT", amount="100", type=1),
        lambda: client.transfer_spot_to_margin(asset="USDT", amount="100"),
    ]
    for call in sdk_calls:
        assert "fund movement" in binance_refusal(call)

    # Every Binance fund-movement endpoint, as python-binance would send it.
    headers = {"X-MBX-APIKEY": agent}
    form = throwaway_signed("coin=USDT&network=ETH&address=0x1111111111111111111111111111111111111111&amount=100")
    for path in BINANCE_FUND_MOVEMENT:
        status, body = raw(ex.server, "POST", "/proxy/binance" + path, headers, form.encode())
        assert status == 403, (path, status, body[:200])
        refusal = json.loads(body)
        assert refusal["code"] < 0 and "fund movement" in refusal["msg"], (path, refusal)

    w = "/proxy/binance/sapi/v1/capital/withdraw/apply"
    variants = [
        ("POST", w + "?" + form, b"", {}),                                      # parameters in the query
        ("GET", w + "?" + form, b"", {}),
        ("PUT", w, form.encode(), {}),
        ("DELETE", w, form.encode(), {}),
        ("post", w, form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/%77ithdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/%57ITHDRAW/apply", form.encode(), {}),
        ("POST", "/proxy/binance/%73%61%70%69/v1/capital/withdraw/%61pply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/WITHDRAW/apply", form.encode(), {}),
        ("POST", "/proxy/binance/SAPI/V1/CAPITAL/WITHDRAW/APPLY", form.encode(), {}),
        ("POST", "/proxy/binance//sapi/v1/capital/withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital//withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw/apply/", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw/apply//", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/x/../withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/./withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/api/v3/../../sapi/v1/capital/withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/api/v3/%2e%2e/%2e%2e/sapi/v1/capital/withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/api/v3/%2E%2E/%2E%2E/sapi/v1/capital/withdraw/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw%2Fapply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital%2fwithdraw%2fapply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw/apply;x=1", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw;/apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi\\v1\\capital\\withdraw\\apply", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw/apply%00", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/capital/withdraw/apply%20", form.encode(), {}),
        ("POST", w, (form + "&coin=BTC").encode(), {}),                        # duplicate parameter
        ("POST", w + "?coin=USDT", form.encode(), {}),                          # in the query and the body
        ("GET", w + "?" + form, b"", {"X-HTTP-Method-Override": "POST"}),
        ("GET", w + "?" + form, b"", {"X-HTTP-Method": "POST"}),
        ("GET", w + "?" + form, b"", {"X-Method-Override": "POST"}),
        ("GET", w + "?" + form + "&_method=POST", b"", {}),
        ("POST", "/proxy/binance/api/v3/account?" + throwaway_signed("_method=POST"), b"", {"X-HTTP-Method-Override": "GET"}),
        ("POST", "/proxy/binance/wapi/v3/withdraw.html", form.encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/asset/Transfer", throwaway_signed("type=MAIN_UMFUTURE&asset=USDT&amount=1").encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/sub-account/transfer/%73ubToSub",
         throwaway_signed("toEmail=a%40example.com&asset=USDT&amount=1").encode(), {}),
        ("POST", "/proxy/binance/sapi/v1/futures/transfer/", throwaway_signed("asset=USDT&amount=1&type=1").encode(), {}),
    ]
    for method, path, body, extra in variants:
        status, answer = raw(ex.server, method, path, {**headers, **extra}, body)
        assert status in (400, 403), f"{method} {path} {extra} -> {status} {answer[:200]}"

    # Kalshi and Polymarket: transfers, and minting or deleting API keys, are not trading.
    kalshi_headers = {"KALSHI-ACCESS-KEY": agent, "KALSHI-ACCESS-TIMESTAMP": str(int(time.time() * 1000)),
                      "KALSHI-ACCESS-SIGNATURE": base64.b64encode(b"x" * 256).decode()}
    poly_headers = {"POLY_API_KEY": agent, "POLY_ADDRESS": THROWAWAY_WALLET_ADDRESS, "POLY_PASSPHRASE": THROWAWAY_POLY_PASSPHRASE,
                    "POLY_TIMESTAMP": str(int(time.time())), "POLY_SIGNATURE": "x" * 44}
    others = [
        ("POST", "/proxy/kalshi/trade-api/v2/portfolio/withdrawals", kalshi_headers, b'{"amount": 10000}'),
        ("POST", "/proxy/kalshi/trade-api/v2/portfolio/transfers", kalshi_headers, b'{"amount": 10000}'),
        ("POST", "/proxy/kalshi/trade-api/v2/portfolio/deposits", kalshi_headers, b'{"amount": 10000}'),
        ("POST", "/proxy/kalshi/trade-api/v2/api_keys", kalshi_headers, b'{"name": "x", "public_key": "y"}'),
        ("POST", "/proxy/kalshi/trade-api/v2/api_keys/generate", kalshi_headers, b'{"name": "x"}'),
        ("DELETE", "/proxy/kalshi/trade-api/v2/api_keys/" + fx.REAL_KALSHI_KEY_ID, kalshi_headers, b""),
        ("POST", "/proxy/kalshi/trade-api/v2/portfolio/%77ithdrawals", kalshi_headers, b'{"amount": 10000}'),
        ("POST", "/proxy/kalshi/trade-api/v2/portfolio/orders/../withdrawals", kalshi_headers, b'{"amount": 10000}'),
        ("POST", "/proxy/polymarket/withdraw", poly_headers, b'{"amount": "1000000"}'),
        ("POST", "/proxy/polymarket/transfer", poly_headers, b'{"amount": "1000000"}'),
        ("POST", "/proxy/polymarket/auth/api-key", poly_headers, b""),
        ("DELETE", "/proxy/polymarket/auth/api-key", poly_headers, b""),
        ("GET", "/proxy/polymarket/auth/derive-api-key", poly_headers, b""),
        ("POST", "/proxy/polymarket/%77ithdraw", poly_headers, b'{"amount": "1000000"}'),
    ]
    for method, path, hdrs, body in others:
        status, answer = raw(ex.server, method, path, hdrs, body)
        assert status in (400, 403), f"{method} {path} -> {status} {answer[:200]}"

    after = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}
    assert after == before, {v: [(r["method"], r["path"]) for r in ex.fakes[v].requests[before[v]:]] for v in VENUES}
    assert not any("withdraw" in r["path"].lower() or "transfer" in r["path"].lower() for f in ex.fakes.values()
                   for r in f.requests)


def test_no_configuration_opens_fund_movement(start, tmp_path, master_key, fakes):
    """An operator's allow_endpoints cannot open a withdrawal: either the config is refused at startup, or the
    withdrawal is refused anyway."""
    config = tmp_path / "warden.toml"
    write_config(config, fakes, allow={"binance": ["POST /sapi/v1/capital/withdraw/apply", "POST /sapi/v1/asset/transfer"]})
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    made = warden("user", "create", OWNER, PASSWORD, "--no-reset", "--data-dir", str(data), env=env)
    assert made.returncode == 0, made.stderr
    server = start(env, data_dir=data, args=("--config", str(config)), ready=False)
    try:
        server.wait_ready()
    except AssertionError:
        assert server.proc.poll() not in (None, 0) and "allow_endpoints" in server.output(), server.output()
        return
    world = Exchanges(server, fakes)
    world.store_credentials()
    world.live("binance")
    client = world.binance(world.key())
    assert "fund movement" in binance_refusal(
        lambda: client.withdraw(coin="USDT", network="ETH", address="0x" + "1" * 40, amount="100"))
    assert "fund movement" in binance_refusal(
        lambda: client.make_universal_transfer(type="MAIN_UMFUTURE", asset="USDT", amount="100"))
    assert not fakes["binance"].seen(path_prefix="/sapi")


def test_unknown_endpoints_and_cancel_all_need_the_operator(start, tmp_path, master_key, fakes):
    fake = fakes["binance"]
    config = tmp_path / "warden.toml"
    write_config(config, fakes)
    env = {"WARDEN_MASTER_KEY": master_key}
    data = tmp_path / "data"
    world = Exchanges(start_warden(start, env, config, data), fakes)
    world.store_credentials()
    world.live("binance")
    agent = world.key()
    client = world.binance(agent)
    order = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002", price="50000")
    before = len(fake.requests)
    assert "not allowed" in binance_refusal(lambda: client.cancel_all_open_orders(symbol="BTCUSDT"))
    status, body = raw(world.server, "GET", "/proxy/binance/api/v3/madeUpEndpoint?" + throwaway_signed("symbol=BTCUSDT"),
                       {"X-MBX-APIKEY": agent})
    assert status == 403 and "not allowed" in json.loads(body)["msg"]
    assert len(fake.requests) == before

    # The operator opens DELETE /api/v3/openOrders; the rest stays closed.
    world.server.stop()
    write_config(config, fakes, allow={"binance": ["DELETE /api/v3/openOrders"]})
    world.server = start(env, data_dir=data, args=("--config", str(config)))
    world.login()
    client = world.binance(agent)
    canceled = client.cancel_all_open_orders(symbol="BTCUSDT")
    assert [o["orderId"] for o in canceled] == [order["orderId"]]
    assert len(orders_seen(fake, "DELETE", "/api/v3/openOrders")) == 1
    status, _ = raw(world.server, "GET", "/proxy/binance/api/v3/madeUpEndpoint?" + throwaway_signed("symbol=BTCUSDT"),
                    {"X-MBX-APIKEY": agent})
    assert status == 403
    assert_only_real_credentials(fake, [agent])


def test_kalshis_batched_endpoint_is_no_order_id(ex):
    """`/portfolio/orders/batched` is Kalshi's batch endpoint: its DELETE is a cancel (trade keys, simulated in
    dry-run, forwarded live), its POST (batch create, unpriced) is refused, and no order-id rule stands for it."""
    fake = ex.fakes["kalshi"]
    trader, reader = ex.key(), ex.key(access="read")

    def call(method, path, key, body=b""):
        headers = {"KALSHI-ACCESS-KEY": key, "KALSHI-ACCESS-TIMESTAMP": str(int(time.time() * 1000)),
                   "KALSHI-ACCESS-SIGNATURE": base64.b64encode(b"x" * 256).decode()}
        return raw(ex.server, method, "/proxy/kalshi/trade-api/v2/portfolio/orders" + path, headers, body)

    batch = json.dumps({"ids": ["ord-1", "ord-2"]}).encode()
    before = len(fake.requests)
    status, body = call("DELETE", "/batched", reader, batch)
    assert status == 403 and b"read-only" in body, body
    refused = [("POST", "/batched", json.dumps({"orders": [{"ticker": fx.KALSHI_TICKER, "action": "buy", "side": "yes",
                                                            "count": 1000, "type": "limit", "yes_price": 99}]}).encode()),
               ("POST", "/BATCHED", b'{"orders": []}'), ("POST", "/batched/decrease", b'{"reduce_by": 1}'),
               ("POST", "/amend/decrease", b'{"reduce_by": 1}'), ("GET", "/batched", b"")]
    for method, path, payload in refused:
        status, body = call(method, path, trader, payload)
        assert status == 403 and b"not allowed" in body, (method, path, status, body)
    # Dry-run: the batched cancel is answered by the simulator, like a single cancel.
    status, body = call("DELETE", "/batched", trader, batch)
    assert status == 404 and b"dry-run" in body and len(fake.requests) == before, (status, body)
    # Live: it goes to the venue, recorded as a cancel.
    ex.live("kalshi")
    before = len(fake.requests)
    call("DELETE", "/batched", trader, batch)
    assert [(r["method"], r["path"]) for r in fake.requests[before:]] == [("DELETE", "/trade-api/v2/portfolio/orders/batched")]
    rows = requests.get(ex.api + "/audit?limit=5", headers=ex.auth).json()["entries"]
    forward = next(e for e in rows if e["action"] == "gateway.forward")
    assert json.loads(forward["detail"])["class"] == "cancel"


# ------------------------------------------------------------------------------------------------- c. caps

def test_per_order_cap_is_refused_before_the_venue(ex):
    ex.live(*VENUES)
    agent = ex.key()
    binance, kalshi, poly = ex.binance(agent), ex.kalshi(agent), ex.polymarket(agent)
    before = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}
    over = [
        # LIMIT: price × quantity = 100.05
        lambda: binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002001", price="50000"),
        # MARKET by quote: 100.01
        lambda: binance.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="100.01"),
        # MARKET by quantity × last price 2500: 102.50
        lambda: binance.create_order(symbol="ETHUSDT", side="SELL", type="MARKET", quantity="0.041"),
        # Quote asset BTC, through BTCUSDT: 1 × 0.05 BTC × 50000 = 2500
        lambda: binance.create_order(symbol="ETHBTC", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="0.05"),
    ]
    for call in over:
        assert "max_leg_usd" in binance_refusal(call)
    kalshi_over = [
        lambda: kalshi_order(kalshi, 218, price=46),                       # YES 218 × 46c = 100.28
        lambda: kalshi_order(kalshi, 200, price=51, side="no"),            # NO 200 × 51c = 102
        lambda: kalshi.create_order(ticker=fx.KALSHI_TICKER, side="no", action="buy", count=200, type="limit",
                                    yes_price=49),                           # NO price = 100 − 49 = 51c: 102
        lambda: kalshi.create_order(ticker=fx.KALSHI_TICKER, side="yes", action="buy", count=218, type="limit",
                                    yes_price_dollars="0.4600"),             # 100.28
    ]
    for call in kalshi_over:
        assert "max_leg_usd" in kalshi_refusal(call)
    assert "max_leg_usd" in poly_refusal(lambda: poly_order(poly, 201, price=0.5))             # BUY: makerAmount 100.5 USDC
    assert "max_leg_usd" in poly_refusal(lambda: poly_order(poly, 200, price=0.51, side=SELL))  # SELL: takerAmount 102 USDC
    for venue, fake in ex.fakes.items():
        assert not [r for r in fake.requests[before[venue]:] if r["method"] in ("POST", "DELETE")], venue
    assert ex.trading()["live_usd"] == pytest.approx(0)

    # Exactly max_leg_usd is allowed.
    order = binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002", price="50000")
    assert order["status"] == "NEW"
    assert ex.trading()["live_usd"] == pytest.approx(100.0)
    # A SELL's notional is what it receives (takerAmount 90 USDC), not the 150 shares it gives.
    assert poly_order(poly, 150, price=0.6, side=SELL)["success"] is True
    # NO 100 at 99c: 99 USD, within the cap.
    assert kalshi_order(kalshi, 100, price=99, side="no").order.status.value == "resting"
    assert ex.trading()["live_usd"] == pytest.approx(100.0 + 90.0 + 99.0)


def test_orders_are_valued_at_what_they_can_trade_for(ex):
    """A sell below the market fills at the market; a binary contract pays at most 1 USD; fields that
    contradict each other are refused, not resolved by picking one. max_leg_usd is 100."""
    ex.live(*VENUES)
    agent = ex.key()
    binance, kalshi, poly = ex.binance(agent), ex.kalshi(agent), ex.polymarket(agent)
    before = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}
    # 1 BTC limit sell at 100: counted at the market (50000 USD), not at 100 USD.
    assert "max_leg_usd" in binance_refusal(
        lambda: binance.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="100"))
    assert "max_leg_usd" in binance_refusal(
        lambda: binance.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER", quantity="0.01", price="1"))
    for extra in ({"quantity": "0.001", "quoteOrderQty": "10"},  # both sizes
                  {"quoteOrderQty": "10", "timeInForce": "GTC", "price": "50000", "type": "LIMIT"},  # quoteOrderQty on a LIMIT
                  {"quantity": "0", "type": "MARKET"}, {"quantity": "-1", "type": "MARKET"}, {"quantity": "1e-3", "type": "MARKET"},
                  {"quantity": "1", "price": "1", "type": "LIMIT", "timeInForce": "IOC", "pegPriceType": "MARKET_PEG"}):  # trades at the book
        args = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", **extra}
        binance_refusal(lambda: binance.create_order(**args), status=400)
    # Kalshi: a market sell is worth up to the market (or 1 USD a contract), never its buy_max_cost.
    assert "max_leg_usd" in kalshi_refusal(lambda: kalshi.create_order(
        ticker=fx.KALSHI_TICKER, side="yes", action="sell", count=300, type="market"))          # 300 × 0.44 bid = 132
    assert "max_leg_usd" in kalshi_refusal(lambda: kalshi.create_order(
        ticker=fx.KALSHI_TICKER, side="yes", action="sell", count=300, type="limit", yes_price=1))  # at 1c, still 132
    # Selling YES one does not hold buys NO: 150 YES sold at 1c is 150 NO bought at 99c, 148.50 USD.
    assert "max_leg_usd" in kalshi_refusal(lambda: kalshi.create_order(
        ticker=fx.KALSHI_TICKER, side="yes", action="sell", count=150, type="limit", yes_price=1))
    for contradiction in ({"yes_price": 40, "no_price": 60}, {"yes_price": 40, "yes_price_dollars": "0.4100"}):
        kalshi_refusal(lambda: kalshi.create_order(ticker=fx.KALSHI_TICKER, side="yes", action="buy", count=1, type="limit",
                                                   **contradiction), status=400)
    # Polymarket: a SELL of 300 shares asking only 3 USDC is worth 300 × 0.48 = 144 at the market.
    assert "max_leg_usd" in poly_refusal(lambda: poly_order(poly, 300, price=0.01, side=SELL))
    for venue, fake in ex.fakes.items():
        assert not [r for r in fake.requests[before[venue]:] if r["method"] in ("POST", "DELETE")], venue
    assert ex.trading()["live_usd"] == 0
    # Within the cap, a sell below the market is counted at the market: 0.001 BTC at 1 USD is 50 USD.
    binance.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.001", price="1")
    assert ex.trading()["live_usd"] == pytest.approx(50.0)


def test_an_order_on_a_shared_credential_keeps_within_the_owners_limits(ex, tmp_path, master_key):
    """A grantee with high limits trades on the owner's credential: each order fits both users' max_leg_usd and
    counts against both days, and the owner sees every call made on the credential."""
    ex.put_profile(risk={"max_leg_usd": 20, "daily_cap_usd": 30})
    ex.live("binance")
    made = warden("user", "create", "grantee@example.com", "grantee-password-1", "--no-reset", "--data-dir", str(tmp_path / "data"),
                  "--config", str(tmp_path / "warden.toml"), env={"WARDEN_MASTER_KEY": master_key})
    assert made.returncode == 0, made.stderr
    grant = requests.post(ex.api + f"/credentials/{ex.creds['binance']}/grants", headers=ex.auth,
                          json={"email": "grantee@example.com", "access": "trade"})
    assert grant.status_code == 201, grant.text
    token = requests.post(ex.api + "/auth/login", json={"email": "grantee@example.com", "password": "grantee-password-1"}).json()["access_token"]
    grantee = {"Authorization": f"Bearer {token}"}
    assert requests.put(ex.api + "/profile", headers=grantee, json={"risk": {"max_leg_usd": 1000, "daily_cap_usd": 100000}}).status_code == 200
    live = requests.post(ex.api + "/profile/go-live", headers=grantee, json={"venue": "binance"})
    assert live.json()["live"] is True, live.text
    made = requests.post(ex.api + "/agent-keys", headers=grantee,
                         json={"name": "g", "credential_ids": [ex.creds["binance"]], "access": "trade"})
    assert made.status_code == 201, made.text
    binance = ex.binance(made.json()["key"])
    fake = ex.fakes["binance"]
    before = len(orders_seen(fake, "POST", "/api/v3/order"))

    # 25 USD passes the grantee's 1000 but not the owner's 20.
    assert "max_leg_usd" in binance_refusal(lambda: binance.create_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0005", price="50000"))
    buy_ten_dollars(binance)
    buy_ten_dollars(binance)
    buy_ten_dollars(binance)
    assert "daily_cap_usd" in binance_refusal(lambda: buy_ten_dollars(binance))  # the owner's 30 USD day is full
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == before + 3
    assert ex.trading()["live_usd"] == pytest.approx(30.0)  # counted on the owner's day too
    # The owner sees the grantee's calls, refusals included.
    entries = requests.get(ex.api + "/audit", headers=ex.auth, params={"limit": 200}).json()["entries"]
    theirs = [e for e in entries if e["action"].startswith("gateway.") and json.loads(e["detail"] or "{}").get("credential_owner")]
    actions = {e["action"] for e in theirs}
    assert {"gateway.forward", "gateway.refuse"} <= actions, entries[:5]


def concurrent_orders(place, n=100):
    """Runs n order placements at once; returns the list of outcomes ("ok" or the refusal message)."""
    def one(i):
        try:
            place(i)
            return "ok"
        except BinanceAPIException as e:
            assert e.status_code == 403, e
            return e.message
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def buy_ten_dollars(client, **extra):
    """A LIMIT buy of 0.0002 BTC at 50000: exactly 10 USD."""
    return client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002",
                               price="50000.00", **extra)


def test_daily_cap_holds_under_100_concurrent_live_orders(ex):
    fake = ex.fakes["binance"]
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 250})
    ex.live("binance")
    agent = ex.key()
    results = concurrent_orders(lambda i: buy_ten_dollars(ex.binance(agent)))
    assert results.count("ok") == 25, results
    assert len([r for r in results if r != "ok" and "daily_cap_usd" in r]) == 75, results
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 25
    trading = ex.trading()
    assert trading["live_usd"] == pytest.approx(250.0) and trading["daily_cap_usd"] == pytest.approx(250.0)
    assert trading["paper_usd"] == pytest.approx(0)
    assert trading["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    # Spent: even a cent more is refused, before the venue.
    assert "daily_cap_usd" in binance_refusal(lambda: ex.binance(agent).create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="0.01"))
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 25
    assert_only_real_credentials(fake, [agent])


def test_daily_cap_holds_under_100_concurrent_paper_orders(ex):
    fake = ex.fakes["binance"]
    # No slippage and no fees, so a paper fill's notional is exactly its reservation: 0.0002 × 50000 = 10.
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 250}, simulator={"slippage_bps": 0, "fee_bps": 0})
    agent = ex.key()

    results = concurrent_orders(
        lambda i: ex.binance(agent).create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.0002"))
    assert results.count("ok") == 25, results
    assert len([r for r in results if "daily_cap_usd" in r]) == 75, results
    assert orders_seen(fake, "POST", "/api/v3/order") == []
    orders = ex.paper_orders()
    assert len(orders) == 25 and sum(float(o["notional_usd"]) for o in orders) == pytest.approx(250.0)
    trading = ex.trading()
    assert trading["paper_usd"] == pytest.approx(250.0) and trading["live_usd"] == pytest.approx(0)
    assert float(ex.paper_balances()["cash_usd"]) == pytest.approx(10_000 - 250)


def test_a_venue_rejection_gives_the_reservation_back(ex):
    binance_fake, kalshi_fake = ex.fakes["binance"], ex.fakes["kalshi"]
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 20})
    ex.live("binance", "kalshi")
    agent = ex.key()
    binance, kalshi = ex.binance(agent), ex.kalshi(agent)

    # 999 × 0.01 = 9.99 USD: within the caps, rejected by the venue itself.
    message = binance_refusal(lambda: binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                                           quantity=fx.BINANCE_REJECT_QUANTITY, price="0.01"), 400)
    assert "insufficient balance" in message
    assert kalshi_refusal(lambda: kalshi_order(kalshi, fx.KALSHI_REJECT_COUNT, price=1), 400) == "insufficient balance"
    assert len(orders_seen(binance_fake, "POST", "/api/v3/order")) == 1
    assert len(orders_seen(kalshi_fake, "POST", "/trade-api/v2/portfolio/orders")) == 1
    assert ex.trading()["live_usd"] == pytest.approx(0)

    # The whole cap is still there: 10 + 10 fit exactly, and nothing more.
    buy_ten_dollars(binance)
    assert kalshi_order(kalshi, 250, price=4).order.status.value == "resting"  # 250 × 4c = 10
    assert ex.trading()["live_usd"] == pytest.approx(20.0)
    assert "daily_cap_usd" in binance_refusal(lambda: buy_ten_dollars(binance))
    assert "daily_cap_usd" in kalshi_refusal(lambda: kalshi_order(kalshi, 1, price=1))
    assert len(orders_seen(binance_fake, "POST", "/api/v3/order")) == 2
    assert len(orders_seen(kalshi_fake, "POST", "/trade-api/v2/portfolio/orders")) == 2


def test_an_unreachable_venue_gives_the_reservation_back(ex, start, tmp_path, master_key):
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 20})
    ex.live("binance")
    agent = ex.key()
    # The same store, served again with a Binance that refuses every connection.
    ex.server.stop()
    config = tmp_path / "warden.toml"
    write_config(config, {**ex.fakes, "binance": types.SimpleNamespace(url=f"http://127.0.0.1:{free_port()}")})
    ex.server = start({"WARDEN_MASTER_KEY": master_key}, data_dir=tmp_path / "data", args=("--config", str(config)))
    ex.login()

    for _ in range(3):  # a bot retrying through an outage
        assert "could not be reached" in binance_refusal(lambda: buy_ten_dollars(ex.binance(agent)), 502)
    assert ex.trading()["live_usd"] == pytest.approx(0)  # nothing left Warden, so nothing is held


def test_a_reused_client_order_id_holds_its_own_reservation(ex):
    """Binance keeps client order ids unique only among open orders, and Kalshi's fake (like a venue after the
    first order closed) accepts one again: each send the venue could execute holds its own reservation. Only
    Polymarket, which identifies an order by its signed content and never fills it twice, gets a free retry,
    and only for the very same order."""
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 30})
    ex.live(*VENUES)
    agent = ex.key()
    binance, kalshi, poly = ex.binance(agent), ex.kalshi(agent), ex.polymarket(agent)
    fake = ex.fakes["binance"]

    buy_ten_dollars(binance, newClientOrderId="reuse-1")
    buy_ten_dollars(binance, newClientOrderId="reuse-1")  # the same id again: a second order at the venue
    assert ex.trading()["live_usd"] == pytest.approx(20.0)
    # Other content under the same id is a new order too, and the cap holds whatever ids are reused.
    kalshi_order(kalshi, 10, price=46, client_order_id="reuse-1")
    assert "daily_cap_usd" in binance_refusal(lambda: buy_ten_dollars(binance, newClientOrderId="reuse-1"))
    assert ex.trading()["live_usd"] == pytest.approx(24.60)
    sent = [r for r in fake.requests if r["method"] == "POST" and r["path"] == "/api/v3/order"]
    assert len(sent) == 2

    # Polymarket: the very same signed order twice is one order; a new salt is a new order.
    signed = poly.create_order(OrderArgs(token_id=fx.POLY_TOKEN_ID, price=0.5, size=10, side=BUY))  # 5 USDC
    poly.post_order(signed)
    poly.post_order(signed)
    assert ex.trading()["live_usd"] == pytest.approx(29.60)
    entries = requests.get(ex.api + "/audit", params={"action": "gateway.forward"}, headers=ex.auth).json()["entries"]
    sends = [json.loads(e["detail"]) for e in reversed(entries) if e["target"] == "polymarket"]
    assert [d.get("retry") for d in sends] == [None, "true"]
    # A new salt is a new order: 5 more USDC would pass the 30 USD day.
    assert "daily_cap_usd" in poly_refusal(lambda: poly_order(poly, 10, price=0.5))
    assert ex.trading()["live_usd"] == pytest.approx(29.60)


def test_a_live_order_that_cannot_be_recorded_is_neither_sent_nor_reserved(ex, tmp_path, master_key):
    ex.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 250})
    ex.live("binance")
    fake, binance = ex.fakes["binance"], ex.binance(ex.key())
    buy_ten_dollars(binance, newClientOrderId="rec-1")
    with sqlite3.connect(tmp_path / "data" / "warden.db") as db:
        db.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(FAIL, 'audit disk full'); END")
    try:
        assert "audit log" in binance_refusal(lambda: buy_ten_dollars(binance, newClientOrderId="rec-2"), 503)
        assert "audit log" in binance_refusal(lambda: buy_ten_dollars(binance, newClientOrderId="rec-1"), 503)  # a retry too
    finally:
        with sqlite3.connect(tmp_path / "data" / "warden.db") as db:
            db.execute("DROP TRIGGER refuse_audit")
    assert len(orders_seen(fake, "POST", "/api/v3/order")) == 1
    assert ex.trading()["live_usd"] == pytest.approx(10.0), "an order that was not sent still holds part of the cap"
    # Nothing of rec-2 was kept, so once rows commit again it is a new order, not a retry.
    deadline = time.time() + 5
    while True:
        try:
            buy_ten_dollars(binance, newClientOrderId="rec-2")
            break
        except BinanceAPIException as refused:
            assert refused.status_code == 503 and time.time() < deadline, refused
            time.sleep(0.1)
    assert ex.trading()["live_usd"] == pytest.approx(20.0)
    entries = requests.get(ex.api + "/audit", params={"action": "gateway.forward"}, headers=ex.auth).json()["entries"]
    rec2 = [json.loads(e["detail"]) for e in entries if json.loads(e["detail"]).get("client_order_id") == "rec-2"]
    assert len(rec2) == 1 and "retry" not in rec2[0], rec2
    ex.server.stop()
    verified = warden("audit", "verify", "--data-dir", str(tmp_path / "data"), env={"WARDEN_MASTER_KEY": master_key})
    assert verified.returncode == 0, verified.stderr


def fresh_postgres_database(base):
    name = f"warden_x_{uuid.uuid4().hex[:16]}"
    psql = os.path.join(os.environ.get("WARDEN_TEST_PG_BINDIR", "/usr/bin"), "psql")
    subprocess.run([psql if os.path.exists(psql) else "psql", base.split("?")[0], "-c", f"CREATE DATABASE {name}"],
                   check=True, capture_output=True)
    head, _, query = base.partition("?")
    return head.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def test_daily_cap_holds_across_two_servers_on_postgres(start, tmp_path, master_key, fakes):
    base = os.environ.get("WARDEN_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("WARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("WARDEN_REQUIRE_POSTGRES=1 but WARDEN_TEST_POSTGRES_URL is not set")
        pytest.skip("needs PostgreSQL (scripts/test starts one)")
    url = fresh_postgres_database(base)
    config = tmp_path / "warden.toml"
    write_config(config, fakes)
    env = {"WARDEN_MASTER_KEY": master_key}
    store = ("--database", url)
    first = start_warden(start, env, config, tmp_path / "a", store)
    second = start_warden(start, env, config, tmp_path / "b", store, create_owner=False)
    world = Exchanges(first, fakes)
    world.store_credentials()
    world.put_profile(risk={"max_leg_usd": 10, "daily_cap_usd": 250})
    world.live("binance")
    agent = world.key()
    servers = [first, second]
    results = concurrent_orders(lambda i: buy_ten_dollars(binance_client(servers[i % 2].url + "/proxy/binance", agent)))
    assert results.count("ok") == 25, results
    assert len([r for r in results if "daily_cap_usd" in r]) == 75, results
    assert len(orders_seen(fakes["binance"], "POST", "/api/v3/order")) == 25
    assert world.trading()["live_usd"] == pytest.approx(250.0)
    world.server = second
    world.login()
    assert world.trading()["live_usd"] == pytest.approx(250.0)


# ------------------------------------------------------------------------------------------------ d. dry-run

def test_dry_run_fills_on_paper_and_never_reaches_the_order_endpoint(ex):
    binance_fake = ex.fakes["binance"]
    agent = ex.key()
    client = ex.binance(agent)
    assert ex.profile()["risk"]["allow_live_trading"] is False
    order = client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001", newClientOrderId="paper-1")
    assert order["status"] == "FILLED" and order["clientOrderId"] == "paper-1"
    assert float(order["executedQty"]) == pytest.approx(0.001)
    assert float(order["cummulativeQuoteQty"]) == pytest.approx(50.025)
    assert float(order["fills"][0]["price"]) == pytest.approx(50025.0)
    assert orders_seen(binance_fake, "POST", "/api/v3/order") == []

    [paper] = ex.paper_orders()
    assert (paper["venue"], paper["instrument"], paper["side"], paper["client_order_id"]) == ("binance", "BTCUSDT", "buy", "paper-1")
    assert float(paper["quantity"]) == pytest.approx(0.001)
    assert float(paper["price"]) == pytest.approx(50025.0)             # 50000 × (1 + 5 bps)
    assert float(paper["notional_usd"]) == pytest.approx(50.025)
    assert float(paper["fee_usd"]) == pytest.approx(0.050025)         # 10 bps
    assert paper["id"] and paper["created_at"]
    balances = ex.paper_balances()
    assert float(balances["starting_balance_usd"]) == pytest.approx(10_000)
    assert float(balances["fees_usd"]) == pytest.approx(0.050025)
    assert float(balances["cash_usd"]) == pytest.approx(10_000 - 50.025 - 0.050025)
    assert [(p["venue"], p["instrument"], float(p["quantity"])) for p in balances["positions"]] == [("binance", "BTCUSDT", 0.001)]
    assert ex.trading()["live_usd"] == pytest.approx(0) and ex.trading()["paper_usd"] > 0

    # Kalshi and Polymarket answer in their own shapes; their order endpoints receive nothing either.
    kalshi_fake, poly_fake = ex.fakes["kalshi"], ex.fakes["polymarket"]
    created = kalshi_order(ex.kalshi(agent), 10, price=46, client_order_id="paper-k1")
    assert created is not None and created.order.ticker == fx.KALSHI_TICKER and created.order.client_order_id == "paper-k1"
    posted = poly_order(ex.polymarket(agent), 10, price=0.5)
    assert posted["success"] is True and posted["orderID"]
    assert orders_seen(kalshi_fake, "POST", "/trade-api/v2/portfolio/orders") == []
    assert orders_seen(poly_fake, "POST", "/order") == []
    venues = sorted((o["venue"], o["instrument"]) for o in ex.paper_orders())
    assert venues == [("binance", "BTCUSDT"), ("kalshi", fx.KALSHI_TICKER), ("polymarket", fx.POLY_TOKEN_ID)]
    # Reads still reach the venues with the real credentials.
    assert client.get_account()["balances"][0]["free"] == "1000.00"
    for fake in ex.fakes.values():
        assert all(r.get("auth") in ("ok", "public") for r in fake.requests)


# ------------------------------------------------------------------------------------------------- e. go-live

def checks(response):
    return {c["name"]: c["passed"] for c in response.json()["checks"]}


def test_go_live_fails_naming_the_check_when_the_balance_is_short(ex):
    ex.fakes["binance"].state["usdt"] = "99.99"  # max_leg_usd is 100
    r = ex.go_live("binance")
    assert r.status_code == 422, r.text
    assert r.json()["venue"] == "binance" and r.json()["live"] is False
    assert checks(r) == {"credential": True, "balance_call": True, "balance_covers_max_leg": False}
    failing = next(c for c in r.json()["checks"] if c["name"] == "balance_covers_max_leg")
    assert failing["detail"]
    assert ex.profile()["risk"]["allow_live_trading"] is False
    assert "binance" not in ex.profile()["risk"]["live_venues"]
    # Kalshi and Polymarket short too (cents; micro-USDC).
    ex.fakes["kalshi"].state["balance_cents"] = 9_999
    ex.fakes["polymarket"].state["usdc_micro"] = "99999999"
    for venue in ("kalshi", "polymarket"):
        r = ex.go_live(venue)
        assert r.status_code == 422 and checks(r)["balance_covers_max_leg"] is False, r.text
    # Orders stay on paper.
    agent = ex.key()
    ex.binance(agent).create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.0001")
    assert orders_seen(ex.fakes["binance"], "POST", "/api/v3/order") == []


def test_go_live_fails_without_a_credential_or_a_working_one(ex):
    assert requests.delete(ex.api + f"/credentials/{ex.creds['kalshi']}", headers=ex.auth).status_code == 204
    r = ex.go_live("kalshi")
    assert r.status_code == 422 and r.json()["live"] is False, r.text
    assert checks(r)["credential"] is False
    assert not [c for c in r.json()["checks"] if c["passed"]], "nothing else can pass without a credential"
    assert ex.fakes["kalshi"].requests == []

    # A credential the venue refuses fails the balance call.
    assert requests.delete(ex.api + f"/credentials/{ex.creds['binance']}", headers=ex.auth).status_code == 204
    ex.creds["binance"] = ex.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": "not-the-real-secret"})
    r = ex.go_live("binance")
    assert r.status_code == 422, r.text
    assert checks(r)["credential"] is True and checks(r)["balance_call"] is False
    assert ex.profile()["risk"]["allow_live_trading"] is False


def test_go_live_passes_and_flips_the_flag_and_turning_it_off_needs_no_check(ex):
    r = ex.go_live("binance")
    assert r.status_code == 200, r.text
    assert r.json() | {"checks": None} == {"venue": "binance", "live": True, "checks": None}
    assert checks(r) == {"credential": True, "balance_call": True, "balance_covers_max_leg": True}
    risk = ex.profile()["risk"]
    assert risk["allow_live_trading"] is True and risk["live_venues"] == ["binance"]
    assert orders_seen(ex.fakes["binance"], "GET", "/api/v3/account")  # the balance call, signed for real
    assert_only_real_credentials(ex.fakes["binance"], [])

    agent = ex.key()
    buy_ten_dollars(ex.binance(agent))
    assert len(orders_seen(ex.fakes["binance"], "POST", "/api/v3/order")) == 1
    # Live on Binance only: a Kalshi order stays on paper.
    kalshi_order(ex.kalshi(agent), 10, price=46)
    assert orders_seen(ex.fakes["kalshi"], "POST", "/trade-api/v2/portfolio/orders") == []

    # PUT cannot turn it on; turning it off needs nothing and sends orders back to paper.
    ex.put_profile(risk={"allow_live_trading": False})
    risk = ex.profile()["risk"]
    assert risk["allow_live_trading"] is False and risk["live_venues"] == []
    r = requests.put(ex.api + "/profile", headers=ex.auth, json={"risk": {"allow_live_trading": True}})
    assert r.status_code >= 400 or r.json()["risk"]["allow_live_trading"] is False
    assert ex.profile()["risk"]["allow_live_trading"] is False
    buy_ten_dollars(ex.binance(agent))
    assert len(orders_seen(ex.fakes["binance"], "POST", "/api/v3/order")) == 1
    actions = [e["action"] for e in requests.get(ex.api + "/audit?limit=100", headers=ex.auth).json()["entries"]]
    assert any("live" in action for action in actions), f"go-live is not audited: {actions}"


# ---------------------------------------------------------------------------------------- f. read keys, 401

def test_a_read_key_reads_but_never_trades(ex):
    ex.live(*VENUES)
    reader = ex.key(access="read")
    binance, kalshi, poly = ex.binance(reader), ex.kalshi(reader), ex.polymarket(reader)
    assert binance.get_account()["balances"][0]["asset"] == "USDT"
    assert kalshi.get_balance().balance == 100_000
    assert poly.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))["balance"] == "1000000000"
    before = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}

    assert "read-only" in binance_refusal(lambda: binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                                                       timeInForce="GTC", quantity="0.0002", price="50000"))
    assert "read-only" in binance_refusal(lambda: binance.cancel_order(symbol="BTCUSDT", orderId=1))
    assert "read-only" in kalshi_refusal(lambda: kalshi_order(kalshi, 1, price=46))
    assert "read-only" in kalshi_refusal(lambda: kalshi.cancel_order("some-order"))
    assert "read-only" in poly_refusal(lambda: poly_order(poly, 10))
    assert "read-only" in poly_refusal(lambda: poly.cancel("0x" + "0" * 64))
    after = {venue: len(fake.requests) for venue, fake in ex.fakes.items()}
    # Building a Polymarket order reads public tick-size/neg-risk/fee-rate first; nothing else got through.
    extra = [(r["method"], r["path"].split("?")[0]) for v in VENUES for r in ex.fakes[v].requests[before[v]:after[v]]]
    assert all(method == "GET" for method, _ in extra), extra
    assert_only_real_credentials(ex.fakes["binance"], [reader])
    assert ex.trading() | {"day": None} == {"day": None, "live_usd": 0, "paper_usd": 0, "daily_cap_usd": 500}


def test_unknown_agent_keys_are_401_in_each_venue_shape(ex):
    binance_refusal(lambda: ex.binance("wdn_" + "0" * 43).get_account(), 401)
    kalshi_refusal(lambda: ex.kalshi("wdn_" + "0" * 43).get_balance(), 401)
    poly_refusal(lambda: ex.polymarket("wdn_" + "0" * 43).get_orders(), 401)
    for fake in ex.fakes.values():
        assert fake.requests == []


def test_exchange_secrets_never_reach_the_database_the_log_or_an_answer(ex, tmp_path):
    """The planted venue secrets, after live and paper trading, reads and refusals on every venue: not in the SQLite
    file (and its WAL), not in the server's log, not in any management answer."""
    ex.live("binance")
    agent = ex.key()
    client = ex.binance(agent)
    client.get_account()
    client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.001", price="40000")
    ex.kalshi(agent).create_order(ticker=fx.KALSHI_TICKER, side="yes", action="buy", count=2, type="limit", yes_price=46)
    binance_refusal(lambda: client.withdraw(coin="USDT", address="0x" + "1" * 40, amount="1"))
    answers = "".join(requests.get(ex.api + path, headers=ex.auth).text
                      for path in ("/credentials", "/audit?limit=500", "/usage", "/paper/orders", "/profile"))

    pem_body = "".join(fx.REAL_KALSHI_PRIVATE_KEY_PEM.strip().splitlines()[1:-1])
    planted = {"binance api_secret": fx.REAL_BINANCE_SECRET, "kalshi private key": pem_body[100:160],
               "polymarket api_secret": fx.REAL_POLY_API_SECRET, "polymarket passphrase": fx.REAL_POLY_PASSPHRASE}
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("warden.db*"))
    log = ex.server.output()
    for name, secret in planted.items():
        assert secret.encode() not in stored, f"{name} is in the database file"
        assert secret not in log, f"{name} is in the log"
        assert secret not in answers, f"{name} is in an API answer"
    assert agent not in log and agent.encode() not in stored, "the agent key itself is stored or logged"


def test_a_limit_lowered_through_another_server_holds_for_the_next_order(ex, start, tmp_path, master_key):
    """A server keeps owners' risk settings in its key cache and sees another process's changes within its 50 ms poll;
    an order's reservation reads them again as stored, in its own transaction. So live trading turned off, a
    daily_cap_usd or a max_leg_usd lowered through a second server on the same store holds on the first at once:
    a burst of orders sent to the first right after the change returns gets nothing past the new settings."""
    ex.put_profile(risk={"max_leg_usd": 100, "daily_cap_usd": 1000})
    ex.live("binance")
    binance = ex.binance(ex.key(venues=("binance",)))
    fake = ex.fakes["binance"]

    def ten_usd():  # 0.0002 × 50000
        return binance.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.0002", price="50000")

    def burst(count=8):
        """Orders sent together to the first server; how many reached the venue."""
        sent = len(orders_seen(fake, "POST", "/api/v3/order"))
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            for future in [pool.submit(ten_usd) for _ in range(count)]:
                try:
                    future.result()
                except BinanceAPIException:
                    pass
        return len(orders_seen(fake, "POST", "/api/v3/order")) - sent

    second = start({"WARDEN_MASTER_KEY": master_key}, data_dir=tmp_path / "data", args=("--config", str(tmp_path / "warden.toml")))
    login = requests.post(second.url + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
    other = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def change(risk):
        r = requests.put(second.url + "/api/v1/profile", headers=other, json={"risk": risk})
        assert r.status_code == 200, r.text

    assert ten_usd()["status"] == "NEW"  # the first server holds the owner's settings now
    change({"allow_live_trading": False})
    assert burst() == 0, "an order went live after live trading was turned off"

    time.sleep(0.2)  # the first server's poll has seen it; live again, through the first server
    ex.live("binance")
    assert ten_usd()["status"] == "NEW"
    used = ex.trading()["live_usd"]
    change({"daily_cap_usd": used + 15, "max_leg_usd": 10})  # room for one more 10 USD order
    assert burst() <= 1
    assert ex.trading()["live_usd"] <= used + 15

    time.sleep(0.2)
    change({"max_leg_usd": 5, "daily_cap_usd": 1000})
    assert burst() == 0, "an order over the new max_leg_usd reached the venue"
    assert "max_leg_usd" in binance_refusal(ten_usd)
