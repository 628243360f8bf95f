"""Fail closed for real: a store that stalls or is damaged, driven against the real binary.

Each test reproduces a fault (a SQLite writer lock held by another process, a damaged data file) and
checks what Warden promises under it: no call leaves unaudited, none is sent after its client has gone
or past its deadline, a boot refuses what is not a vault, and the health check tells the truth in time."""
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import requests

import fakes
from conftest import BINARY, clean_env, free_port, port_open, warden
from pg_control import own_postgres  # noqa: F401 (a fixture)

PASSWORD = "fault-owner-password-1"


class Desk:
    """One warden on SQLite with a REST service fake, an owner logged in and an agent key for it."""

    def __init__(self, start, tmp_path, master_key, database=None, extra_config=""):
        self.fake = fakes.Fake(fakes.service_handler)
        self.config = tmp_path / "warden.toml"
        self.config.write_text(f"""
[services.desk]
base_url = "{self.fake.url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "
{extra_config}
""")
        self.data = tmp_path / "data"
        self.env = {"WARDEN_MASTER_KEY": master_key}
        self.store = ("--database", database) if database else ()
        made = warden("user", "create", "owner@example.com", PASSWORD, "--no-reset", "--data-dir", str(self.data),
                      "--config", str(self.config), *self.store, env=self.env)
        assert made.returncode == 0, made.stderr
        self.server = start(self.env, data_dir=self.data, args=("--config", str(self.config), *self.store))
        self.api = self.server.url + "/api/v1"
        self.login()
        r = requests.post(self.api + "/credentials", headers=self.auth,
                          json={"venue": "desk", "label": "desk", "secret": {"token": fakes.REAL_SERVICE_TOKEN}})
        assert r.status_code == 201, r.text
        r = requests.post(self.api + "/agent-keys", headers=self.auth,
                          json={"name": "bot", "credential_ids": [r.json()["id"]], "access": "trade"})
        assert r.status_code == 201, r.text
        self.key = r.json()["key"]

    def login(self):
        r = requests.post(self.api + "/auth/login", json={"email": "owner@example.com", "password": PASSWORD})
        assert r.status_code == 200, r.text
        self.auth = {"Authorization": f"Bearer {r.json()['access_token']}"}

    @property
    def sqlite_path(self):
        return self.data / "warden.db"

    def call(self, method="GET", timeout=10):
        """One gateway call to a path of its own; returns (path, status or the exception's name, seconds)."""
        path = f"/calls/{uuid.uuid4().hex}"
        started = time.monotonic()
        try:
            r = requests.request(method, f"{self.server.url}/proxy/desk{path}", headers={"X-Warden-Key": self.key},
                                 data=b"{}" if method != "GET" else None, timeout=timeout)
            return path, r.status_code, time.monotonic() - started
        except requests.RequestException as error:
            return path, type(error).__name__, time.monotonic() - started

    def audit(self, action):
        rows, before = [], None
        while True:
            params = {"action": action, "limit": 500, **({"before": before} if before else {})}
            r = requests.get(self.api + "/audit", headers=self.auth, params=params, timeout=10)
            assert r.status_code == 200, r.text
            rows += r.json()["entries"]
            before = r.json().get("next_before")
            if not before:
                return rows

    def audited_paths(self, action, outcome=None):
        out = set()
        for row in self.audit(action):
            if outcome is None or row["outcome"] == outcome:
                out.add(json.loads(row["detail"] or "{}").get("path"))
        return out

    def seen(self):
        return {r["path"] for r in self.fake.requests}


def hold_sqlite_lock(path, seconds):
    """Holds SQLite's write lock from another process (this one) for `seconds`, in a thread."""
    ready = threading.Event()

    def hold():
        connection = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread


