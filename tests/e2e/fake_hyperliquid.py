"""A local fake of Hyperliquid's API (`POST /info`, `POST /exchange`) on 127.0.0.1.

`/info` is public. An L1 action sent to `/exchange` is verified as Hyperliquid verifies it: the server reads the
action into its typed structs (a field it does not know, or of the wrong type, is refused with 422, as its JSON
extractor does) and hashes the action re-serialized from them: fields in canonical order, decimal strings without
trailing zeros, addresses and cloids lowercased. connectionId = keccak256(msgpack(action) ‖ nonce (8 bytes, big
endian) ‖ 0x00, or 0x01 ‖ vault address (20 bytes) ‖ [0x00 ‖ expiresAfter (8 bytes)]); the signer is recovered from
the EIP-712 message Agent(string source, bytes32 connectionId), source "a" on mainnet and "b" on testnet, on the
domain {name "Exchange", version "1", chainId 1337, verifyingContract 0x0}. It must be the planted wallet or one of
its API wallets (state["agents"]), and its nonce unused by that signer and within (now - 2 days, now + 1 day).
Like Hyperliquid, verdicts are HTTP 200 with {"status": "ok" | "err", "response": …}; a wrong signature recovers some
other address and is answered "User or API Wallet 0x… does not exist.".
User-signed actions (transfers, withdrawals, approvals) and vault/sub-account transfers are answered "ok" unchecked,
their verdict "unchecked": tests assert they never arrive. Other L1 actions the fake does not model (setReferrer,
evmUserModify, …) are verified over the action as sent and answered "ok".
Every request is recorded with its verdict under "auth" ("public", "ok", "unchecked" or "rejected: …"), an /exchange
request also with "action" (as sent) and "signer" (recovered, lowercase); a request whose orders the fake took
(placed or modified) is marked "accepted".

The Python SDK signs for testnet ("b") against any base_url but its mainnet one: to drive the fake with the SDK
directly, give the fake mainnet=False, or make the SDK believe the fake is mainnet (patch
`hyperliquid.exchange.MAINNET_API_URL`).

state: mainnet (bool: which source it takes), usdc (perp account value, a string), spot (spot balances by token),
prices (mid by coin: "BTC", "ETH", "PURR/USDC"), leverage (coin → {"type": "cross" | "isolated", "value": int}; a
coin absent is cross 20), positions (perp coin → signed size, a string), agents (lowercase addresses of API wallets
that may sign for the account), orders (oid → order), taken (each order wire the fake took, placed or as a
modification, in order), fills (newest last), nonces (signer → nonces used),
schedule_cancel (the time set by scheduleCancel, or None).
"""
import itertools
import json
import re
import struct
import time
from decimal import Context, Decimal
from urllib.parse import urlsplit

from eth_account import Account
from eth_utils import keccak

from fake_exchanges import Venue, _mark
from fakes import send_json

# The planted real wallet: only Warden may hold its key.
_HL_WALLET = Account.create()
REAL_HL_WALLET_KEY = _HL_WALLET.key.hex() if _HL_WALLET.key.hex().startswith("0x") else "0x" + _HL_WALLET.key.hex()
REAL_HL_ADDRESS = _HL_WALLET.address

HL_REJECT_SIZE = "999"  # an order of exactly this size is refused for margin (a venue-side refusal)
HL_PRICES = {"BTC": "50000.0", "ETH": "2500.0", "PURR/USDC": "0.2"}
# Perpetuals by asset index: (name, szDecimals, maxLeverage).
HL_PERPS = [("BTC", 5, 50), ("ETH", 4, 25)]
# Spot: tokens by index, and the one pair (asset 10000 + its universe index).
HL_SPOT_TOKENS = [
    {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
     "isCanonical": True, "evmContract": None, "fullName": None, "deployerTradingFeeShare": "0.0"},
    {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1, "tokenId": "0xc1fb593aeffbeb02f85e0308e9956a90",
     "isCanonical": True, "evmContract": None, "fullName": None, "deployerTradingFeeShare": "0.0"},
]
HL_SPOT_PAIRS = [{"tokens": [1, 0], "name": "PURR/USDC", "index": 0, "isCanonical": True}]
# Asset index → (coin, szDecimals).
HL_ASSETS = {**{i: (name, sz) for i, (name, sz, _) in enumerate(HL_PERPS)},
             **{10000 + p["index"]: (p["name"], HL_SPOT_TOKENS[p["tokens"][0]]["szDecimals"]) for p in HL_SPOT_PAIRS}}
HL_DEFAULT_LEVERAGE = {"type": "cross", "value": 20}

