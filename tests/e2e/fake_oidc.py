"""A local OpenID Connect provider on 127.0.0.1: discovery, an authorization endpoint that signs the next
person in at once, a token endpoint that checks the client secret, the redirect URI and the PKCE verifier
exactly as a real provider does, and a JWKS whose keys can be rotated. Tests can make it misbehave (another
audience, algorithm, issuer or nonce) to check that Warden refuses."""
import base64
import hashlib
import json
import secrets
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import fakes


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n):
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Provider:
    def __init__(self, client_id, client_secret):
        self.client_id, self.client_secret = client_id, client_secret
        self.person = {"sub": "subject-1", "email": "person@example.com", "email_verified": True}
        self.tamper = {}          # claims to override in the next ID tokens
        self.header_alg = "RS256"  # the alg the next ID tokens name
        self.codes = {}
        self.extra_keys = []      # published beside the signing keys (encryption keys, other kinds)
        self.keys = []
        self.rotate()
        self.fake = fakes.Fake(self.handle)
        self.url = self.fake.url

    def rotate(self):
        """A new signing key; the JWKS publishes only it from now on."""
        self.keys = [(f"k{len(self.keys) + 1}-{secrets.token_hex(4)}", rsa.generate_private_key(public_exponent=65537, key_size=2048))]

    def jwks(self):
        return {"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                          "n": uint(key.public_key().public_numbers().n), "e": uint(key.public_key().public_numbers().e)}
                         for kid, key in self.keys] + self.extra_keys}

    def id_token(self, nonce):
        kid, key = self.keys[0]
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300, "nonce": nonce, **self.person}
        claims.update(self.tamper)
        header = {"alg": self.header_alg, "kid": kid, "typ": "JWT"}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
        if self.header_alg == "none":
            return signing_input.decode() + "."
        if self.header_alg == "HS256":
            import hmac
            # The classic confusion: the public key's bytes as an HMAC secret.
            secret = json.dumps(self.jwks()["keys"][0]).encode()
            return signing_input.decode() + "." + b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)

    def handle(self, h, body):
        parsed = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if parsed.path == "/.well-known/openid-configuration":
            return fakes.send_json(h, 200, {"issuer": self.url, "authorization_endpoint": self.url + "/authorize",
                                            "token_endpoint": self.url + "/token", "jwks_uri": self.url + "/jwks"})
        if parsed.path == "/jwks":
            return fakes.send_json(h, 200, self.jwks())
        if parsed.path == "/authorize":
            if (query.get("client_id") != self.client_id or query.get("response_type") != "code"
                    or query.get("code_challenge_method") != "S256" or "openid" not in query.get("scope", "").split()):
                return fakes.send_json(h, 400, {"error": "invalid_request"})
            code = secrets.token_urlsafe(16)
            self.codes[code] = query
            location = query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})
            h.send_response(302)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if parsed.path == "/token":
            form = dict(urllib.parse.parse_qsl(body.decode()))
            expected = "Basic " + base64.b64encode(
                f"{urllib.parse.quote(self.client_id, safe='')}:{urllib.parse.quote(self.client_secret, safe='')}".encode()).decode()
            if h.headers.get("Authorization") != expected:
                return fakes.send_json(h, 401, {"error": "invalid_client"})
            asked = self.codes.pop(form.get("code"), None)
            verifier = form.get("code_verifier", "")
            if (asked is None or form.get("grant_type") != "authorization_code"
                    or form.get("redirect_uri") != asked["redirect_uri"]
                    or b64url(hashlib.sha256(verifier.encode()).digest()) != asked["code_challenge"]):
                return fakes.send_json(h, 400, {"error": "invalid_grant"})
            return fakes.send_json(h, 200, {"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer",
                                            "id_token": self.id_token(asked["nonce"])})
        return fakes.send_json(h, 404, {"error": "not_found"})

    def stop(self):
        self.fake.stop()
