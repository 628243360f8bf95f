"""Single sign-on against a local OpenID Connect provider with the real binary: a person signs in with the
provider and lands in the dashboard; the ID token's signature, algorithm, audience, issuer and nonce are
checked; the provider's key rotation is followed; a subject is bound to one user; accounts are made only
when auto_create says so; the client secret is sealed, never in the store in plain text."""
import re
import time

import requests

from conftest import warden
from fake_oidc import Provider

CLIENT_ID, CLIENT_SECRET = "warden-dashboard", "oidc-client-secret-PLANTED-0005"


def setup(tmp_path, master_key, start, auto_create=False):
    provider = Provider(CLIENT_ID, CLIENT_SECRET)
    config = tmp_path / "warden.toml"
    config.write_text(f'[oidc]\nissuer = "{provider.url}"\nclient_id = "{CLIENT_ID}"\nname = "Example ID"\n'
                      f'auto_create = {"true" if auto_create else "false"}\n')
    env = {"WARDEN_MASTER_KEY": master_key}
    data = ["--data-dir", str(tmp_path / "data"), "--config", str(config)]
    assert warden("user", "create", "person@example.com", "person-password-1", "--no-reset", *data, env=env).returncode == 0
    assert warden("user", "create", "other@example.com", "other-password-1", "--no-reset", *data, env=env).returncode == 0
    sealed = warden("oidc", "set-secret", *data, env=env, input=CLIENT_SECRET + "\n")
    assert sealed.returncode == 0, sealed.stderr
    server = start(env, args=("--config", str(config)))
    return provider, server


def sign_in(server):
    """A browser's sign-in: /oidc/start → the provider → /oidc/callback; returns (browser, last answer)."""
    browser = requests.Session()
    answer = browser.get(server.url + "/oidc/start", timeout=30)
    return browser, answer


def signed_in_as(browser, server):
    page = browser.get(server.url + "/activity", allow_redirects=False)
    return page.status_code == 200 and re.search(r"[\w.]+@example\.com", page.text) and page.text


def test_a_person_signs_in_with_the_provider(start, tmp_path, master_key):
    provider, server = setup(tmp_path, master_key, start)
    try:
        login = requests.get(server.url + "/login")
        assert "Sign in with Example ID" in login.text and 'href="/oidc/start"' in login.text
        browser, answer = sign_in(server)
        assert answer.status_code == 200 and "You are signed in" in answer.text, answer.text[:400]
        assert answer.headers["Refresh"] == "0; url=/activity"
        assert "person@example.com" in signed_in_as(browser, server)
        # The callback's cookies: the session Strict, the sign-in's own state cleared.
        cookies = answer.raw.headers.getlist("Set-Cookie") if hasattr(answer.raw.headers, "getlist") else []
        assert any(c.startswith("warden_session=") and "SameSite=Strict" in c for c in cookies), cookies

        # The provider rotates its key: the next sign-in's token, under a key Warden has not seen, still verifies.
        time.sleep(1.1)  # Warden reads the keys again at most once a second
        provider.rotate()
        browser2, again = sign_in(server)
        assert again.status_code == 200 and signed_in_as(browser2, server)

        # Keys of kinds Warden does not use beside the signing key (an encryption key, a symmetric one, another
        # curve) are skipped, not a reason to refuse every sign-in.
        time.sleep(1.1)
        provider.extra_keys = [
            {"kty": "RSA", "kid": "enc-1", "use": "enc", "alg": "RSA-OAEP-256", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "kid": "hmac-1", "k": "c2VjcmV0"},
            {"kty": "OKP", "kid": "x-1", "crv": "X25519", "x": "AAAA"},
        ]
        provider.rotate()
        browser_mixed, mixed = sign_in(server)
        assert mixed.status_code == 200 and signed_in_as(browser_mixed, server), mixed.text[:300]
        provider.extra_keys = []

        # The subject is bound: the provider changing the person's email still signs the same user in...
        provider.person = {"sub": "subject-1", "email": "renamed@example.com", "email_verified": True}
        browser3, renamed = sign_in(server)
        assert renamed.status_code == 200 and "person@example.com" in signed_in_as(browser3, server)
        # ...and another subject claiming that user's email is refused.
        provider.person = {"sub": "subject-2", "email": "person@example.com", "email_verified": True}
        _, hijack = sign_in(server)
        assert hijack.status_code == 403 and "bound to another identity" in hijack.text
        # An unverified email binds nothing; no account is made without auto_create.
        provider.person = {"sub": "subject-3", "email": "other@example.com", "email_verified": False}
        _, unverified = sign_in(server)
        assert unverified.status_code == 403 and "verified email" in unverified.text
        # A look-alike address (a Kelvin sign folds to k) does not reach the account it folds to.
        provider.person = {"sub": "subject-5", "email": "\u212aother@example.com", "email_verified": True}
        _, lookalike = sign_in(server)
        assert lookalike.status_code == 403 and "plain ASCII" in lookalike.text
        provider.person = {"sub": "subject-4", "email": "stranger@example.com", "email_verified": True}
        _, stranger = sign_in(server)
        assert stranger.status_code == 403 and "no Warden account" in stranger.text

        # The client secret is sealed: not in the store or the log as given.
        server.stop()
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").iterdir() if p.is_file())
        assert CLIENT_SECRET.encode() not in stored and CLIENT_SECRET not in server.output()
    finally:
        provider.stop()