# Actions signed by the user's wallet with their own EIP-712 types, and L1 actions that move funds between accounts:
# answered without checks (tests assert they never arrive).
HL_UNCHECKED_ACTIONS = {"usdSend", "spotSend", "withdraw3", "usdClassTransfer", "sendAsset", "approveAgent",
                        "approveBuilderFee", "tokenDelegate", "convertToMultiSigUser", "userDexAbstraction",
                        "userSetAbstraction", "multiSig", "cDeposit", "cWithdraw", "vaultTransfer",
                        "subAccountTransfer", "subAccountSpotTransfer"}

_NONCES_KEPT = 100  # Hyperliquid keeps the 100 highest nonces of each signer
_DAY_MS = 86_400_000
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_HEX = set("0123456789abcdefABCDEF")
_EXACT = Context(prec=200)  # enough digits that normalizing never rounds


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------- signing

def msgpack(obj):
    """MessagePack of a JSON value, each item in its most compact form (as rmp-serde and msgpack-python write it)."""
    if obj is None:
        return b"\xc0"
    if obj is True or obj is False:
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 0x80:
            return bytes([obj])
        if -32 <= obj < 0:
            return (obj & 0xFF).to_bytes(1, "big")
        for lo, hi, tag, size in ((0, 1 << 8, 0xCC, 1), (0, 1 << 16, 0xCD, 2), (0, 1 << 32, 0xCE, 4), (0, 1 << 64, 0xCF, 8),
                                  (-(1 << 7), 0, 0xD0, 1), (-(1 << 15), 0, 0xD1, 2), (-(1 << 31), 0, 0xD2, 4),
                                  (-(1 << 63), 0, 0xD3, 8)):
            if lo <= obj < hi:
                return bytes([tag]) + obj.to_bytes(size, "big", signed=obj < 0)
        raise ValueError("integer out of range")
    if isinstance(obj, float):
        return b"\xcb" + struct.pack(">d", obj)
    if isinstance(obj, str):
        data = obj.encode()
        n = len(data)
        head = bytes([0xA0 | n]) if n < 32 else bytes([0xD9, n]) if n < 1 << 8 else \
            b"\xda" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdb" + n.to_bytes(4, "big")
        return head + data
    if isinstance(obj, list):
        n = len(obj)
        head = bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdd" + n.to_bytes(4, "big")
        return head + b"".join(msgpack(item) for item in obj)
    if isinstance(obj, dict):
        n = len(obj)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdf" + n.to_bytes(4, "big")
        return head + b"".join(msgpack(k) + msgpack(v) for k, v in obj.items())
    raise TypeError(f"cannot pack {type(obj).__name__}")


def hl_action_hash(action, nonce, vault_address=None, expires_after=None):
    """The connectionId of an L1 action (hashed as given: canonicalize it first to get what the server hashes)."""
    data = msgpack(action) + nonce.to_bytes(8, "big")
    data += b"\x00" if vault_address is None else b"\x01" + bytes.fromhex(vault_address[2:])
    if expires_after is not None:
        data += b"\x00" + expires_after.to_bytes(8, "big")
    return keccak(data)


_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_AGENT_TYPEHASH = keccak(b"Agent(string source,bytes32 connectionId)")
_EXCHANGE_DOMAIN = keccak(_DOMAIN_TYPEHASH + keccak(b"Exchange") + keccak(b"1") + (1337).to_bytes(32, "big") + bytes(32))


def hl_agent_digest(connection_id, mainnet=True):
    """The EIP-712 digest of the phantom agent {source, connectionId} that L1 actions are signed as."""
    source = b"a" if mainnet else b"b"
    return keccak(b"\x19\x01" + _EXCHANGE_DOMAIN + keccak(_AGENT_TYPEHASH + keccak(source) + connection_id))


def hl_sign_l1(action, nonce, key=REAL_HL_WALLET_KEY, vault_address=None, expires_after=None, mainnet=True):
    """A signature {"r", "s", "v"} over an L1 action as given, for tests that build /exchange bodies by hand."""
    signed = Account.unsafe_sign_hash(hl_agent_digest(hl_action_hash(action, nonce, vault_address, expires_after),
                                                      mainnet), key)
    return {"r": f"0x{signed.r:064x}", "s": f"0x{signed.s:064x}", "v": signed.v}


# ---------------------------------------------------------------------------------------------- canonical actions

class _Malformed(ValueError):
    """The body does not deserialize into the server's types (answered 422)."""


