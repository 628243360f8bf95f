#!/usr/bin/env python3
"""Keccak-256, EIP-712 and secp256k1 test vectors for Warden's Polymarket signing (issue 9).

Every value is computed three ways, and the script stops unless all agree:
  1. by hand: eth-hash's Keccak-256 over eth-abi encodings, exactly as EIP-712 spells it out;
  2. eth-account's own EIP-712 encoder (`encode_typed_data`) and signer;
  3. what py-clob-client 0.34.6 itself does (py_order_utils' OrderBuilder for orders, and
     py_clob_client.signing.eip712.sign_clob_auth_message for the level-1 ClobAuth message).

Prints the vectors as JSON and writes them to /tmp/eip712-vectors.json (or the path given as argv[1]).
Signatures are 65 bytes r || s || v with v = 27/28, as 0x-hex. eth-account (like libsecp256k1) uses
RFC 6979 deterministic nonces and low-S, so another implementation must reproduce them byte for byte.

    python3 tests/vectors/eip712_vectors.py [out.json]
"""

import json
import sys

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_hash.auto import keccak as eth_hash_keccak
from eth_utils import keccak as eth_utils_keccak, to_checksum_address

PRIVATE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
CHAIN_ID = 137
EXCHANGE = "0x4bFb41d5B3570DeFd03C39a9A4D8dE6Bd8B8982E"
NEG_RISK_EXCHANGE = "0xC5d563A36AE78145C45a50134d48A1215220f80a"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
CLOB_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId)"
ORDER_TYPE = (
    "Order(uint256 salt,address maker,address signer,address taker,uint256 tokenId,"
    "uint256 makerAmount,uint256 takerAmount,uint256 expiration,uint256 nonce,"
    "uint256 feeRateBps,uint8 side,uint8 signatureType)"
)
CLOB_AUTH_TYPE = "ClobAuth(address address,string timestamp,uint256 nonce,string message)"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

ORDER_FIELDS = [
    ("salt", "uint256"), ("maker", "address"), ("signer", "address"), ("taker", "address"),
    ("tokenId", "uint256"), ("makerAmount", "uint256"), ("takerAmount", "uint256"),
    ("expiration", "uint256"), ("nonce", "uint256"), ("feeRateBps", "uint256"),
    ("side", "uint8"), ("signatureType", "uint8"),
]
CLOB_AUTH_FIELDS = [("address", "address"), ("timestamp", "string"), ("nonce", "uint256"), ("message", "string")]


def h(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def k(data: bytes) -> bytes:
    a = eth_hash_keccak(data)
    b = eth_utils_keccak(data)
    assert a == b, "eth-hash and eth-utils disagree"
    return a


# ---- 1. by hand ------------------------------------------------------------------------------------

def manual_domain_separator(name, version, chain_id, verifying_contract=None):
    if verifying_contract is None:
        return k(k(CLOB_DOMAIN_TYPE.encode()) + abi_encode(
            ["bytes32", "bytes32", "uint256"], [k(name.encode()), k(version.encode()), chain_id]))
    return k(k(DOMAIN_TYPE.encode()) + abi_encode(
        ["bytes32", "bytes32", "uint256", "address"],
        [k(name.encode()), k(version.encode()), chain_id, verifying_contract]))


def manual_struct_hash(type_string, fields, values):
    types, vals = ["bytes32"], [k(type_string.encode())]
    for name, typ in fields:
        v = values[name]
        if typ == "string":
            types.append("bytes32")
            vals.append(k(v.encode()))
        else:
            types.append(typ)
            vals.append(v)
    return k(abi_encode(types, vals))


def manual_digest(domain_separator, struct_hash):
    return k(b"\x19\x01" + domain_separator + struct_hash)


# ---- 2. eth-account --------------------------------------------------------------------------------

def eth_account_parts(domain, primary, fields, message):
    domain_fields = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                     {"name": "chainId", "type": "uint256"}]
    if "verifyingContract" in domain:
        domain_fields.append({"name": "verifyingContract", "type": "address"})
    full = {
        "types": {"EIP712Domain": domain_fields, primary: [{"name": n, "type": t} for n, t in fields]},
        "primaryType": primary,
        "domain": domain,
        "message": message,
    }
    signable = encode_typed_data(full_message=full)
    digest = bytes(_hash_eip191_message(signable))
    signed = Account.sign_message(signable, PRIVATE_KEY)
    return bytes(signable.header), bytes(signable.body), digest, bytes(signed.signature)


