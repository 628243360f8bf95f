"""Binance /sapi classification, judged by what the fake Binance received.

Hundreds of generated requests (method tricks, path spellings, versions, parameters) try to get a fund movement,
borrow, repay, transfer, withdrawal, convert, earn subscription or account-setting change to the fake through
Warden with an agent key. Oracle: the fake's own record. Everything it received on /sapi must be GET or HEAD of one
of the listed read paths (docs/exchanges.md), in that exact spelling."""
import http.client
import itertools
import random
import time
from urllib.parse import urlsplit

import pytest
import requests

import fake_exchanges as fx
from test_exchanges import Exchanges, start_warden, write_config

LISTED = {
    "/sapi/v1/system/status", "/sapi/v1/capital/config/getall", "/sapi/v1/capital/deposit/hisrec",
    "/sapi/v1/capital/deposit/address", "/sapi/v1/capital/withdraw/history", "/sapi/v1/asset/assetDetail",
    "/sapi/v1/asset/tradeFee", "/sapi/v1/asset/assetDividend", "/sapi/v1/asset/dribblet", "/sapi/v1/accountSnapshot",
    "/sapi/v1/account/status", "/sapi/v1/account/apiTradingStatus", "/sapi/v1/account/apiRestrictions",
    "/sapi/v1/margin/allPairs", "/sapi/v1/margin/allAssets", "/sapi/v1/margin/pair", "/sapi/v1/margin/asset",
    "/sapi/v1/margin/priceIndex", "/sapi/v1/margin/isolated/allPairs", "/sapi/v1/margin/isolated/pair",
    "/sapi/v1/margin/account", "/sapi/v1/margin/isolated/account", "/sapi/v1/margin/crossMarginData",
    "/sapi/v1/margin/interestHistory", "/sapi/v1/margin/interestRateHistory", "/sapi/v1/margin/openOrders",
    "/sapi/v1/margin/allOrders", "/sapi/v1/margin/order", "/sapi/v1/margin/myTrades",
}
WRITES = [
    "/sapi/v1/capital/withdraw/apply", "/sapi/v1/asset/transfer", "/sapi/v1/margin/borrow-repay", "/sapi/v1/margin/loan",
    "/sapi/v1/margin/repay", "/sapi/v1/margin/order", "/sapi/v1/margin/transfer", "/sapi/v1/margin/isolated/account",
    "/sapi/v1/margin/isolated/transfer", "/sapi/v1/futures/transfer", "/sapi/v1/convert/getQuote", "/sapi/v1/convert/acceptQuote",
    "/sapi/v1/simple-earn/flexible/subscribe", "/sapi/v1/simple-earn/flexible/redeem", "/sapi/v1/staking/purchase",
    "/sapi/v2/eth-staking/eth/stake", "/sapi/v1/asset/dust", "/sapi/v1/asset/dust-btc", "/sapi/v3/asset/getUserAsset",
    "/sapi/v1/account/enableFastWithdrawSwitch", "/sapi/v1/account/apiRestrictions/ipRestriction", "/sapi/v1/bnbBurn",
    "/sapi/v1/sub-account/universalTransfer", "/sapi/v1/margin/max-leverage", "/sapi/v1/margin/order/oco",
    "/sapi/v1/margin/exchange-small-liability", "/sapi/v1/margin/manual-liquidation", "/sapi/v1/portfolio/repay",
    "/sapi/v1/loan/borrow", "/sapi/v1/lending/auto-invest/plan/add", "/sapi/v1/capital/deposit/credit-apply",
    "/sapi/v1/giftcard/createCode", "/sapi/v1/dci/product/subscribe", "/sapi/v1/asset/get-funding-asset",
    "/wapi/v3/withdraw.html",
]


def spellings(path, rng):
    """Ways the same path may be written; each either canonicalises to it or differs from it at the venue."""
    segs = path.strip("/").split("/")
    out = {path, path + "/", "/" + "//".join(segs), path.upper(), path.lower(), path.swapcase(),
           path.replace("/sapi/", "/SAPI/"), path.replace("/v1/", "/V1/"), path + ";x", path + "%3Bx",
           path.replace("/sapi/", "/sapi/./"), path.replace("/sapi/v1/", "/sapi/v1/x/../"), path + "%20", path + "%09",
           path + "/.", path + "/..", path + ".json", path + "%2F", path.replace("/", "%2F", 2), path + "%00",
           path + "%2e", path.replace("/v1/", "/v2/"), path.replace("/v1/", "/v3/"), path.replace("/v1/", "/v4/"),
           path.replace("/v1/", "//v1//"), path.replace("/v1/", "/v1%2F"), "/" + "/".join(segs[:-1]) + "/%" + segs[-1].encode().hex()[:2] + segs[-1][1:],
           path.replace("/sapi/v1/", "/sapi/"), path.replace("/sapi/", "/api/"), path.replace("/sapi/", "/sapi/sapi/"),
           path + "/x", path + "?", path + "#frag", path.replace("/sapi", ""), path.replace("a", "%61"), path.replace("e", "%65"),
           path.replace("-", "%2D"), path.replace("/", "\\", 1), path + "%5C", path + "\u017f".encode().decode(),
           path.replace("s", "\u017f", 1), path.replace("i", "\u0131", 1), path.replace("K", "\u212a")}
    one = list(path)
    i = rng.randrange(1, len(one))
    one[i] = "%%%02X" % ord(one[i]) if one[i] != "/" else "/"
    out.add("".join(one))
    return sorted(out)