def _fields(obj, where, required, optional=()):
    if not isinstance(obj, dict):
        raise _Malformed(f"{where}: invalid type, expected a map")
    for key in obj:
        if key not in required and key not in optional:
            raise _Malformed(f"{where}: unknown field `{key}`")
    for key in required:
        if key not in obj:
            raise _Malformed(f"{where}: missing field `{key}`")
    return obj


def _int(value, where, signed=False):
    if not isinstance(value, int) or isinstance(value, bool) or not (
            -(1 << 63) <= value < (1 << 63) if signed else 0 <= value < (1 << 64)):
        raise _Malformed(f"{where}: invalid type, expected {'i64' if signed else 'u64'}")
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise _Malformed(f"{where}: invalid type, expected a boolean")
    return value


def _choice(value, where, choices):
    if value not in choices:
        raise _Malformed(f"{where}: unknown variant {value!r}, expected one of {', '.join(choices)}")
    return value


def _decimal(value, where):
    """A decimal string as the server re-serializes it: no trailing zeros, no exponent."""
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise _Malformed(f"{where}: invalid decimal string")
    return format(Decimal(value).normalize(_EXACT), "f")


def _hex(value, where, nbytes):
    if not isinstance(value, str) or len(value) != 2 + 2 * nbytes or value[:2] != "0x" or not set(value[2:]) <= _HEX:
        raise _Malformed(f"{where}: expected 0x and {nbytes} hex bytes")
    return value.lower()


def _order_type(t, where):
    if not isinstance(t, dict) or len(t) != 1:
        raise _Malformed(f"{where}: expected one of `limit`, `trigger`")
    if "limit" in t:
        limit = _fields(t["limit"], f"{where}.limit", ("tif",))
        return {"limit": {"tif": _choice(limit["tif"], f"{where}.limit.tif", ("Alo", "Ioc", "Gtc", "FrontendMarket"))}}
    if "trigger" in t:
        trig = _fields(t["trigger"], f"{where}.trigger", ("isMarket", "triggerPx", "tpsl"))
        return {"trigger": {"isMarket": _bool(trig["isMarket"], f"{where}.trigger.isMarket"),
                            "triggerPx": _decimal(trig["triggerPx"], f"{where}.trigger.triggerPx"),
                            "tpsl": _choice(trig["tpsl"], f"{where}.trigger.tpsl", ("tp", "sl"))}}
    raise _Malformed(f"{where}: unknown variant `{next(iter(t))}`, expected `limit` or `trigger`")


def _order_wire(o, where):
    _fields(o, where, ("a", "b", "p", "s", "r", "t"), ("c",))
    wire = {"a": _int(o["a"], f"{where}.a"), "b": _bool(o["b"], f"{where}.b"), "p": _decimal(o["p"], f"{where}.p"),
            "s": _decimal(o["s"], f"{where}.s"), "r": _bool(o["r"], f"{where}.r"), "t": _order_type(o["t"], f"{where}.t")}
    if o.get("c") is not None:
        wire["c"] = _hex(o["c"], f"{where}.c", 16)
    return wire


def _list(value, where):
    if not isinstance(value, list):
        raise _Malformed(f"{where}: invalid type, expected a sequence")
    return value


def _oid_or_cloid(value, where):
    return value.lower() if isinstance(value, str) and _hex(value, where, 16) else _int(value, where)


def _canon_order(a):
    _fields(a, "action", ("type", "orders", "grouping"), ("builder",))
    out = {"type": "order", "orders": [_order_wire(o, f"orders[{i}]") for i, o in enumerate(_list(a["orders"], "orders"))]}
    grouping = a["grouping"]
    if isinstance(grouping, dict):  # priority grouping {"p": n}
        out["grouping"] = {"p": _int(_fields(grouping, "grouping", ("p",))["p"], "grouping.p")}
    else:
        out["grouping"] = _choice(grouping, "grouping", ("na", "normalTpsl", "positionTpsl"))
    if a.get("builder") is not None:
        builder = _fields(a["builder"], "builder", ("b", "f"))
        out["builder"] = {"b": _hex(builder["b"], "builder.b", 20), "f": _int(builder["f"], "builder.f")}
    return out


def _cancel(c, where):
    _fields(c, where, ("a", "o"))
    return {"a": _int(c["a"], f"{where}.a"), "o": _int(c["o"], f"{where}.o")}


def _cancel_by_cloid(c, where):
    _fields(c, where, ("asset", "cloid"))
    return {"asset": _int(c["asset"], f"{where}.asset"), "cloid": _hex(c["cloid"], f"{where}.cloid", 16)}