def sign_digest(digest: bytes) -> bytes:
    signed = Account.unsafe_sign_hash(digest, PRIVATE_KEY)
    sig = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    assert sig == bytes(signed.signature)
    assert signed.v in (27, 28)
    # low-S, as libsecp256k1 produces
    assert signed.s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
    assert Account._recover_hash(digest, signature=sig) == ADDRESS
    return sig


# ---- vectors ---------------------------------------------------------------------------------------

ADDRESS = Account.from_key(PRIVATE_KEY).address


def main():
    out = {"private_key": PRIVATE_KEY, "address": ADDRESS, "chain_id": CHAIN_ID}

    # Keccak-256 (the original padding 0x01, not SHA3-256's 0x06).
    keccak_inputs = [
        ("empty", b""),
        ("abc", b"abc"),
        ("quick_brown_fox", b"The quick brown fox jumps over the lazy dog"),
        ("range_200", bytes(range(200))),
        ("range_135", bytes(range(135))),   # rate - 1: padding 0x01 and 0x80 in one byte
        ("range_136", bytes(range(136))),   # exactly one block: a whole padding block follows
    ]
    out["keccak256"] = [{"name": n, "input_hex": h(b), "input_len": len(b), "hash": h(k(b))} for n, b in keccak_inputs]
    # The published values (Keccak team / Ethereum): never let them drift.
    known = {
        "empty": "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
        "abc": "0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
        "quick_brown_fox": "0x4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15",
    }
    for v in out["keccak256"]:
        if v["name"] in known:
            assert v["hash"] == known[v["name"]], v
    import hashlib
    assert hashlib.sha3_256(b"").hexdigest() != known["empty"][2:]  # SHA3-256 differs
    out["sha3_256_empty_for_contrast"] = "0x" + hashlib.sha3_256(b"").hexdigest()

    # Address (EIP-55 checksummed) and the public key.
    acct = Account.from_key(PRIVATE_KEY)
    from eth_keys import keys
    pub = keys.PrivateKey(bytes.fromhex(PRIVATE_KEY[2:])).public_key
    assert to_checksum_address(h(k(pub.to_bytes())[-20:])) == ADDRESS == acct.address
    out["public_key_uncompressed_xy"] = h(pub.to_bytes())
    out["address_lower"] = ADDRESS.lower()

    out["type_hashes"] = {
        "EIP712Domain": {"type": DOMAIN_TYPE, "hash": h(k(DOMAIN_TYPE.encode()))},
        "EIP712Domain_no_contract": {"type": CLOB_DOMAIN_TYPE, "hash": h(k(CLOB_DOMAIN_TYPE.encode()))},
        "Order": {"type": ORDER_TYPE, "hash": h(k(ORDER_TYPE.encode()))},
        "ClobAuth": {"type": CLOB_AUTH_TYPE, "hash": h(k(CLOB_AUTH_TYPE.encode()))},
    }

    # Domain separators.
    domains = {}
    for label, contract in (("exchange", EXCHANGE), ("neg_risk_exchange", NEG_RISK_EXCHANGE)):
        ds = manual_domain_separator("Polymarket CTF Exchange", "1", CHAIN_ID, contract)
        domains[label] = {"name": "Polymarket CTF Exchange", "version": "1", "chainId": CHAIN_ID,
                          "verifyingContract": contract, "separator": h(ds)}
    clob_ds = manual_domain_separator("ClobAuthDomain", "1", CHAIN_ID)
    domains["clob_auth"] = {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID, "separator": h(clob_ds)}
    out["domains"] = domains

    # Orders: the brief's BUY, the same order on the neg-risk exchange, and a SELL.
    base_order = {
        "salt": 479249096354, "maker": ADDRESS, "signer": ADDRESS, "taker": ZERO_ADDRESS,
        "tokenId": 71321045679252212594626385532706912750332728571942532289631379312455583992563,
        "makerAmount": 5000000, "takerAmount": 10000000, "expiration": 0, "nonce": 0,
        "feeRateBps": 0, "side": 0, "signatureType": 0,
    }
    sell_order = dict(base_order, salt=1234567, makerAmount=10000000, takerAmount=6000000, side=1,
                      expiration=1893456000, nonce=3, feeRateBps=100)
    orders = []
    for label, order, contract in (("buy", base_order, EXCHANGE),
                                   ("buy_neg_risk", base_order, NEG_RISK_EXCHANGE),
                                   ("sell", sell_order, EXCHANGE)):
        ds = manual_domain_separator("Polymarket CTF Exchange", "1", CHAIN_ID, contract)
        sh = manual_struct_hash(ORDER_TYPE, ORDER_FIELDS, order)
        dg = manual_digest(ds, sh)
        sig = sign_digest(dg)
        e_ds, e_sh, e_dg, e_sig = eth_account_parts(
            {"name": "Polymarket CTF Exchange", "version": "1", "chainId": CHAIN_ID, "verifyingContract": contract},
            "Order", ORDER_FIELDS, order)
        assert (e_ds, e_sh, e_dg, e_sig) == (ds, sh, dg, sig), label
        sdk_dg, sdk_sig = sdk_order(order, contract)
        assert sdk_dg == dg and sdk_sig == sig, (label, h(sdk_dg), h(dg))
        orders.append({
            "label": label, "verifyingContract": contract,
            "order": {kk: (str(v) if isinstance(v, int) else v) for kk, v in order.items()},
            "struct_hash": h(sh), "digest": h(dg), "signature": h(sig),
            "r": h(sig[:32]), "s": h(sig[32:64]), "v": sig[64],
        })
    out["orders"] = orders

    # ClobAuth (level 1).
    auth = {"address": ADDRESS, "timestamp": "1700000000", "nonce": 0, "message": CLOB_AUTH_MESSAGE}
    auth_vectors = []
    for a in (auth, dict(auth, nonce=7)):
        sh = manual_struct_hash(CLOB_AUTH_TYPE, CLOB_AUTH_FIELDS, a)
        dg = manual_digest(clob_ds, sh)
        sig = sign_digest(dg)
        e_ds, e_sh, e_dg, e_sig = eth_account_parts(
            {"name": "ClobAuthDomain", "version": "1", "chainId": CHAIN_ID}, "ClobAuth", CLOB_AUTH_FIELDS, a)
        assert (e_ds, e_sh, e_dg, e_sig) == (clob_ds, sh, dg, sig)
        sdk_sig = sdk_clob_auth(int(a["timestamp"]), a["nonce"])
        assert sdk_sig == sig, (h(sdk_sig), h(sig))
        auth_vectors.append({
            "message": {"address": a["address"], "timestamp": a["timestamp"], "nonce": str(a["nonce"]),
                        "message": a["message"]},
            "domain_separator": h(clob_ds), "struct_hash": h(sh), "digest": h(dg), "signature": h(sig),
            "r": h(sig[:32]), "s": h(sig[32:64]), "v": sig[64],
        })
    out["clob_auth"] = auth_vectors
    out["checked_against"] = sdk_versions()
    return out


