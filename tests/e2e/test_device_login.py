"""`warden login --device`: the CLI prints a code, a person logged in to the dashboard elsewhere approves it,
and the CLI gets that person's session (RFC 8628 against Warden itself)."""
import json
import re
import subprocess
import time

import requests

from conftest import BINARY, clean_env, warden

EMAIL, PASSWORD = "device-owner@example.com", "device-password-1"


def csrf(html):
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def dashboard(server):
    """A browser session logged in to the dashboard (with the login form's CSRF token, as a browser would)."""
    browser = requests.Session()
    form = browser.get(server.url + "/login")
    r = browser.post(server.url + "/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf(form.text)})
    assert r.status_code == 200 and "warden_session" in browser.cookies, r.text[:300]
    return browser


def device_login(server, home):
    proc = subprocess.Popen([str(BINARY), "login", "--device", "--url", server.url],
                            env=clean_env({"XDG_CONFIG_HOME": str(home)}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    code = re.search(r"enter the code ([A-Z]{4}-[A-Z]{4})", line)
    assert code and f"{server.url}/device" in line, line
    return proc, code.group(1)


def decide(browser, server, code, action):
    page = browser.get(server.url + "/device", params={"code": code})
    assert page.status_code == 200 and code in page.text and "127.0.0.1" in page.text, page.text[:500]
    return browser.post(server.url + "/device", data={"csrf": csrf(page.text), "user_code": code, "action": action})


def test_a_code_approved_in_the_dashboard_logs_the_cli_in(start, tmp_path, master_key):
    env = {"WARDEN_MASTER_KEY": master_key}
    assert warden("user", "create", EMAIL, PASSWORD, "--no-reset", "--data-dir", str(tmp_path / "data"), env=env).returncode == 0
    server = start(env)
    browser = dashboard(server)

    proc, code = device_login(server, tmp_path / "home")
    approved = decide(browser, server, code, "approve")
    assert approved.status_code == 200 and "logged in as you" in approved.text
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    saved = json.loads((tmp_path / "home" / "warden" / "session.json").read_text())
    me = requests.get(server.url + "/api/v1/me", headers={"Authorization": f"Bearer {saved['token']}"})
    assert me.status_code == 200 and me.json()["email"] == EMAIL
    # The same code cannot be approved twice.
    again = browser.get(server.url + "/device", params={"code": code})
    assert again.status_code == 400 and "No device login is waiting" in again.text

    # Denied: the CLI says so and saves nothing new.
    proc, code = device_login(server, tmp_path / "home2")
    assert decide(browser, server, code, "deny").status_code == 200
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "denied" in err
    assert not (tmp_path / "home2" / "warden" / "session.json").exists()

    # A form without the page's CSRF token changes nothing.
    proc, code = device_login(server, tmp_path / "home3")
    forged = browser.post(server.url + "/device", data={"user_code": code, "action": "approve"})
    assert forged.status_code == 403
    time.sleep(6)
    assert proc.poll() is None, "the CLI must still be waiting"
    proc.kill()
    proc.wait()
    rows = requests.get(server.url + "/api/v1/audit", params={"limit": 50},
                        headers={"Authorization": f"Bearer {saved['token']}"}).json()["entries"]
    actions = [r["action"] for r in rows]
    assert actions.count("auth.device_approved") == 1 and actions.count("auth.device_denied") == 1
    assert any(r["action"] == "auth.login" and json.loads(r["detail"]).get("via") == "device" for r in rows)


def test_a_form_body_that_is_not_form_encoding_is_refused_not_fatal(start, tmp_path, master_key):
    """A `text/plain` form from any web page (`a=b c`), or a stray `%`, reaches /login before any check."""
    server = start({"WARDEN_MASTER_KEY": master_key})
    for body, kind in ((b"a=b c", "text/plain"), (b"%", "application/x-www-form-urlencoded"), (b"%zz=1&csrf=%",
                       "application/x-www-form-urlencoded"), (b'{"email": "x"}', "application/json")):
        for path in ("/login", "/device", "/password"):
            r = requests.post(server.url + path, data=body, headers={"Content-Type": kind}, allow_redirects=False)
            assert r.status_code in (303, 403), (path, body, r.status_code)
    assert server.proc.poll() is None and requests.get(server.url + "/healthz").status_code == 200