def _canon_cancel(a):
    _fields(a, "action", ("type", "cancels"))
    return {"type": "cancel", "cancels": [_cancel(c, f"cancels[{i}]") for i, c in enumerate(_list(a["cancels"], "cancels"))]}


def _canon_cancel_by_cloid(a):
    _fields(a, "action", ("type", "cancels"))
    return {"type": "cancelByCloid",
            "cancels": [_cancel_by_cloid(c, f"cancels[{i}]") for i, c in enumerate(_list(a["cancels"], "cancels"))]}


def _modify(m, where):
    _fields(m, where, ("oid", "order"))
    return {"oid": _oid_or_cloid(m["oid"], f"{where}.oid"), "order": _order_wire(m["order"], f"{where}.order")}


def _canon_modify(a):
    _fields(a, "action", ("type", "oid", "order"))
    return {"type": "modify", **_modify({"oid": a["oid"], "order": a["order"]}, "action")}


def _canon_batch_modify(a):
    _fields(a, "action", ("type", "modifies"))
    return {"type": "batchModify", "modifies": [_modify(m, f"modifies[{i}]") for i, m in enumerate(_list(a["modifies"], "modifies"))]}


def _canon_update_leverage(a):
    _fields(a, "action", ("type", "asset", "isCross", "leverage"))
    return {"type": "updateLeverage", "asset": _int(a["asset"], "asset"), "isCross": _bool(a["isCross"], "isCross"),
            "leverage": _int(a["leverage"], "leverage")}


def _canon_update_isolated_margin(a):
    _fields(a, "action", ("type", "asset", "isBuy", "ntli"))
    return {"type": "updateIsolatedMargin", "asset": _int(a["asset"], "asset"), "isBuy": _bool(a["isBuy"], "isBuy"),
            "ntli": _int(a["ntli"], "ntli", signed=True)}


def _canon_schedule_cancel(a):
    _fields(a, "action", ("type",), ("time",))
    return {"type": "scheduleCancel", **({"time": _int(a["time"], "time")} if a.get("time") is not None else {})}


def _canon_noop(a):
    _fields(a, "action", ("type",))
    return {"type": "noop"}


# The L1 actions the fake models: their canonical form, as the server re-serializes its structs.
HL_CANONICAL = {"order": _canon_order, "cancel": _canon_cancel, "cancelByCloid": _canon_cancel_by_cloid,
                "modify": _canon_modify, "batchModify": _canon_batch_modify, "updateLeverage": _canon_update_leverage,
                "updateIsolatedMargin": _canon_update_isolated_margin, "scheduleCancel": _canon_schedule_cancel,
                "noop": _canon_noop}