def test_tokens_the_provider_did_not_make_for_this_sign_in_are_refused(start, tmp_path, master_key):
    provider, server = setup(tmp_path, master_key, start)
    try:
        cases = [
            ({"aud": "another-client"}, "RS256", "did not verify"),
            ({"iss": "https://evil.example.com"}, "RS256", "another issuer"),
            ({"nonce": "replayed-nonce"}, "RS256", "nonce"),
            ({"exp": 1_000_000_000}, "RS256", "did not verify"),
            ({}, "HS256", "signed with HS256"),
            ({}, "none", "signed with none"),
        ]
        for tamper, alg, said in cases:
            provider.tamper, provider.header_alg = tamper, alg
            browser, answer = sign_in(server)
            assert answer.status_code == 403 and said in answer.text, (tamper, alg, answer.text[:300])
            assert not signed_in_as(browser, server), (tamper, alg)
        # A key the provider does not publish: a token signed by it is refused.
        provider.tamper, provider.header_alg = {}, "RS256"
        published = provider.keys
        time.sleep(1.1)
        provider.rotate()
        signing, provider.keys = provider.keys, published
        real_id_token = provider.id_token
        provider.id_token = lambda nonce: (setattr(provider, "keys", signing), real_id_token(nonce), setattr(provider, "keys", published))[1]
        _, forged = sign_in(server)
        assert forged.status_code == 403 and "did not verify" in forged.text, forged.text[:300]
        provider.id_token = real_id_token
        # A callback whose state is not this browser's is refused before any code is redeemed.
        browser = requests.Session()
        start_answer = browser.get(server.url + "/oidc/start", allow_redirects=False)
        authorize = start_answer.headers["Location"]
        code_url = requests.get(authorize, allow_redirects=False).headers["Location"]
        swapped = re.sub(r"state=[^&]+", "state=forged", code_url)
        refused = browser.get(swapped)
        assert refused.status_code == 403 and "did not start here" in refused.text
        # Nothing above signed anyone in, and every refusal left the store as it was: the person still can.
        _, fine = sign_in(server)
        assert fine.status_code == 200
    finally:
        provider.stop()


def test_auto_create_makes_an_account_that_is_never_an_administrator(start, tmp_path, master_key):
    provider, server = setup(tmp_path, master_key, start, auto_create=True)
    try:
        provider.person = {"sub": "new-subject", "email": "Newcomer@Example.com", "email_verified": True}
        browser, answer = sign_in(server)
        assert answer.status_code == 200
        assert "newcomer@example.com" in signed_in_as(browser, server)
        me = requests.get(server.url + "/api/v1/me",
                          headers={"Authorization": "Bearer " + browser.cookies["warden_session"]}).json()
        assert me["email"] == "newcomer@example.com" and me["is_admin"] is False, me
        # The next sign-in finds the same account by its subject.
        browser2, again = sign_in(server)
        assert again.status_code == 200 and "newcomer@example.com" in signed_in_as(browser2, server)
    finally:
        provider.stop()