# ---- 3. py-clob-client / py-order-utils (the real SDK) ----------------------------------------------

def sdk_order(order, contract):
    from py_order_utils.builders import OrderBuilder
    from py_order_utils.model import OrderData
    from py_order_utils.signer import Signer

    builder = OrderBuilder(contract, CHAIN_ID, Signer(PRIVATE_KEY), salt_generator=lambda: order["salt"])
    built = builder.build_order(OrderData(
        maker=order["maker"], signer=order["signer"], taker=order["taker"], tokenId=str(order["tokenId"]),
        makerAmount=str(order["makerAmount"]), takerAmount=str(order["takerAmount"]), side=order["side"],
        feeRateBps=str(order["feeRateBps"]), nonce=str(order["nonce"]), expiration=str(order["expiration"]),
        signatureType=order["signatureType"]))
    digest = bytes.fromhex(builder._create_struct_hash(built)[2:])  # the SDK calls the digest "struct hash"
    sig = bytes.fromhex(builder.build_order_signature(built)[2:])
    return digest, sig


def sdk_clob_auth(timestamp, nonce):
    from py_clob_client.signer import Signer
    from py_clob_client.signing.eip712 import sign_clob_auth_message

    return bytes.fromhex(sign_clob_auth_message(Signer(PRIVATE_KEY, CHAIN_ID), timestamp, nonce)[2:])


def sdk_versions():
    from importlib.metadata import version
    names = ["eth-account", "eth-hash", "eth-utils", "eth-abi", "py_clob_client", "py_order_utils",
             "poly_eip712_structs"]
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except Exception:
            out[n] = None
    return out


if __name__ == "__main__":
    vectors = main()
    text = json.dumps(vectors, indent=2)
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/eip712-vectors.json"
    with open(path, "w") as f:
        f.write(text + "\n")
    print(text)