def test_a_locked_sqlite_store_fails_closed_and_every_answered_call_has_its_row(start, tmp_path, master_key):
    desk = Desk(start, tmp_path, master_key)
    assert desk.call()[1] == 200
    results = []
    stop = threading.Event()

    def traffic():
        while not stop.is_set():
            results.append((time.monotonic(), *desk.call()))

    workers = [threading.Thread(target=traffic, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    locked_at = time.monotonic()
    holder = hold_sqlite_lock(desk.sqlite_path, 6)
    # The health check answers within its own deadline and says the store cannot keep up.
    time.sleep(1.5)
    began = time.monotonic()
    health = requests.get(desk.server.url + "/healthz", timeout=5)
    assert time.monotonic() - began < 3
    assert health.status_code == 503, health.text
    holder.join()
    released_at = time.monotonic()
    time.sleep(2)
    stop.set()
    for w in workers:
        w.join()
    assert requests.get(desk.server.url + "/healthz", timeout=5).status_code == 200

    # While the lock was held (past the 1 s bound), nothing was admitted.
    during = [r for r in results if locked_at + 1.5 < r[0] < released_at - 0.5]
    assert during, "no traffic during the lock"
    assert all(r[2] == 503 for r in during), sorted({r[2] for r in during}, key=str)
    assert any(r[2] == 200 for r in results if r[0] > released_at), "calls did not resume after the lock"
    # Every answered call has its row; the venue saw no call without one.
    answered = {r[1] for r in results if r[2] == 200}
    rows = desk.audited_paths("gateway.result")
    assert answered <= rows, f"{len(answered - rows)} answered calls have no row"
    assert desk.seen() <= rows, "the venue saw calls that have no audit row"
    assert desk.server.stop() == 0
    # The refusals counted while closed are in the chain, as a gap row (an operator's row, owned by no one).
    db = sqlite3.connect(str(desk.sqlite_path))
    gaps = [json.loads(d) for (d,) in db.execute("SELECT detail FROM audit WHERE action = 'audit.gap'")]
    db.close()
    assert gaps and sum(int(g["refused_unrecorded"]) for g in gaps) > 0, gaps
    verified = warden("audit", "verify", "--data-dir", str(desk.data), "--config", str(desk.config), env=desk.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_call_whose_client_has_gone_is_not_sent(start, tmp_path, master_key):
    desk = Desk(start, tmp_path, master_key)
    holder = hold_sqlite_lock(desk.sqlite_path, 3)
    # A write waits for its row to be durable; its client gives up after 1 s, long before the store is back.
    path, outcome, _ = desk.call("POST", timeout=1)
    assert outcome == "ReadTimeout", outcome
    holder.join()
    time.sleep(1.5)
    assert desk.call()[1] == 200  # the store is back
    assert path not in desk.seen(), "a call was sent after its client had gone"


def test_no_call_is_sent_past_its_deadline(start, tmp_path, master_key):
    desk = Desk(start, tmp_path, master_key, extra_config="[gateway]\nsend_deadline_seconds = 2\n")
    holder = hold_sqlite_lock(desk.sqlite_path, 4)
    path, outcome, seconds = desk.call("POST", timeout=20)
    holder.join()
    # Its row committed once the lock went (about 4 s), past the 2 s deadline: refused, never sent.
    assert outcome == 503, outcome
    assert seconds < 8
    time.sleep(0.5)
    assert path not in desk.seen(), "a call was sent past its deadline"
    assert desk.call()[1] == 200


# ------------------------------------------------------------------------------------------ damaged data files

def run_as_other_user():
    """Root reads and writes any file: permission faults are tried as `nobody` when the tests run as root."""
    return {"user": 65534, "group": 65534} if os.geteuid() == 0 else {}


def boot(data_dir, master_key, **popen):
    port = free_port()
    proc = subprocess.run([str(BINARY), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}"],
                          env=clean_env({"WARDEN_MASTER_KEY": master_key}), capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL, **popen)
    return proc, port


def assert_refused(proc, port, *words):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("warden: ")]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Error Domain" not in proc.stderr and "NSCocoaErrorDomain" not in proc.stderr, proc.stderr
    assert not port_open(port)


@pytest.fixture
def shared_dir():
    """A data directory outside pytest's private tmp tree, so another user can be given it."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="warden-fault-"))
    os.chmod(directory, 0o755)
    if os.geteuid() == 0:
        os.chown(directory, 65534, 65534)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_a_zero_byte_database_is_not_taken_for_a_first_boot(tmp_path, master_key):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "warden.db").write_bytes(b"")
    proc, port = boot(data, master_key)
    assert_refused(proc, port, "empty", "warden.db")
    assert (data / "warden.db").stat().st_size == 0, "the empty file was written to"


def test_a_file_that_is_not_a_database_or_not_wardens_is_refused(tmp_path, master_key):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "warden.db").write_bytes(b"this is not a database at all" * 10)
    proc, port = boot(data, master_key)
    assert_refused(proc, port, "not a SQLite database")
    (data / "warden.db").unlink()
    other = sqlite3.connect(str(data / "warden.db"))
    other.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    other.commit()
    other.close()
    proc, port = boot(data, master_key)
    assert_refused(proc, port, "not a Warden store")


def test_a_store_with_accounts_but_no_vault_record_is_refused(tmp_path, master_key):
    data = tmp_path / "data"
    assert warden("user", "create", "owner@example.com", PASSWORD, "--no-reset", "--data-dir", str(data),
                  env={"WARDEN_MASTER_KEY": master_key}).returncode == 0
    db = sqlite3.connect(str(data / "warden.db"))
    db.execute("DELETE FROM vault")
    db.commit()
    db.close()
    proc, port = boot(data, warden("keygen").stdout.strip())
    assert_refused(proc, port, "no vault record")


def test_a_read_only_database_is_refused_before_the_port_opens(shared_dir, master_key):
    data = shared_dir / "data"
    other = run_as_other_user()
    made = subprocess.run([str(BINARY), "user", "create", "owner@example.com", PASSWORD, "--no-reset", "--data-dir", str(data)],
                          env=clean_env({"WARDEN_MASTER_KEY": master_key}), capture_output=True, text=True, timeout=30, **other)
    assert made.returncode == 0, made.stderr
    os.chmod(data / "warden.db", 0o400)
    proc, port = boot(data, master_key, **other)
    assert_refused(proc, port, "warden.db")


def test_an_unreadable_data_directory_gets_one_clear_line(shared_dir, master_key):
    data = shared_dir / "data"
    data.mkdir()
    os.chown(data, os.geteuid(), os.getegid())
    os.chmod(data, 0o000)
    proc, port = boot(data, master_key, **run_as_other_user())
    os.chmod(data, 0o700)
    assert_refused(proc, port, str(data))
    (shared_dir / "file").write_text("x")
    proc, port = boot(shared_dir / "file", master_key, **run_as_other_user())
    assert_refused(proc, port, "not a directory")


# ------------------------------------------------------------------------------------------ PostgreSQL faults

def wait_until_answered(desk, within=25):
    """Seconds until a gateway call is answered 200 again."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        if desk.call(timeout=10)[1] == 200:
            return time.monotonic() - began
        time.sleep(0.2)
    health = requests.get(desk.server.url + "/healthz", timeout=10)
    raise AssertionError(f"warden did not recover within {within} s: /healthz {health.status_code} {health.text}")


def test_postgres_restarts_and_a_freeze_never_wedge_warden(start, tmp_path, master_key, own_postgres):
    desk = Desk(start, tmp_path, master_key, database=own_postgres.url)
    results = []
    stop = threading.Event()

    def traffic(method):
        while not stop.is_set():
            results.append((time.monotonic(), method, *desk.call(method, timeout=30)))

    workers = [threading.Thread(target=traffic, args=(m,), daemon=True) for m in ("GET", "GET", "GET", "POST")]
    for w in workers:
        w.start()
    recoveries = []
    for _ in range(3):
        time.sleep(1)
        own_postgres.restart()
        recoveries.append(wait_until_answered(desk))
    time.sleep(1)
    own_postgres.freeze()
    try:
        time.sleep(1.5)
        began = time.monotonic()
        health = requests.get(desk.server.url + "/healthz", timeout=10)
        assert time.monotonic() - began < 3.5, "the health check did not answer within its deadline"
        assert health.status_code == 503, health.text
        time.sleep(5)
    finally:
        own_postgres.thaw()
    recoveries.append(wait_until_answered(desk))
    time.sleep(1)
    stop.set()
    for w in workers:
        w.join(timeout=40)
    assert not any(w.is_alive() for w in workers), "a call never completed"
    print(f"\nrecoveries after 3 restarts and a freeze: {[round(r, 2) for r in recoveries]} s; "
          f"{len(results)} calls, {sum(r[3] == 200 for r in results)} answered 200, "
          f"slowest {max(r[4] for r in results):.2f} s")
    # No call waited past its send deadline (5 s) plus the store's own deadline (5 s), with a margin.
    assert max(r[4] for r in results) < 14, sorted(r[4] for r in results)[-5:]
    assert all(r[3] in (200, 503) for r in results), sorted({r[3] for r in results}, key=str)
    assert requests.get(desk.server.url + "/healthz", timeout=5).status_code == 200
    # Every answered call has its row; every call the venue saw was recorded (writes before they were sent).
    desk.login()
    results_rows = desk.audited_paths("gateway.result")
    forwarded = desk.audited_paths("gateway.forward")
    answered = {r[2] for r in results if r[3] == 200}
    assert answered <= results_rows, f"{len(answered - results_rows)} answered calls have no row"
    posts_seen = {r["path"] for r in desk.fake.requests if r["method"] == "POST"}
    assert posts_seen <= forwarded, "the venue saw writes that were not recorded before they were sent"
    assert desk.seen() <= results_rows | forwarded
    assert desk.server.stop(timeout=20) == 0
    verified = warden("audit", "verify", "--data-dir", str(desk.data), "--config", str(desk.config), *desk.store, env=desk.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# ------------------------------------------------------------------------------------------ stopping

def endless_stream(h, body):
    """An answer that never ends: a chunk every 0.3 s for as long as the connection lasts."""
    fakes.start_sse(h)
    try:
        while True:
            fakes.send_chunk(h, "data: tick\n\n")
            time.sleep(0.3)
    except OSError:
        pass


def quiet_stream(h, body):
    """An answer that starts, then goes quiet for longer than any test."""
    fakes.start_sse(h)
    fakes.send_chunk(h, "data: first\n\n")
    time.sleep(120)


def test_a_stop_ends_streams_that_never_end_after_its_grace_and_records_them(start, tmp_path, master_key):
    endless, quiet = fakes.Fake(endless_stream), fakes.Fake(quiet_stream)
    extra = f"""
[services.endless]
base_url = "{endless.url}"
auth_header = "X-Api-Token"

[services.quiet]
base_url = "{quiet.url}"
auth_header = "X-Api-Token"

[server]
shutdown_grace_seconds = 2
"""
    desk = Desk(start, tmp_path, master_key, extra_config=extra)
    creds = []
    for venue in ("endless", "quiet"):
        r = requests.post(desk.api + "/credentials", headers=desk.auth, json={"venue": venue, "label": venue, "secret": {"token": "t"}})
        assert r.status_code == 201, r.text
        creds.append(r.json()["id"])
    r = requests.post(desk.api + "/agent-keys", headers=desk.auth, json={"name": "s", "credential_ids": creds, "access": "trade"})
    key = r.json()["key"]
    streams = []
    for venue in ("endless", "quiet"):
        response = requests.get(f"{desk.server.url}/proxy/{venue}/events", headers={"X-Warden-Key": key}, stream=True, timeout=30)
        assert response.status_code == 200
        chunks = response.iter_content(chunk_size=None)  # kept: a dropped iterator closes the connection
        assert next(chunks)  # the stream is flowing
        streams.append((response, chunks))
    began = time.monotonic()
    code = desk.server.stop(timeout=20)
    took = time.monotonic() - began
    assert code == 0, desk.server.output()[-2000:]
    # The grace (2 s), then the streams are ended and the process exits, rows flushed.
    db = sqlite3.connect(str(desk.sqlite_path))
    rows = db.execute("SELECT target, outcome FROM audit WHERE action = 'gateway.result'").fetchall()
    db.close()
    assert sorted(rows) == [("endless", "interrupted"), ("quiet", "interrupted")], rows
    assert 1.5 < took < 10, took
    endless.stop()
