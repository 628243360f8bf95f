"""The web dashboard in a real browser: headless Chromium from Debian's `chromium` package, driven by
Playwright for Python through that executable (Playwright's own browsers are never downloaded).

Every page visited is screenshotted into the test's tmp folder (`…/screenshots/`, printed at the end of
the journey); with WARDEN_SCREENSHOTS_DIR set (e.g. `docs/screenshots`), the main ones are also copied
there under stable names. WARDEN_TEST_CHROMIUM overrides the browser executable.
"""
import os
import pathlib
import re
import shutil
import time

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

import fake_exchanges as fx
from conftest import ROOT, warden

CHROMIUM = os.environ.get("WARDEN_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 812}
# Screenshot name in the test folder -> stable name under WARDEN_SCREENSHOTS_DIR.
DOCS = {"login": "login.png", "credentials": "credentials.png", "key-created": "key-created.png",
        "keys-375": "keys-mobile.png", "settings-error": "settings.png", "activity": "activity.png",
        "users": "users.png"}

API_KEY = "PLANTED-dash-api-key-4c1e"
API_SECRET = "PLANTED-dash-api-secret-9b7d"
XSS_LABEL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
XSS_ATTR_LABEL = "\"'><svg onload=\"window.__xss=3;alert(1)\">"
# Plain words (letters only) that the layout splits across lines, e.g. a squeezed table column setting
# "Revoke" as "Rev/oke": the page is not readable at that width. Keys, emails and dates may wrap.
BROKEN_WORDS = """() => {
    const broken = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || parent.closest('script, style, pre, code') || !parent.checkVisibility()) continue;
        for (const match of node.data.matchAll(/[A-Za-z]{3,}/g)) {
            const before = match.index === 0 ? '' : node.data[match.index - 1];
            const after = node.data[match.index + match[0].length] || '';
            if (/[\\w@.\\-]/.test(before) || /[\\w@.\\-]/.test(after)) continue;  // part of a longer token
            const range = document.createRange();
            range.setStart(node, match.index);
            range.setEnd(node, match.index + match[0].length);
            const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
            if (lines.size > 1) broken.push(match[0]);
        }
    }
    return [...new Set(broken)];
}"""

# ---------------------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/bootstrap installs Debian's `chromium` package")
    with sync_playwright() as playwright:
        # --no-sandbox: the tests run as root in CI; --disable-dev-shm-usage: containers have a small /dev/shm.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


class Dash:
    """A running `warden serve` with its data directory and master key, and the CLI beside it."""

    def __init__(self, server, data, key):
        self.server, self.data, self.key, self.url = server, data, key, server.url

    def cli(self, *args):
        return warden(*args, "--data-dir", str(self.data), env={"WARDEN_MASTER_KEY": self.key})

    def user(self, email, password=None, admin=False):
        """Creates a user; with no password one is generated (and must be changed at first login)."""
        args = ["user", "create", email] + ([password, "--no-reset"] if password else []) + (["--admin"] if admin else [])
        created = self.cli(*args)
        assert created.returncode == 0, created.stderr
        return password or re.search(r"password: (\S+)", created.stdout).group(1)


@pytest.fixture
def dash(start, tmp_path, master_key):
    """Warden with the exchanges pointed at local fakes (the go-live checks call the venue): nothing leaves the machine."""
    fakes = {"binance": fx.binance(), "kalshi": fx.kalshi(), "polymarket": fx.polymarket()}
    config = tmp_path / "warden.toml"
    config.write_text("".join(f'[venues.{venue}]\nbase_url = "{fake.url}"\n\n' for venue, fake in fakes.items()))
    yield Dash(start({"WARDEN_MASTER_KEY": master_key}, args=("--config", str(config))), tmp_path / "data", master_key)
    for fake in fakes.values():
        fake.stop()


class Tab:
    """A browser page on the dashboard that records what it received: every HTML document (raw body
    and headers), every request URL, every dialog."""

    def __init__(self, context, url, shots):
        self.context, self.url, self.shots = context, url, shots
        self.page = context.new_page()
        self.page.set_default_timeout(10_000)
        self.documents = []  # dicts: method, url, status, headers, body (None for redirects)
        self.request_urls = []
        self.dialogs = []
        self.page.on("response", self._response)
        self.page.on("request", lambda request: self.request_urls.append(request.url))
        self.page.on("dialog", self._dialog)

    def _response(self, response):
        if response.request.resource_type != "document":
            return
        try:
            body = response.text()
        except Exception:  # a redirect has no body
            body = None
        self.documents.append({"method": response.request.method, "url": response.url, "status": response.status,
                               "headers": response.all_headers(), "body": body})

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, path):
        response = self.page.goto(path)
        assert response is not None and response.status < 400, f"GET {path}: {response and response.status}"
        return response.text()

    def submit(self, button):
        """Clicks a submit button and waits for the page that answers (after any redirect)."""
        with self.page.expect_navigation() as navigation:
            button.click()
        return navigation.value

    def button(self, name):
        return self.page.get_by_role("button", name=name, exact=True)

    def field(self, label):
        return self.page.get_by_label(label, exact=True)

    def nav(self, link, path):
        with self.page.expect_navigation():
            self.page.get_by_role("link", name=link, exact=True).click()
        expect(self.page).to_have_url(self.url + path)

    def open_details(self):
        """Opens every <details>, so forms folded into one are usable (a no-op when there are none)."""
        self.page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")

    def http(self):
        """A `requests` session carrying this browser's cookies (the HttpOnly session cookie included)."""
        session = requests.Session()
        for cookie in self.context.cookies():
            session.cookies.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
        return session

    def shot(self, name, narrow=False):
        self.shots.take(self.page, name, narrow)

    def check_page(self, name=None, narrow=False):
        """Every field has a label; a screenshot when named."""
        unlabelled = self.page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => !['hidden', 'submit', 'button'].includes(e.type))
            .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
            .map(e => e.outerHTML)""")
        assert unlabelled == [], f"fields without a label on {self.page.url}: {unlabelled}"
        if name:
            self.shot(name, narrow)


class Shots:
    def __init__(self, folder):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        docs = os.environ.get("WARDEN_SCREENSHOTS_DIR")
        self.docs = None if not docs else (pathlib.Path(docs) if os.path.isabs(docs) else ROOT / docs)
        self.taken = []
        self.unreadable = []  # pages not readable at 375 px

    def take(self, page, name, narrow=False):
        self._save(page, name)
        if narrow:
            page.set_viewport_size(NARROW)
            try:
                # Collected, not asserted here, so that one run reports every page that is not readable.
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > NARROW["width"]:
                    self.unreadable.append(f"{name}: {width}px wide at {NARROW['width']}px, it scrolls sideways")
                broken = page.evaluate(BROKEN_WORDS)
                if broken:
                    self.unreadable.append(f"{name}: at {NARROW['width']}px words break across lines: {broken}")
                self._save(page, name + "-375")
            finally:
                page.set_viewport_size(WIDE)

    def _save(self, page, name):
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(name)
        if self.docs and name in DOCS:
            self.docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.docs / DOCS[name])


@pytest.fixture
def open_tab(browser, tmp_path):
    contexts = []
    shots = Shots(tmp_path / "screenshots")

    def _open(url):
        context = browser.new_context(base_url=url, viewport=WIDE)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        contexts.append(context)
        return Tab(context, url, shots)

    yield _open
    for i, context in enumerate(contexts):
        for j, page in enumerate(context.pages):  # the last page seen, to read a failure by
            try:
                page.screenshot(path=str(shots.folder / f"zz-last-{i}-{j}.png"), full_page=True)
            except Exception:
                pass
        context.close()


def login(tab, email, password):
    tab.goto("/login")
    tab.field("Email").fill(email)
    tab.field("Password").fill(password)
    return tab.submit(tab.button("Log in"))


def add_credential(tab, label, secret, venue="binance", title="Binance"):
    tab.goto("/credentials")
    with tab.page.expect_navigation():
        tab.page.get_by_role("link", name=f"Add a {title} credential", exact=True).click()
    expect(tab.page).to_have_url(f"{tab.url}/credentials/new?venue={venue}")
    tab.field("Label").fill(label)
    for name, value in secret.items():
        field = tab.page.locator(f'[name="{name}"]')
        expect(field).to_have_attribute("autocomplete", "off")
        if not name.endswith("_pem"):
            expect(field).to_have_attribute("type", "password")
        field.fill(value)
    return tab.submit(tab.button("Save credential"))


def activity_rows(tab):
    return [row.inner_text() for row in tab.page.locator("#activity tbody tr").all()]


# ------------------------------------------------------------------------------------------------ tests

def test_journey_first_login_to_activity(dash, open_tab, tmp_path):
    started = time.time()
    email = "admin@example.com"
    password = dash.user(email, admin=True)  # generated: must be changed at first login
    tab = open_tab(dash.url)
    page = tab.page

    # Not logged in: / leads to the login page; a wrong password says so and lets nobody in.
    page.goto("/")
    expect(page).to_have_url(dash.url + "/login")
    expect(page.get_by_role("link", name="Credentials", exact=True)).to_have_count(0)
    tab.check_page("login", narrow=True)
    tab.field("Email").fill(email)
    tab.field("Password").fill("not-the-password-1")
    tab.submit(tab.button("Log in"))
    expect(page.locator('p.error[role="alert"]')).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/(activity|password)$"))

    # First login: held at the password change, whatever page is asked for.
    login(tab, email, password)
    expect(page).to_have_url(dash.url + "/password")
    tab.goto("/credentials")
    expect(page).to_have_url(dash.url + "/password")
    tab.check_page("password")
    tab.field("Current password").fill(password)
    tab.field("New password").fill("PLANTED-new-password-Q7x")
    tab.submit(tab.button("Change password"))
    expect(page).to_have_url(dash.url + "/activity")
    for link in ("Activity", "Credentials", "Agent keys", "Settings", "Users"):
        expect(page.get_by_role("link", name=link, exact=True)).to_be_visible()
    expect(tab.button("Log out")).to_be_visible()

    # A Binance credential: the form, then the list with metadata only.
    tab.nav("Credentials", "/credentials")
    expect(page.locator("table#credentials")).to_be_visible()
    with page.expect_navigation():
        page.get_by_role("link", name="Add a Binance credential", exact=True).click()
    expect(page).to_have_url(dash.url + "/credentials/new?venue=binance")
    tab.field("Label").fill("spot")
    # The credential the local fake Binance accepts, so that the go-live checks below can pass.
    for name, value in (("api_key", fx.REAL_BINANCE_KEY), ("api_secret", fx.REAL_BINANCE_SECRET)):
        field = page.locator(f'input[name="{name}"]')
        expect(field).to_have_attribute("type", "password")
        expect(field).to_have_attribute("autocomplete", "off")
        field.fill(value)
    tab.check_page("credential-new")
    tab.submit(tab.button("Save credential"))
    expect(page).to_have_url(dash.url + "/credentials")
    row = page.locator("#credentials tbody tr", has_text="spot").first
    expect(row).to_contain_text("binance", ignore_case=True)
    tab.check_page("credentials", narrow=True)

    # An agent key bound to it: shown exactly once, with a working copy button and the snippets.
    tab.nav("Agent keys", "/keys")
    tab.field("Name").fill("journey-bot")
    tab.field("binance: spot").check()
    tab.field("Trade").check()
    tab.field("Expires in (days)").fill("30")
    tab.check_page()
    tab.submit(tab.button("Create key"))
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("wdn_") and len(key) >= 24, key
    snippets = page.locator("#snippets").inner_text()
    assert "warden run" in snippets and "/proxy/binance" in snippets, snippets
    tab.check_page("key-created", narrow=True)
    page.locator("#copy-key").click()
    copied = ""
    for _ in range(50):
        copied = page.evaluate("navigator.clipboard.readText()")
        if copied:
            break
        time.sleep(0.1)
    assert copied.strip() == key

    html = tab.goto("/keys")
    assert key not in html and key not in page.content()
    row = page.locator("#keys tbody tr", has_text="journey-bot")
    expect(row).to_have_count(1)
    expect(row.get_by_role("button", name="Revoke", exact=True)).to_be_visible()
    prefix = row.locator("code").first.inner_text().strip().rstrip("…").rstrip(".")
    assert 4 <= len(prefix) < len(key) and key.startswith(prefix), prefix
    tab.check_page("keys", narrow=True)
    assert sum(key in (d["body"] or "") for d in tab.documents) == 1, "the key must be in exactly one page"

    # Limits: an invalid pair is refused next to its field and saves nothing; then a valid pair sticks.
    tab.nav("Settings", "/settings")
    for name in ("max_leg_usd", "daily_cap_usd", "min_net_edge_cents", "starting_balance_usd", "fee_bps", "slippage_bps"):
        expect(page.locator(f'input[name="{name}"]')).to_have_count(1)
    tab.field("Max per order (USD)").fill("500")
    tab.field("Daily cap (USD)").fill("100")
    tab.submit(tab.button("Save settings"))
    expect(page.locator("p.error#error-max_leg_usd")).to_be_visible()
    tab.check_page("settings-error")
    tab.goto("/settings")
    assert tab.field("Max per order (USD)").input_value() not in ("500", "500.0", "500.00")
    tab.field("Max per order (USD)").fill("25")
    tab.field("Daily cap (USD)").fill("250")
    tab.submit(tab.button("Save settings"))
    expect(page.locator("p.error")).to_have_count(0)
    tab.goto("/settings")
    assert float(tab.field("Max per order (USD)").input_value()) == 25
    assert float(tab.field("Daily cap (USD)").input_value()) == 250

    # Go-live: a venue that fails a check (Kalshi: no credential) stays simulated; Binance (the fake venue
    # answers the balance call) passes every check and goes live; then live trading is turned off again.
    expect(tab.button("Turn live trading off")).to_have_count(0)
    page.locator('select[name="venue"]').select_option("kalshi")
    tab.submit(tab.button("Go live"))
    expect(page.locator("#go-live-checks li.fail").first).to_be_visible()
    assert {c.get_attribute("class") for c in page.locator("#go-live-checks li").all()} <= {"pass", "fail"}
    expect(tab.button("Turn live trading off")).to_have_count(0)
    page.locator('select[name="venue"]').select_option("binance")
    tab.submit(tab.button("Go live"))
    expect(page.locator("#go-live-checks li").first).to_be_visible()
    expect(page.locator("#go-live-checks li.fail")).to_have_count(0)
    expect(page.locator("#go-live-checks li.pass")).not_to_have_count(0)
    tab.check_page("go-live")
    tab.goto("/settings")
    tab.submit(tab.button("Turn live trading off"))
    tab.goto("/settings")
    expect(tab.button("Turn live trading off")).to_have_count(0)

    # Activity: what was just done, newest first, with the day's volume against the cap just set.
    tab.nav("Activity", "/activity")
    rows = activity_rows(tab)
    assert any(re.search("credential", r, re.I) for r in rows), rows
    assert any(re.search("key", r, re.I) for r in rows), rows
    times = [re.match(r"\s*(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?)", r) for r in rows]
    assert all(times), f"each row starts with its UTC time: {rows}"
    assert [t.group(1) for t in times] == sorted((t.group(1) for t in times), reverse=True), "newest first"
    expect(page.locator("progress#cap-bar")).to_be_visible()
    expect(page.locator("progress#spend-bar")).to_be_visible()
    assert float(page.locator("#cap-bar").get_attribute("max")) == 250
    assert "250" in page.locator("#cap-bar").locator("xpath=..").inner_text()
    tab.check_page("activity", narrow=True)
    page.locator('select[name="decision"]').select_option("refused")
    tab.submit(tab.button("Filter"))
    expect(page).to_have_url(re.compile(r"decision=refused"))
    outcomes = [row.locator("td").nth(3).inner_text().strip().lower() for row in page.locator("#activity tbody tr").all()]
    assert outcomes and not {"ok", "allowed"} & set(outcomes), outcomes  # the Kalshi go-live refusal, no successes
    assert any(re.search("kalshi", r, re.I) for r in activity_rows(tab))
    tab.goto("/activity?day=2000-01-01")
    assert not any(re.match(r"\s*\d{4}-", r) for r in activity_rows(tab))

    # Admin: every user; a new one gets a password shown once; disabling flips the row's button.
    tab.nav("Users", "/admin/users")
    expect(page.locator("#users tbody tr", has_text=email)).to_have_count(1)
    tab.field("Email").fill("journey-friend@example.com")
    tab.submit(tab.button("Create user"))
    assert len(page.locator("#new-password").inner_text().strip()) >= 12
    friend = page.locator("#users tbody tr", has_text="journey-friend@example.com")
    expect(friend).to_have_count(1)
    expect(friend.get_by_role("button", name="Reset password", exact=True)).to_be_visible()
    tab.check_page("users", narrow=True)
    tab.submit(friend.get_by_role("button", name="Disable", exact=True))
    friend = page.locator("#users tbody tr", has_text="journey-friend@example.com")
    expect(friend.get_by_role("button", name="Enable", exact=True)).to_be_visible()

    expected = {"login", "login-375", "password", "credential-new", "credentials", "key-created", "key-created-375",
                "keys", "keys-375", "settings-error", "activity", "users"}
    assert expected <= set(tab.shots.taken), tab.shots.taken
    assert tab.dialogs == []
    print(f"screenshots: {tab.shots.folder} ({time.time() - started:.1f} s)")
    assert tab.shots.unreadable == [], "not readable at 375 px:\n" + "\n".join(tab.shots.unreadable)


def test_stored_xss_in_a_label_renders_as_text(dash, open_tab):
    dash.user("xss@example.com", "xss-password-123", admin=True)
    tab = open_tab(dash.url)
    page = tab.page
    login(tab, "xss@example.com", "xss-password-123")
    add_credential(tab, XSS_LABEL, {"api_key": "xss-key-1", "api_secret": "xss-secret-1"})
    add_credential(tab, XSS_ATTR_LABEL, {"api_key": "xss-key-2", "api_secret": "xss-secret-2"})

    tab.goto("/credentials")
    deletes = [a.get_attribute("href") for a in page.locator("a", has_text=re.compile(r"^\s*Delete\s*$")).all()]
    pages = ["/credentials", "/keys", "/activity", "/admin/users", *deletes]
    for path in pages:
        html = tab.goto(path)
        for raw in ("<script>window.__xss", "<img src=x", "<svg onload"):
            assert raw not in html, f"{path} renders {raw!r} as markup"
        assert page.evaluate("typeof window.__xss") == "undefined", path
        assert page.locator("main script:not([src]), main img, main svg, [onerror], [onload]").count() == 0, path
    for path in ("/credentials", "/keys"):
        tab.goto(path)
        tab.open_details()
        expect(page.get_by_text(XSS_LABEL).first).to_be_visible()
        expect(page.get_by_text(XSS_ATTR_LABEL).first).to_be_visible()
    assert len(deletes) == 2, "each credential has a Delete link to its confirmation page"
    shown = []
    for href in deletes:
        tab.goto(href)
        shown.append(page.locator("main").inner_text())
    assert all(any(label in text for text in shown) for label in (XSS_LABEL, XSS_ATTR_LABEL)), shown
    # A key bound to the credential: its name and the labels on the answer page are text too.
    tab.goto("/keys")
    tab.field("Name").fill(XSS_LABEL)
    page.locator('input[name="credential_ids"]').first.check()
    tab.submit(tab.button("Create key"))
    expect(page.locator("#new-key")).to_be_visible()
    assert page.evaluate("typeof window.__xss") == "undefined"
    tab.goto("/keys")
    expect(page.locator("#keys").get_by_text(XSS_LABEL)).to_be_visible()
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert tab.dialogs == []
    assert not any(u.rstrip("/").endswith("/x") for u in tab.request_urls), "the <img> of the label was loaded"


def test_form_posts_without_the_csrf_token_are_refused(dash, open_tab):
    dash.user("csrf@example.com", "csrf-password-123", admin=True)
    tab = open_tab(dash.url)
    page = tab.page

    # Even logging in needs the login page's token: a cross-site login post is refused.
    anonymous = requests.post(dash.url + "/login", data={"email": "csrf@example.com", "password": "csrf-password-123"},
                              headers={"Origin": dash.url}, allow_redirects=False, timeout=10)
    assert anonymous.status_code == 403
    assert "warden_session" not in anonymous.cookies

    login(tab, "csrf@example.com", "csrf-password-123")
    add_credential(tab, "csrf-spot", {"api_key": "csrf-key", "api_secret": "csrf-secret"})
    tab.goto("/keys")
    credential_id = page.locator('input[name="credential_ids"]').first.get_attribute("value")
    tab.goto("/settings")
    settings_before = {n: page.locator(f'input[name="{n}"]').input_value() for n in ("max_leg_usd", "daily_cap_usd")}
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert token

    # Another session's token is no good for this one either.
    other = open_tab(dash.url)
    login(other, "csrf@example.com", "csrf-password-123")
    other.goto("/settings")
    other_token = other.page.locator('input[name="csrf"]').first.get_attribute("value")
    assert other_token and other_token != token

    http = tab.http()
    forged = {
        "/credentials": {"venue": "binance", "label": "csrf-forged", "api_key": "k", "api_secret": "s"},
        "/settings": {"max_leg_usd": "1", "daily_cap_usd": "2"},
        "/keys": {"name": "csrf-forged-key", "credential_ids": credential_id, "access": "trade"},
        "/admin/users": {"email": "csrf-forged@example.com"},
        "/password": {"current_password": "csrf-password-123", "new_password": "csrf-forged-password-1"},
        "/logout": {},
    }
    for path, data in forged.items():
        for csrf in (None, "", "0" * 64, other_token):
            body = dict(data) if csrf is None else {**data, "csrf": csrf}
            answer = http.post(dash.url + path, data=body, headers={"Origin": dash.url}, allow_redirects=False, timeout=10)
            assert answer.status_code == 403, f"POST {path} with csrf={csrf!r}: {answer.status_code}"

    # Nothing changed: no credential, key or user, the same settings, the same password, still logged in.
    html = tab.goto("/credentials")
    expect(page).to_have_url(dash.url + "/credentials")
    assert "csrf-forged" not in html
    assert "csrf-forged-key" not in tab.goto("/keys")
    assert "csrf-forged@example.com" not in tab.goto("/admin/users")
    assert "csrf-forged@example.com" not in dash.cli("user", "list").stdout
    tab.goto("/settings")
    assert {n: page.locator(f'input[name="{n}"]').input_value() for n in settings_before} == settings_before
    third = open_tab(dash.url)
    login(third, "csrf@example.com", "csrf-password-123")
    expect(third.page).to_have_url(dash.url + "/activity")

    # The same post with the page's token goes through: the refusals above were the token's doing.
    accepted = http.post(dash.url + "/credentials", data={**forged["/credentials"], "csrf": token},
                         headers={"Origin": dash.url}, allow_redirects=False, timeout=10)
    assert accepted.status_code in (200, 201, 302, 303), accepted.status_code
    assert "csrf-forged" in tab.goto("/credentials")


def test_a_typed_secret_is_never_rendered_back(dash, open_tab):
    dash.user("secret@example.com", "secret-password-123", admin=True)
    dash.user("friend@example.com", "friend-password-123")
    tab = open_tab(dash.url)
    page = tab.page
    login(tab, "secret@example.com", "secret-password-123")
    planted = [API_KEY, API_SECRET]
    add_credential(tab, "spot", {"api_key": API_KEY, "api_secret": API_SECRET})
    expect(page).to_have_url(dash.url + "/credentials")

    # A form that comes back with an error (a blank label) must not echo the secrets typed into it.
    planted += ["PLANTED-error-api-key-11", "PLANTED-error-api-secret-22"]
    add_credential(tab, "   ", {"api_key": planted[2], "api_secret": planted[3]})

    # Rotate: the new secret is as write-only as the first.
    planted += ["PLANTED-rotated-api-key-33", "PLANTED-rotated-api-secret-44"]
    tab.goto("/credentials")
    tab.open_details()
    rotate = page.locator("form", has=tab.button("Rotate")).first
    rotate.locator('input[name="api_key"]').fill(planted[4])
    rotate.locator('input[name="api_secret"]').fill(planted[5])
    tab.submit(rotate.get_by_role("button", name="Rotate", exact=True))
    expect(page.locator("p.error")).to_have_count(0)

    # Share, see the share, revoke it.
    tab.open_details()
    share = page.locator("form", has=tab.button("Share")).first
    share.locator('input[name="email"]').fill("friend@example.com")
    share.locator('select[name="access"]').select_option("trade")
    tab.submit(share.get_by_role("button", name="Share", exact=True))
    tab.open_details()
    expect(page.get_by_text("friend@example.com").first).to_be_visible()
    tab.submit(tab.button("Revoke").first)
    tab.open_details()
    expect(tab.button("Revoke")).to_have_count(0)

    # Every other page, with the forms that answer with a page of their own.
    tab.goto("/keys")
    tab.field("Name").fill("secret-bot")
    page.locator('input[name="credential_ids"]').first.check()
    tab.submit(tab.button("Create key"))
    expect(page.locator("#new-key")).to_be_visible()
    tab.goto("/keys")
    tab.goto("/settings")
    tab.field("Max per order (USD)").fill("-5")
    tab.submit(tab.button("Save settings"))
    tab.goto("/settings")
    tab.submit(tab.button("Go live"))
    for path in ("/", "/activity", "/activity?decision=refused&venue=binance", "/admin/users", "/password"):
        tab.goto(path)
    tab.goto("/admin/users")
    tab.field("Email").fill("secret-new@example.com")
    tab.submit(tab.button("Create user"))
    html = tab.goto("/credentials")
    for href in set(re.findall(r'href="(/credentials/new\?venue=[^"]+)"', html)):
        tab.goto(href.replace("&amp;", "&"))
    tab.goto("/credentials")
    delete = page.locator("a", has_text=re.compile(r"^\s*Delete\s*$")).first.get_attribute("href")
    tab.goto(delete)
    tab.submit(tab.button("Delete for good"))
    expect(page.locator("#credentials tbody tr", has_text="spot")).to_have_count(0)
    tab.goto("/activity")

    pages = [d for d in tab.documents if d["body"] is not None]
    assert len(pages) >= 20, f"only {len(pages)} pages were seen"
    for document in pages:
        for value in planted:
            assert value not in document["body"], f"{document['method']} {document['url']} shows {value}"
    for url in tab.request_urls:
        assert not any(value in url for value in planted), url
    assert tab.dialogs == []

    assert dash.server.stop() == 0
    log = dash.server.output()
    blobs = b"".join(p.read_bytes() for p in dash.data.iterdir() if p.is_file())
    for value in planted:
        assert value not in log, value
        assert value.encode() not in blobs, value


def test_session_cookie_and_security_headers(dash, open_tab):
    dash.user("cookie@example.com", "cookie-password-123")

    # The raw Set-Cookie of a login through the form.
    http = requests.Session()
    login_page = http.get(dash.url + "/login", timeout=10)
    csrf = re.search(r'name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"', login_page.text)
    assert csrf, "the login form carries a csrf field"
    answer = http.post(dash.url + "/login", allow_redirects=False, timeout=10, headers={"Origin": dash.url},
                       data={"csrf": csrf.group(1) or csrf.group(2), "email": "cookie@example.com",
                             "password": "cookie-password-123"})
    assert answer.status_code in (302, 303), answer.status_code
    set_cookie = answer.raw.headers.getlist("Set-Cookie")
    session_cookie = [c for c in set_cookie if c.startswith("warden_session=")]
    assert len(session_cookie) == 1, set_cookie
    flags = [f.strip().lower() for f in session_cookie[0].split(";")[1:]]
    assert "httponly" in flags and "samesite=strict" in flags, session_cookie

    # In the browser: the cookie as Chromium stored it, out of reach of the page's scripts.
    tab = open_tab(dash.url)
    page = tab.page
    login(tab, "cookie@example.com", "cookie-password-123")
    expect(page).to_have_url(dash.url + "/activity")
    cookie = next(c for c in tab.context.cookies() if c["name"] == "warden_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict", cookie
    assert "warden_session" not in page.evaluate("document.cookie")
    # The JSON API takes bearer tokens only: the browser's cookie does not open it.
    assert tab.http().get(dash.url + "/api/v1/me", timeout=10).status_code == 401

    for path in ("/credentials", "/credentials/new?venue=binance", "/keys", "/settings", "/activity"):
        tab.goto(path)
        # Everything the page loads is Warden's own: no external stylesheet, script, image or frame.
        sources = page.evaluate("""() => [...document.querySelectorAll('link[href], script[src], img[src], iframe, object, embed')]
            .map(e => e.href || e.src || e.outerHTML)""")
        assert all(s.startswith(dash.url + "/") for s in sources), sources
        assert page.locator('link[rel="stylesheet"]').evaluate_all("ls => ls.map(l => l.getAttribute('href'))") == ["/static/warden.css"]
        for form in page.locator('form[method="post" i]').all():
            assert form.locator('input[type="hidden"][name="csrf"]').count() == 1, form.inner_html()
    css = requests.get(dash.url + "/static/warden.css", timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert all(u.startswith(dash.url + "/") for u in tab.request_urls), tab.request_urls

    refused = tab.http().post(dash.url + "/settings", data={"max_leg_usd": "1"}, allow_redirects=False, timeout=10)
    documents = [d["headers"] for d in tab.documents if d["body"] is not None]
    documents.append({k.lower(): v for k, v in refused.headers.items()})
    documents.append({k.lower(): v for k, v in login_page.headers.items()})
    assert len(documents) >= 8
    for headers in documents:
        assert headers.get("x-frame-options", "").upper() == "DENY", headers
        policy = headers.get("content-security-policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
        assert directives.get("default-src") in (["'none'"], ["'self'"]), policy
        for name, sources in directives.items():
            for source in sources:
                assert source in ("'none'", "'self'") or source.startswith(("'nonce-", "'sha256-")), f"{name} {source}: {policy}"

    # Log out: back at the login page, and the old cookie is dead on the server too.
    old = tab.http()
    tab.submit(tab.button("Log out"))
    expect(page).to_have_url(dash.url + "/login")
    assert not any(c["name"] == "warden_session" and c["value"] for c in tab.context.cookies())
    after = old.get(dash.url + "/activity", allow_redirects=False, timeout=10)
    assert after.status_code in (302, 303) and after.headers["Location"].endswith("/login")