def raw(url, method, target, headers=(), body=b""):
    """One request with an arbitrary request-target; returns the status or the error's name."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3)
    started = time.monotonic()
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        if ("Transfer-Encoding", "chunked") not in headers and (body or method in ("POST", "PUT", "PATCH")):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        r = conn.getresponse()
        r.read()
        return r.status
    except Exception as error:  # noqa: BLE001
        if time.monotonic() - started > 2:
            print("slow:", method, target, headers[2:], body[:40])
        return type(error).__name__
    finally:
        conn.close()


WRITE_PARAMS = ["coin=USDT&address=0xabc&amount=100&network=ETH", "asset=USDT&amount=100&type=MAIN_FUNDING",
                "asset=USDT&isIsolated=FALSE&amount=100&type=BORROW", "productId=USDT001&amount=100",
                "quoteId=abc", "symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&sideEffectType=MARGIN_BUY"]


@pytest.fixture
def binance_world(start, tmp_path, master_key):
    fake = fx.binance()
    config = tmp_path / "warden.toml"
    write_config(config, {"binance": fake})
    world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"binance": fake})
    world.creds = {"binance": world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})}
    yield world
    fake.stop()


def acting(fake):
    bad = []
    for r in fake.requests:
        path = urlsplit(r["path"]).path
        if path.startswith("/api/v3/"):
            if r["method"] not in ("GET", "HEAD"):
                bad.append(r)
            continue
        if r["method"] not in ("GET", "HEAD") or path not in LISTED:
            bad.append(r)
    return bad


@pytest.mark.parametrize("seed", [1])
def test_no_sapi_write_reaches_binance(binance_world, seed):
    world = binance_world
    fake = world.fakes["binance"]
    rng = random.Random(seed)
    trade = world.key(venues=("binance",), access="trade")
    read = world.key(venues=("binance",), access="read")
    r = requests.post(world.api + "/profile/go-live", headers=world.auth, json={"venue": "binance"})
    prefix = "/proxy/binance"
    sent = 0
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "Get"]
    tricks = [(), (("X-HTTP-Method-Override", "POST"),), (("X-Original-URL", "/sapi/v1/capital/withdraw/apply"),),
              (("X-Forwarded-Prefix", "/sapi/v1/capital/withdraw"),), (("X-Forwarded-Path", "/sapi/v1/asset/transfer"),),
              (("Content-Type", "application/x-www-form-urlencoded"),), (("Transfer-Encoding", "chunked"),)]
    for path in WRITES + sorted(LISTED):
        for spelled in spellings(path, rng):
            for method in rng.sample(methods, 2) + ["GET"]:
                key = rng.choice([trade, read])
                q = rng.choice(["", "?" + rng.choice(WRITE_PARAMS), "?timestamp=1&" + rng.choice(WRITE_PARAMS)])
                body = rng.choice([b"", rng.choice(WRITE_PARAMS).encode()])
                hdrs = (("Host", urlsplit(world.url).netloc), ("X-MBX-APIKEY", key)) + rng.choice(tricks)
                if ("Transfer-Encoding", "chunked") in hdrs:
                    body = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
                raw(world.url, method, prefix + spelled + q, hdrs, body)
                sent += 1
    time.sleep(0.5)
    bad = acting(fake)
    print(f"sent {sent}, venue saw {len(fake.requests)}: {sorted({(r['method'], urlsplit(r['path']).path) for r in fake.requests})}")
    assert not bad, [(r["method"], r["path"], r["body"][:80]) for r in bad]



def test_a_format_suffix_does_not_take_a_money_call_out_of_its_family(start, tmp_path, master_key):
    """Fund movement is 'refused always; no setting opens it' (docs/exchanges.md). The money-family rule
    compares the segment after /sapi/vN/ exactly, so `bnbBurn.json`, `margin.json` or `dust.json` are not in a
    family: the call is merely unknown, and an operator's allow_endpoints rule that covers it (here "POST /sapi/**",
    meant for e.g. userDataStream) sends it, signed with the real credential. Frameworks that route a format suffix
    to the same action (Spring MVC's suffix pattern match, Rails' .:format) read these as the money endpoints; Warden
    itself knows this and matches suffixes for refusing rules (EndpointPattern.matches formatSuffixes), but not here."""
    fake = fx.binance()
    try:
        config = tmp_path / "warden.toml"
        write_config(config, {"binance": fake}, allow={"binance": ["POST /sapi/**"]})
        world = Exchanges(start_warden(start, {"WARDEN_MASTER_KEY": master_key}, config, tmp_path / "data"), {"binance": fake})
        world.creds = {"binance": world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY, "api_secret": fx.REAL_BINANCE_SECRET})}
        assert world.go_live("binance").status_code == 200
        trade = world.key(venues=("binance",), access="trade")
        hdrs = (("Host", urlsplit(world.url).netloc), ("X-MBX-APIKEY", trade),
                ("Content-Type", "application/x-www-form-urlencoded"))
        calls = [("/sapi/v1/bnbBurn.json", b"spotBNBBurn=true"),
                 ("/sapi/v1/asset/dust.json", b"asset=ETH"),
                 ("/sapi/v1/margin.json/borrow-repay", b"asset=USDT&isIsolated=FALSE&amount=100&type=BORROW"),
                 ("/sapi/v1/convert/acceptQuote.json", b"quoteId=abc"),
                 ("/sapi/v1/simple-earn/flexible/subscribe.json", b"productId=USDT001&amount=100")]
        statuses = [raw(world.url, "POST", "/proxy/binance" + path, hdrs, body) for path, body in calls]
        time.sleep(0.3)
        reached = [(r["method"], r["path"], r["body"], r.get("auth")) for r in fake.requests if r["path"].startswith("/sapi")]
        assert not reached, f"money calls with a format suffix reached Binance, signed (Warden answered {statuses}): {reached}"
    finally:
        fake.stop()