def hl_canonical_action(action):
    """A modeled action as Hyperliquid hashes it (ValueError when it would not deserialize); others as given."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise _Malformed("action: missing field `type`")
    canon = HL_CANONICAL.get(action["type"])
    return canon(action) if canon else action


# ---------------------------------------------------------------------------------------------- the venue

def _num(value):
    """A number as Hyperliquid prints it: "1000.0", "0.001"."""
    text = format(Decimal(value).normalize(_EXACT), "f")
    return text if "." in text else text + ".0"


def _send_text(h, status, text):
    data = text.encode()
    h.send_response(status)
    h.send_header("Content-Type", "text/plain; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def hyperliquid(usdc="1000.0", mainnet=True):
    state = {"mainnet": mainnet, "usdc": usdc, "spot": {"USDC": "100.0", "PURR": "0.0"}, "prices": dict(HL_PRICES),
             "leverage": {}, "positions": {}, "agents": set(), "orders": {}, "taken": [], "fills": [], "nonces": {},
             "schedule_cancel": None, "oids": itertools.count(100001), "tids": itertools.count(1)}
    venue = None

    def ok(h, response):
        send_json(h, 200, {"status": "ok", "response": response})

    def err(h, message, verdict=None):
        if verdict:
            _mark(h, f"rejected: {verdict}")
        send_json(h, 200, {"status": "err", "response": message})

    def malformed(h, detail):
        _mark(h, "rejected: malformed")
        _send_text(h, 422, f"Failed to deserialize the JSON body into the target type: {detail}")

    # ------------------------------------------------------------------ /info

    def is_user(address):
        return isinstance(address, str) and address.lower() == REAL_HL_ADDRESS.lower()

    def meta():
        return {"universe": [{"szDecimals": sz, "name": name, "maxLeverage": lev, "marginTableId": lev}
                             for name, sz, lev in HL_PERPS],
                "marginTables": [[lev, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": lev}]}]
                                 for lev in sorted({lev for _, _, lev in HL_PERPS})],
                "collateralToken": 0}

    def spot_meta():
        return {"universe": [dict(p) for p in HL_SPOT_PAIRS], "tokens": [dict(t) for t in HL_SPOT_TOKENS]}

    def asset_ctx(coin):
        p = state["prices"][coin]
        return {"funding": "0.0000125", "openInterest": "1000.0", "prevDayPx": p, "dayNtlVlm": "100000000.0",
                "premium": "0.0", "oraclePx": p, "markPx": p, "midPx": p, "impactPxs": [p, p], "dayBaseVlm": "2000.0"}

    def spot_ctx(pair):
        p = state["prices"][pair["name"]]
        return {"prevDayPx": p, "dayNtlVlm": "100000.0", "markPx": p, "midPx": p, "circulatingSupply": "1000000000.0",
                "coin": pair["name"], "totalSupply": "1000000000.0", "dayBaseVlm": "500000.0"}

    def leverage_of(coin):
        return state["leverage"].get(coin, HL_DEFAULT_LEVERAGE)

    def clearinghouse(user):
        positions, ntl, margin = [], Decimal(0), Decimal(0)
        for name, _, max_lev in HL_PERPS if is_user(user) else []:
            szi = Decimal(state["positions"].get(name, "0"))
            if not szi and name not in state["leverage"]:
                continue  # listed only when held, or once its leverage was set
            lev = dict(leverage_of(name))
            value = abs(szi) * Decimal(state["prices"][name])
            used = value / lev["value"]
            ntl, margin = ntl + value, margin + used
            if lev["type"] == "isolated":
                lev.setdefault("rawUsd", "0.0")
            positions.append({"type": "oneWay", "position": {
                "coin": name, "szi": _num(szi), "leverage": lev, "entryPx": state["prices"][name] if szi else None,
                "positionValue": _num(value), "unrealizedPnl": "0.0", "returnOnEquity": "0.0", "liquidationPx": None,
                "marginUsed": _num(used), "maxLeverage": max_lev,
                "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"}}})
        account = Decimal(state["usdc"]) if is_user(user) else Decimal(0)
        summary = {"accountValue": _num(account), "totalNtlPos": _num(ntl), "totalRawUsd": _num(account),
                   "totalMarginUsed": _num(margin)}
        return {"marginSummary": summary, "crossMarginSummary": dict(summary), "crossMaintenanceMarginUsed": "0.0",
                "withdrawable": _num(max(account - margin, Decimal(0))), "assetPositions": positions, "time": now_ms()}

    def open_order(o):
        out = {"coin": o["coin"], "side": o["side"], "limitPx": o["px"], "sz": o["sz"], "oid": o["oid"],
               "timestamp": o["timestamp"], "origSz": o["origSz"]}
        if o["cloid"]:
            out["cloid"] = o["cloid"]
        return out

    def frontend_order(o):
        trigger, kind, condition = o["trigger"], "Limit", "N/A"
        if trigger:
            kind = ("Take Profit" if trigger["tpsl"] == "tp" else "Stop") + (" Market" if trigger["isMarket"] else " Limit")
            # A sell's take-profit and a buy's stop fire as the price rises.
            above = (trigger["tpsl"] == "tp") != o["isBuy"]
            condition = f"Price {'above' if above else 'below'} {trigger['triggerPx']}"
        return {**open_order(o), "isPositionTpsl": False, "isTrigger": bool(trigger), "orderType": kind,
                "reduceOnly": o["reduceOnly"], "tif": o["tif"], "triggerCondition": condition,
                "triggerPx": trigger["triggerPx"] if trigger else "0.0", "children": []}

    def user_orders(user, status="open"):
        if not is_user(user):
            return []
        return sorted((o for o in state["orders"].values() if o["status"] == status), key=lambda o: -o["oid"])

    def order_status(user, ref):
        if is_user(user):
            for o in state["orders"].values():
                if o["oid"] == ref or (isinstance(ref, str) and o["cloid"] == ref.lower()):
                    return {"status": "order", "order": {"order": frontend_order(o), "status": o["status"],
                                                         "statusTimestamp": o["statusTimestamp"]}}
        return {"status": "unknownOid"}

    def l2_book(coin):
        if coin not in state["prices"]:
            return None
        mid = Decimal(state["prices"][coin])
        bid, ask = mid * Decimal("0.9999"), mid * Decimal("1.0001")
        return {"coin": coin, "time": now_ms(),
                "levels": [[{"px": _num(bid), "sz": "10.0", "n": 1}], [{"px": _num(ask), "sz": "10.0", "n": 1}]]}

    def info(h, req):
        _mark(h, "public")
        kind = req.get("type") if isinstance(req, dict) else None
        needs_user = {"clearinghouseState", "spotClearinghouseState", "openOrders", "frontendOpenOrders", "userFills",
                      "orderStatus", "activeAssetData"}
        if kind in needs_user and not isinstance(req.get("user"), str):
            return _send_text(h, 422, "Failed to deserialize the JSON body into the target type: missing field `user`")
        user = req.get("user") if isinstance(req, dict) else None
        with venue.lock:
            if kind == "meta":
                return send_json(h, 200, meta() if req.get("dex") in (None, "") else None)
            if kind == "spotMeta":
                return send_json(h, 200, spot_meta())
            if kind == "metaAndAssetCtxs":
                return send_json(h, 200, [meta(), [asset_ctx(name) for name, _, _ in HL_PERPS]])
            if kind == "spotMetaAndAssetCtxs":
                return send_json(h, 200, [spot_meta(), [spot_ctx(p) for p in HL_SPOT_PAIRS]])
            if kind == "perpDexs":
                return send_json(h, 200, [None])
            if kind == "allMids":
                return send_json(h, 200, {coin: _num(px) for coin, px in state["prices"].items()})
            if kind == "clearinghouseState":
                return send_json(h, 200, clearinghouse(user))
            if kind == "spotClearinghouseState":
                tokens = {t["name"]: t["index"] for t in HL_SPOT_TOKENS}
                return send_json(h, 200, {"balances": [
                    {"coin": coin, "token": tokens[coin], "hold": "0.0", "total": _num(total), "entryNtl": "0.0"}
                    for coin, total in state["spot"].items()] if is_user(user) else []})
            if kind == "openOrders":
                return send_json(h, 200, [open_order(o) for o in user_orders(user)])
            if kind == "frontendOpenOrders":
                return send_json(h, 200, [frontend_order(o) for o in user_orders(user)])
            if kind == "userFills":
                return send_json(h, 200, list(reversed(state["fills"])) if is_user(user) else [])
            if kind == "orderStatus":
                return send_json(h, 200, order_status(user, req.get("oid")))
            if kind == "activeAssetData" and req.get("coin") in {name for name, _, _ in HL_PERPS}:
                coin = req["coin"]
                return send_json(h, 200, {"user": user, "coin": coin, "leverage": leverage_of(coin),
                                          "maxTradeSzs": ["1.0", "1.0"], "availableToTrade": ["1000.0", "1000.0"],
                                          "markPx": state["prices"][coin]})
            if kind == "l2Book":
                return send_json(h, 200, l2_book(req.get("coin")))
        _send_text(h, 422, "Failed to deserialize the JSON body into the target type")

    # ------------------------------------------------------------------ /exchange

    def check_nonce(signer, nonce):
        """None when the signer may use this nonce, else Hyperliquid's complaint."""
        now = now_ms()
        if not now - 2 * _DAY_MS < nonce < now + _DAY_MS:
            return f"Invalid nonce: {nonce} is not within (now - 2 days, now + 1 day)"
        used = state["nonces"].setdefault(signer, set())
        if nonce in used:
            return f"Invalid nonce: duplicate nonce {nonce}"
        if len(used) >= _NONCES_KEPT and nonce < min(used):
            return f"Invalid nonce: nonce {nonce} is lower than the lowest of the last {_NONCES_KEPT} nonces"
        return None

    def use_nonce(signer, nonce):
        used = state["nonces"][signer]
        used.add(nonce)
        if len(used) > _NONCES_KEPT:
            used.discard(min(used))

    def place(wire, batch_cloids):
        """Takes one order wire: its status entry, and whether the order was taken."""
        asset = wire["a"]
        if asset not in HL_ASSETS:
            return {"error": f"Invalid asset: {asset}"}, False
        coin = HL_ASSETS[asset][0]
        if Decimal(wire["p"]) <= 0:
            return {"error": f"Order has invalid price. asset={asset}"}, False
        if Decimal(wire["s"]) <= 0:
            return {"error": f"Order has zero size. asset={asset}"}, False
        cloid = wire.get("c")
        if cloid and (cloid in batch_cloids or any(o["cloid"] == cloid for o in state["orders"].values())):
            return {"error": f"Duplicate cloid: {cloid}. asset={asset}"}, False
        if wire["s"] == HL_REJECT_SIZE:
            return {"error": f"Insufficient margin to place order. asset={asset}"}, False
        batch_cloids.add(cloid)
        limit, trigger = wire["t"].get("limit"), wire["t"].get("trigger")
        tif = limit["tif"] if limit else None
        oid, ts = next(state["oids"]), now_ms()
        order = {"oid": oid, "asset": asset, "coin": coin, "isBuy": wire["b"], "side": "B" if wire["b"] else "A",
                 "px": wire["p"], "sz": wire["s"], "origSz": wire["s"], "tif": tif, "trigger": trigger,
                 "cloid": cloid, "reduceOnly": wire["r"], "status": "open", "timestamp": ts, "statusTimestamp": ts}
        state["orders"][oid] = order
        state["taken"].append(dict(wire))
        ids = {"oid": oid, **({"cloid": cloid} if cloid else {})}
        if tif in ("Ioc", "FrontendMarket"):
            fill(order)
            return {"filled": {"totalSz": wire["s"], "avgPx": wire["p"], **ids}}, True
        return {"resting": ids}, True

    def fill(order):
        """An IOC order fills whole at its own price."""
        before = Decimal(state["positions"].get(order["coin"], "0"))
        size = Decimal(order["sz"]) * (1 if order["isBuy"] else -1)
        if order["asset"] < 10000:
            state["positions"][order["coin"]] = _num(before + size)
        order.update(status="filled", sz="0.0", statusTimestamp=now_ms())
        state["fills"].append({
            "coin": order["coin"], "px": order["px"], "sz": order["origSz"], "side": order["side"], "time": now_ms(),
            "startPosition": _num(before), "dir": ("Open Long" if order["isBuy"] else "Open Short")
            if order["asset"] < 10000 else ("Buy" if order["isBuy"] else "Sell"),
            "closedPnl": "0.0", "hash": "0x" + keccak(str(order["oid"]).encode()).hex().removeprefix("0x"),
            "oid": order["oid"], "crossed": True, "fee": "0.0", "tid": next(state["tids"]), "feeToken": "USDC",
            **({"cloid": order["cloid"]} if order["cloid"] else {})})

    def find_open(ref, asset=None):
        for o in state["orders"].values():
            if o["status"] == "open" and (o["oid"] == ref or (isinstance(ref, str) and o["cloid"] == ref)) \
                    and asset in (None, o["asset"]):
                return o
        return None

    def modify(m):
        """Replaces an open order's price, size and type: its status entry, and whether it was taken."""
        target, wire = find_open(m["oid"]), m["order"]
        if target is None:
            return {"error": "Cannot modify canceled or filled order"}, False
        if wire["a"] != target["asset"]:
            return {"error": f"Invalid asset: {wire['a']}"}, False
        if Decimal(wire["p"]) <= 0 or Decimal(wire["s"]) <= 0:
            return {"error": f"Order has invalid {'price' if Decimal(wire['p']) <= 0 else 'size'}. asset={wire['a']}"}, False
        if wire["s"] == HL_REJECT_SIZE:
            return {"error": f"Insufficient margin to place order. asset={wire['a']}"}, False
        limit = wire["t"].get("limit")
        target.update(isBuy=wire["b"], side="B" if wire["b"] else "A", px=wire["p"], sz=wire["s"], origSz=wire["s"],
                      reduceOnly=wire["r"], tif=limit["tif"] if limit else None, trigger=wire["t"].get("trigger"),
                      statusTimestamp=now_ms())
        if wire.get("c"):
            target["cloid"] = wire["c"]
        state["taken"].append(dict(wire))
        ids = {"oid": target["oid"], **({"cloid": target["cloid"]} if target["cloid"] else {})}
        if target["tif"] in ("Ioc", "FrontendMarket"):
            fill(target)
            return {"filled": {"totalSz": wire["s"], "avgPx": wire["p"], **ids}}, True
        return {"resting": ids}, True

    def cancel(order, asset):
        if order is None:
            return {"error": f"Order was never placed, already canceled, or filled. asset={asset}"}
        order.update(status="canceled", statusTimestamp=now_ms())
        return "success"

    def perform(h, action):
        """Carries out a verified action (under the venue's lock) and answers it."""
        kind = action["type"]
        if kind == "order":
            statuses, cloids = [], set()
            for wire in action["orders"]:
                status, taken = place(wire, cloids)
                statuses.append(status)
                if taken:
                    h.record["accepted"] = True
            return ok(h, {"type": "order", "data": {"statuses": statuses}})
        if kind == "cancel":
            return ok(h, {"type": "cancel", "data": {"statuses": [
                cancel(find_open(c["o"], c["a"]), c["a"]) for c in action["cancels"]]}})
        if kind == "cancelByCloid":
            return ok(h, {"type": "cancel", "data": {"statuses": [
                cancel(find_open(c["cloid"], c["asset"]), c["asset"]) for c in action["cancels"]]}})
        if kind == "modify":
            status, taken = modify(action)
            if not taken:
                return err(h, status["error"])
            h.record["accepted"] = True
            return ok(h, {"type": "default"})
        if kind == "batchModify":
            statuses = []
            for m in action["modifies"]:
                status, taken = modify(m)
                statuses.append(status)
                if taken:
                    h.record["accepted"] = True
            return ok(h, {"type": "order", "data": {"statuses": statuses}})
        if kind == "updateLeverage":
            perp = HL_PERPS[action["asset"]] if action["asset"] < len(HL_PERPS) else None
            if perp is None:
                return err(h, f"Invalid asset: {action['asset']}")
            if not 1 <= action["leverage"] <= perp[2]:
                return err(h, f"Invalid leverage value: {action['leverage']} (max {perp[2]}x for {perp[0]})")
            state["leverage"][perp[0]] = {"type": "cross" if action["isCross"] else "isolated",
                                          "value": action["leverage"]}
            return ok(h, {"type": "default"})
        if kind == "scheduleCancel":
            state["schedule_cancel"] = action.get("time")
        return ok(h, {"type": "default"})  # updateIsolatedMargin, scheduleCancel, noop and actions not modeled

    def exchange(h, req):
        if not isinstance(req, dict):
            return malformed(h, "invalid type, expected a map")
        action, nonce, signature = req.get("action"), req.get("nonce"), req.get("signature")
        vault, expires = req.get("vaultAddress"), req.get("expiresAfter")
        h.record["action"] = action
        for name in ("action", "nonce", "signature"):
            if name not in req:
                return malformed(h, f"missing field `{name}`")
        if isinstance(action, dict) and (action.get("type") in HL_UNCHECKED_ACTIONS or "signatureChainId" in action):
            _mark(h, "unchecked")
            return ok(h, {"type": "default"})
        try:
            canonical = hl_canonical_action(action)
            nonce = _int(nonce, "nonce")
            if expires is not None:
                expires = _int(expires, "expiresAfter")
            if vault is not None:
                vault = _hex(vault, "vaultAddress", 20)
            _fields(signature, "signature", ("r", "s", "v"))
            r, s, v = (signature[k] for k in ("r", "s", "v"))
            if not all(isinstance(x, str) and x[:2] == "0x" and 2 < len(x) <= 66 and set(x[2:]) <= _HEX for x in (r, s)):
                raise _Malformed("signature: r and s must be 0x-hex 32-byte integers")
            v = _int(v, "signature.v")
            connection_id = hl_action_hash(canonical, nonce, vault, expires)
        except (_Malformed, ValueError, TypeError) as e:
            return malformed(h, str(e))
        try:
            signer = Account._recover_hash(hl_agent_digest(connection_id, state["mainnet"]),
                                           vrs=(v, int(r, 16), int(s, 16))).lower()
        except Exception:
            return err(h, "Invalid signature", "signature")
        h.record["signer"] = signer
        with venue.lock:
            if signer != REAL_HL_ADDRESS.lower() and signer not in {a.lower() for a in state["agents"]}:
                return err(h, f"User or API Wallet {signer} does not exist.", f"signer {signer}")
            if vault is not None:
                return err(h, f"Vault not registered: {vault}", "vault")
            complaint = check_nonce(signer, nonce)
            if complaint:
                return err(h, complaint, "nonce")
            if expires is not None and expires < now_ms():
                return err(h, f"Action expired: expiresAfter {expires} is in the past", "expired")
            use_nonce(signer, nonce)
            _mark(h, "ok")
            return perform(h, canonical)

    def handle(h, body):
        path = urlsplit(h.path).path
        if path not in ("/info", "/exchange"):
            _mark(h, "rejected: no such path")
            return _send_text(h, 404, "")
        if h.command != "POST":
            _mark(h, "rejected: method")
            return _send_text(h, 405, "")
        mime = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if mime != "application/json" and not mime.endswith("+json"):
            _mark(h, "rejected: content type")
            return _send_text(h, 415, "Expected request with `Content-Type: application/json`")
        try:
            req = json.loads(body)
        except ValueError as e:
            _mark(h, "rejected: malformed")
            return _send_text(h, 400, f"Failed to parse the request body as JSON: {e}")
        return info(h, req) if path == "/info" else exchange(h, req)

    venue = Venue(handle, state)
    return venue
