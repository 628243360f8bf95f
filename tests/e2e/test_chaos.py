"""Chaos: mixed traffic through the real binary while the process is killed and the store fails, then the books.

One owner trades live on a Binance fake (orders with unique client order ids, cancels, signed and public reads),
calls a REST service (GETs and POSTs on paths of their own) and an OpenAI fake, from several threads, while
Warden is killed with SIGKILL and restarted on the same data, and the store is made to fail: on SQLite another
process holds the write lock for a few seconds; on PostgreSQL (a throwaway server of the test's own) the server
is restarted (`pg_ctl restart -m fast`) and frozen (every process of the cluster SIGSTOPped, then SIGCONTed).
After a clean stop the test checks, against the fakes' own records and the audit log:

a. every call Warden answered 2xx has its row: a `gateway.forward` row for those that act on the account
   (orders, cancels, REST POSTs), strictly; a `gateway.result` row for reads and LLM calls, except that a crash
   may lose the rows of calls answered within `LOSS_WINDOW` (the audit's 1 s lag bound) before a kill -9;
b. no venue saw an unaudited call: every order and REST POST a fake received has its `gateway.forward` row, the
   Binance fake got no more cancels than there are cancel rows, and every read a fake received has its row
   unless a kill -9 came while it was in flight;
c. the cap holds: what the Binance fake accepted is at most `daily_cap_usd`, each accepted order was reserved
   at least its value, and Warden's live notional (GET /usage) is at least what the venue accepted;
d. `warden audit verify` passes;
e. no call hung: each finished within the send deadline + the store deadline + a margin (`HANG_BOUND`);
f. Warden stops on SIGTERM within 15 s at the end.

Figures (calls, answers by status, faults, rows lost in the crash window, the slowest call, recovery times) are
printed (`pytest -s`) and written to bench/results/chaos-<store>.json (bench/results/ is git-ignored).

    WARDEN_CHAOS_SECONDS=120 WARDEN_CHAOS_SEED=7 pytest tests/e2e/test_chaos.py -s

WARDEN_CHAOS_SECONDS is the traffic time per store (default 20; each store also has a minimum set of faults);
WARDEN_CHAOS_SEED changes the traffic mix, the order sizes and the fault schedule. PostgreSQL binaries are taken
from WARDEN_TEST_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin; without them the PostgreSQL run is skipped,
unless WARDEN_REQUIRE_POSTGRES=1.
"""
import hashlib
import hmac
import json
import os
import pathlib
import random
import shutil
import signal
import threading
import time
import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

import fake_exchanges as fx
import fakes
from conftest import ROOT, free_port, warden
from test_exchanges import OWNER, PASSWORD, THROWAWAY_BINANCE_SECRET, Exchanges, start_warden
from test_faults import hold_sqlite_lock
import pg_control

SECONDS = float(os.environ.get("WARDEN_CHAOS_SECONDS", "20"))
SEED = int(os.environ.get("WARDEN_CHAOS_SEED", "20261204"))
SEND_DEADLINE = 5          # [gateway] send_deadline_seconds (the default, set explicitly below)
STORE_DEADLINE = 5         # Database.deadline: every store operation ends within it
HANG_BOUND = SEND_DEADLINE + STORE_DEADLINE + 5
LOSS_WINDOW = 1.0          # the audit's lag bound: a crash may lose the rows of calls answered this long before it
# An answer the server wrote just before it died may be read by its (Python) client a moment after the kill.
KILL_SKEW = 0.25
CRASH_REACH = LOSS_WINDOW + 1.0  # a read that reached a venue this long before a kill -9 may have lost its row
CLIENT_TIMEOUT = 40        # well past HANG_BOUND, so a hung call shows how long it hung
STOP_BOUND = 15
RECOVERY_BOUND = 20        # after a fault ends, /healthz must say ok within this
MAX_LEG_USD = 10
DAILY_CAP_USD = max(60, int(6 * SECONDS))  # reached a few seconds into the run at the order threads' pace
LLM_MODEL = "gpt-chaos"
RESULTS_DIR = ROOT / "bench" / "results"

pytestmark = pytest.mark.slow


def tag():
    return f"[WARDEN_CHAOS_SEED={SEED} WARDEN_CHAOS_SECONDS={SECONDS:g}]"


@pytest.fixture
def store(request):
    if request.param == "sqlite":
        yield None
        return
    if pg_control.bin_dir() is None:
        if os.environ.get("WARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("WARDEN_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries (WARDEN_TEST_PG_BINDIR or "
                        "/usr/lib/postgresql/*/bin)")
        pytest.skip("needs PostgreSQL server binaries (initdb, pg_ctl): run scripts/bootstrap")
    cluster = pg_control.OwnPostgres()
    try:
        yield cluster
    finally:
        cluster.close()


# ------------------------------------------------------------------------------------------------ the world

class Stamped(list):
    """A fake's request list that notes when each request arrived (monotonic clock)."""

    def append(self, record):
        record["t"] = time.monotonic()
        super().append(record)


def stamped(fake):
    fake.requests = Stamped()
    return fake


def signed(params):
    """Binance parameters signed as an agent's SDK would, with its throwaway secret (Warden re-signs)."""
    params = f"{params}&recvWindow=20000&timestamp={int(time.time() * 1000)}".lstrip("&")
    return params + "&signature=" + hmac.new(THROWAWAY_BINANCE_SECRET.encode(), params.encode(), hashlib.sha256).hexdigest()


class Call:
    __slots__ = ("kind", "ident", "started", "ended", "outcome", "request_id", "note")

    def __init__(self, kind, ident, started, ended, outcome, request_id, note):
        self.kind, self.ident, self.started, self.ended = kind, ident, started, ended
        self.outcome, self.request_id, self.note = outcome, request_id, note

    @property
    def ok(self):
        return isinstance(self.outcome, int) and 200 <= self.outcome < 300

    @property
    def seconds(self):
        return self.ended - self.started


ACTS = {"order", "cancel", "post"}      # may act on the account: recorded durably before they are sent
READS = {"read", "public", "get", "llm"}  # recorded as they end


class Chaos:
    """The fakes, the config, the running server (replaced at each restart) and every call made."""

    def __init__(self, start, tmp_path, master_key, cluster):
        self.start, self.tmp = start, tmp_path
        self.cluster = cluster
        self.binance = stamped(fx.binance(usdt="1000000.00"))
        self.service = stamped(fakes.Fake(fakes.service_handler))
        self.openai = stamped(fakes.Fake(fakes.openai_handler()))
        for fake in (self.binance, self.service, self.openai):
            fake.server.handle_error = lambda request, address: None  # a kill -9 cuts connections: no tracebacks
        self.config = tmp_path / "warden.toml"
        self.config.write_text(f"""
[venues.binance]
base_url = "{self.binance.url}"

[venues.openai]
base_url = "{self.openai.url}"

[prices.openai]
"{LLM_MODEL}" = {{ input = 1, output = 2 }}

[services.desk]
base_url = "{self.service.url}"
auth_header = "X-Api-Token"
auth_value_prefix = "token "

[gateway]
send_deadline_seconds = {SEND_DEADLINE}
upstream_timeout_seconds = 10
""")
        self.env = {"WARDEN_MASTER_KEY": master_key}
        self.data = tmp_path / "data"
        self.store_args = ("--database", cluster.url) if cluster else ()
        self.logs = []
        self.calls = []
        self.faults = []
        self.kills = []  # monotonic times of each kill -9
        self.crashes, self.crash_notes, self.died = [], [], {}  # exits nobody asked for
        self.rescues = []  # kill -9s of a server that did not recover by itself (not excused like planned kills)
        self.stop_watching = threading.Event()
        self.stop_traffic = threading.Event()
        self.t0 = time.monotonic()
        self.server = start_warden(start, self.env, self.config, self.data, self.store_args)
        self.logs.append(str(self.server.log_path))
        self.world = Exchanges(self.server, {"binance": self.binance})
        self.world.creds = {"binance": self.world.credential("binance", {"api_key": fx.REAL_BINANCE_KEY,
                                                                           "api_secret": fx.REAL_BINANCE_SECRET})}
        desk = self.world.credential("desk", {"token": fakes.REAL_SERVICE_TOKEN})
        llm = self.world.credential("openai", {"api_key": fakes.REAL_OPENAI_KEY})
        self.world.put_profile(risk={"max_leg_usd": MAX_LEG_USD, "daily_cap_usd": DAILY_CAP_USD})
        self.world.live("binance")
        r = requests.post(self.world.api + "/agent-keys", headers=self.world.auth,
                          json={"name": "chaos", "credential_ids": [self.world.creds["binance"], desk, llm], "access": "trade"})
        assert r.status_code == 201, r.text
        self.key = r.json()["key"]

    def rel(self, t):
        return round(t - self.t0, 3)

    # ------------------------------------------------------------------------------------------ the server

    def boot(self):
        self.server = self.start(self.env, data_dir=self.data, args=("--config", str(self.config), *self.store_args),
                                 ready=False)
        self.logs.append(str(self.server.log_path))
        self.server.wait_ready(timeout=30)
        self.world.server = self.server
        return self.server

    def kill9(self):
        if self.ensure_alive():
            return False  # it had died on its own: that was recorded, and it is up again
        server = self.server
        self.kills.append(time.monotonic())
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        server.log.close()
        return True

    def watch(self):
        """Notes when the running server exits without being told to (a crash)."""
        while not self.stop_watching.is_set():
            server = self.server
            if server.proc.poll() is not None and server not in self.died and not self.expected_exit(server):
                self.died[server] = time.monotonic()
            self.stop_watching.wait(0.05)

    def expected_exit(self, server):
        return server.proc.returncode == -signal.SIGKILL and server.log.closed

    def ensure_alive(self):
        """If the server died on its own, records the crash (exit code, when, the log's last words) and boots
        another on the same store; returns whether it had."""
        server = self.server
        if server.proc.poll() is None or self.expected_exit(server):
            return False
        died = self.died.get(server, time.monotonic())
        self.crashes.append(died)
        text = server.output()
        marks = [line[:300] for line in text.splitlines()
                 if any(word in line for word in ("Assertion", "Fatal error", "crashed", "Program crashed", "panic"))]
        self.crash_notes.append({"at_s": self.rel(died), "exit": server.proc.returncode, "log": str(server.log_path),
                                 "last_words": marks[:6] or text.splitlines()[-5:]})
        server.log.close()
        began = time.monotonic()
        self.boot()
        self.crash_notes[-1]["restart_s"] = round(time.monotonic() - began, 3)
        return True

    def health(self, timeout=10):
        """(status or exception name, body, seconds) of one GET /healthz."""
        began = time.monotonic()
        try:
            r = requests.get(self.server.url + "/healthz", timeout=timeout)
            body = r.json() if r.headers.get("content-type", "").startswith("application/json") else r.text
            outcome = r.status_code
        except requests.RequestException as error:
            outcome, body = type(error).__name__, None
        ended = time.monotonic()
        self.calls.append(Call("health", "/healthz", began, ended, outcome, None, None))
        return outcome, body, ended - began

    def wait_healthy(self, limit=60):
        """Seconds until /healthz says ok (None if not within `limit`); notes the slowest probe meanwhile."""
        began = time.monotonic()
        self.probes = {"count": 0, "slowest_s": 0.0, "answers": {}}
        while time.monotonic() - began < limit:
            if self.server.proc.poll() is not None:
                return None
            outcome, body, seconds = self.health(timeout=min(10, max(1, limit - (time.monotonic() - began))))
            self.probes["count"] += 1
            self.probes["slowest_s"] = round(max(self.probes["slowest_s"], seconds), 3)
            key = f"{outcome} {body.get('store')}" if isinstance(body, dict) else str(outcome)
            self.probes["answers"][key] = self.probes["answers"].get(key, 0) + 1
            if outcome == 200:
                return time.monotonic() - began
            time.sleep(0.05)
        return None

    # ------------------------------------------------------------------------------------------- the calls

    def call(self, kind, ident, method, path, headers=None, data=None, json_body=None, note_refusal=False):
        url = self.server.url
        started = time.monotonic()
        note = None
        try:
            r = requests.request(method, url + path, headers=headers, data=data, json=json_body, timeout=CLIENT_TIMEOUT)
            outcome, request_id = r.status_code, r.headers.get("X-Warden-Request-Id")
            if note_refusal and not 200 <= r.status_code < 300:
                note = r.text[:200]
            body = r.json() if 200 <= r.status_code < 300 and r.headers.get("content-type", "").startswith("application/json") else None
        except requests.RequestException as error:
            outcome, request_id, body = type(error).__name__, None, None
        except ValueError:
            outcome, request_id, body = "BadJSON", None, None
        ended = time.monotonic()
        self.calls.append(Call(kind, ident, started, ended, outcome, request_id, note))
        if not isinstance(outcome, int):
            time.sleep(0.05)  # the server is down (a restart): do not spin
        return outcome, body

    def binance_headers(self):
        return {"X-MBX-APIKEY": self.key, "Content-Type": "application/x-www-form-urlencoded"}

    def order_worker(self, n, pace):
        rng = random.Random(f"{SEED}/orders/{n}")
        open_orders = []
        i = 0
        while not self.stop_traffic.is_set():
            i += 1
            if open_orders and rng.random() < 0.25:
                order_id = open_orders.pop(rng.randrange(len(open_orders)))
                cid = f"cx-{n}-{i}-{uuid.uuid4().hex[:10]}"
                self.call("cancel", cid, "DELETE", "/proxy/binance/api/v3/order?" +
                          signed(f"symbol=BTCUSDT&orderId={order_id}&newClientOrderId={cid}"),
                          headers=self.binance_headers())
            else:
                cid = f"co-{n}-{i}-{uuid.uuid4().hex[:10]}"
                if rng.random() < 0.05:  # within the caps (9.99 USD), refused by the venue: the reservation goes back
                    quantity, price = fx.BINANCE_REJECT_QUANTITY, "0.01"
                else:
                    quantity, price = rng.choice(["0.0001", "0.00012", "0.00015", "0.0002"]), "50000.00"  # 5 to 10 USD
                outcome, body = self.call(
                    "order", cid, "POST", "/proxy/binance/api/v3/order", headers=self.binance_headers(),
                    data=signed(f"symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity={quantity}&price={price}"
                                f"&newClientOrderId={cid}"), note_refusal=True)
                if outcome == 200 and body and body.get("status") == "NEW":
                    open_orders.append(body["orderId"])
            self.stop_traffic.wait(pace * rng.uniform(0.5, 1.5))

    def read_worker(self, n):
        rng = random.Random(f"{SEED}/reads/{n}")
        while not self.stop_traffic.is_set():
            choice = rng.random()
            if choice < 0.4:
                self.call("read", "account", "GET", "/proxy/binance/api/v3/account?" + signed(""), headers=self.binance_headers())
            elif choice < 0.6:
                self.call("read", "openOrders", "GET", "/proxy/binance/api/v3/openOrders?" + signed("symbol=BTCUSDT"),
                          headers=self.binance_headers())
            else:
                self.call("public", "ticker", "GET", "/proxy/binance/api/v3/ticker/price?symbol=BTCUSDT",
                          headers=self.binance_headers())
            self.stop_traffic.wait(0.01)

    def service_worker(self, n):
        rng = random.Random(f"{SEED}/service/{n}")
        headers = {"X-Warden-Key": self.key}
        while not self.stop_traffic.is_set():
            path = f"/calls/{n}/{uuid.uuid4().hex}"
            if rng.random() < 0.3:
                self.call("post", path, "POST", "/proxy/desk" + path, headers=headers, data=b"{}")
            else:
                self.call("get", path, "GET", "/proxy/desk" + path, headers=headers)
            self.stop_traffic.wait(0.005)

    def llm_worker(self):
        headers = {"Authorization": f"Bearer {self.key}"}
        while not self.stop_traffic.is_set():
            self.call("llm", "chat", "POST", "/proxy/openai/v1/chat/completions", headers=headers,
                      json_body={"model": LLM_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5})
            self.stop_traffic.wait(0.02)

    # ------------------------------------------------------------------------------------------- the faults

    def fault(self, name, inject, hold_seconds):
        """Injects a fault, probes /healthz while it lasts, ends it; notes how long until Warden is healthy again."""
        record = {"fault": name, "at_s": self.rel(time.monotonic())}
        began = time.monotonic()
        end = inject()  # returns the callable that ends the fault
        if hold_seconds:
            time.sleep(min(1.5, hold_seconds / 2))
            outcome, body, seconds = self.health()
            record["healthz_during"] = {"status": outcome, "seconds": round(seconds, 3),
                                        "store": body.get("store") if isinstance(body, dict) else None,
                                        "audit": body.get("audit") if isinstance(body, dict) else None}
            time.sleep(max(0.0, began + hold_seconds - time.monotonic()))
        extra = end() or {}
        ended = time.monotonic()
        record.update(extra)
        record["held_s"] = round(ended - began, 3)
        healthy = self.wait_healthy(RECOVERY_BOUND)
        record["healthy_after_s"] = None if healthy is None else round(healthy, 3)
        if healthy is None or healthy > 2:
            record["healthz_probes_after"] = self.probes
        if self.ensure_alive():
            record["warden_crashed"] = self.crash_notes[-1]
        elif healthy is None:
            # Wedged: what an operator would do, so the run goes on (the rows this loses are not excused).
            outcome, body, seconds = self.health()
            record["wedged"] = {"healthz": outcome, "body": body, "seconds": round(seconds, 3), "log": str(self.server.log_path)}
            self.rescues.append(time.monotonic())
            self.server.proc.send_signal(signal.SIGKILL)
            self.server.proc.wait()
            self.server.log.close()
            self.boot()
        record["_ended"] = ended
        self.faults.append(record)
        return record

    def kill_and_restart(self):
        def inject():
            self.kill9()

            def end():
                began = time.monotonic()
                self.boot()
                return {"restart_s": round(time.monotonic() - began, 3)}
            return end
        return self.fault("kill -9", inject, 0)

    def sqlite_lock(self, seconds):
        def inject():
            holder = hold_sqlite_lock(self.data / "warden.db", seconds)
            return lambda: holder.join()
        return self.fault(f"sqlite lock {seconds:.1f}s", inject, seconds)

    def pg_restart(self):
        def inject():
            began = time.monotonic()
            self.cluster.restart()
            took = time.monotonic() - began
            return lambda: {"pg_ctl_restart_s": round(took, 3)}
        return self.fault("pg restart -m fast", inject, 0)

    def pg_freeze(self, seconds):
        def inject():
            count = self.cluster.freeze()

            def end():
                self.cluster.thaw()
                return {"processes_stopped": count}
            return end
        return self.fault(f"pg freeze {seconds:.1f}s", inject, seconds)

    # ------------------------------------------------------------------------------------------ the audit

    def rows(self, action):
        rows, before = [], None
        while True:
            params = {"action": action, "limit": 500, **({"before": before} if before else {})}
            r = requests.get(self.world.api + "/audit", headers=self.world.auth, params=params, timeout=30)
            assert r.status_code == 200, r.text
            rows += r.json()["entries"]
            before = r.json().get("next_before")
            if not before:
                return [dict(row, detail=json.loads(row["detail"] or "{}")) for row in rows]


def binance_params(record):
    return dict(parse_qsl(urlsplit(record["path"]).query, keep_blank_values=True)
                + parse_qsl(record["body"].decode("latin-1"), keep_blank_values=True))


def schedule(store_kind, rng):
    """The faults, in order: a minimum set, then more of them (cycled) while the run lasts."""
    if store_kind == "sqlite":
        base = [("kill",), ("lock", rng.uniform(3, 7)), ("kill",), ("lock", rng.uniform(3, 7)), ("kill",)]
        more = [("kill",), ("lock", None)]
    else:
        base = [("kill",), ("restart",), ("freeze", rng.uniform(6, 8)), ("restart",), ("kill",), ("restart",)]
        more = [("restart",), ("kill",), ("freeze", None)]
    return base, more


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_chaos_keeps_the_books_across_kills_and_store_faults(store, start, tmp_path, master_key):
    store_kind = "postgres" if store else "sqlite"
    chaos = Chaos(start, tmp_path, master_key, store)
    rng = random.Random(f"{SEED}/faults/{store_kind}")
    workers = [threading.Thread(target=chaos.order_worker, args=(n, 0.4), daemon=True) for n in range(2)]
    workers += [threading.Thread(target=chaos.read_worker, args=(0,), daemon=True)]
    workers += [threading.Thread(target=chaos.service_worker, args=(n,), daemon=True) for n in range(2)]
    workers += [threading.Thread(target=chaos.llm_worker, daemon=True)]
    watcher = threading.Thread(target=chaos.watch, daemon=True)
    watcher.start()
    traffic_began = time.monotonic()
    for worker in workers:
        worker.start()

    base, more = schedule(store_kind, rng)
    try:
        time.sleep(2)
        plan = list(base)
        while plan or time.monotonic() - traffic_began < SECONDS:
            step = plan.pop(0) if plan else more[rng.randrange(len(more))]
            chaos.ensure_alive()
            if step[0] == "kill":
                chaos.kill_and_restart()
            elif step[0] == "lock":
                chaos.sqlite_lock(step[1] or rng.uniform(2, 7))
            elif step[0] == "restart":
                chaos.pg_restart()
            elif step[0] == "freeze":
                chaos.pg_freeze(step[1] or rng.uniform(6, 8))
            time.sleep(rng.uniform(1.5, 3))
    finally:
        chaos.stop_traffic.set()
        for worker in workers:
            worker.join(CLIENT_TIMEOUT + 10)
        if store is not None:
            store.thaw()
    chaos.ensure_alive()
    chaos.stop_watching.set()
    watcher.join()
    traffic_seconds = time.monotonic() - traffic_began

    # f. A clean stop, on SIGTERM, within STOP_BOUND; it flushes the queued rows.
    problems = [f"warden crashed (exited {note['exit']}) at {note['at_s']} s, log {pathlib.Path(note['log']).name}: {note['last_words']}"
                for note in chaos.crash_notes]
    stopping = time.monotonic()
    try:
        code = chaos.server.stop(signal.SIGTERM, timeout=STOP_BOUND)
        if code != 0:
            problems.append(f"f. warden exited {code} on SIGTERM")
    except AssertionError:
        problems.append(f"f. warden did not stop within {STOP_BOUND} s of SIGTERM (it was killed; log "
                        f"{chaos.server.log_path.name})")
    stop_seconds = time.monotonic() - stopping

    # d. The audit chain verifies.
    verified = warden("audit", "verify", "--data-dir", str(chaos.data), "--config", str(chaos.config), *chaos.store_args,
                      env=chaos.env, timeout=120)
    if verified.returncode != 0:
        problems.append(f"d. warden audit verify exited {verified.returncode}: {verified.stdout}{verified.stderr}")

    # The books, read through the API of a fresh server on the same store.
    chaos.boot()
    chaos.world.login()
    forwards = chaos.rows("gateway.forward")
    results = chaos.rows("gateway.result")
    trading = chaos.world.trading()
    chaos.server.stop()

    forward_by_request = {row["detail"].get("request"): row for row in forwards}
    result_requests = {row["detail"].get("request") for row in results}
    forward_orders = {}
    for row in forwards:
        if row["detail"].get("class") == "order":
            forward_orders.setdefault(row["detail"].get("client_order_id"), []).append(row["detail"])
    forward_posts = {row["detail"].get("path") for row in forwards if row["target"] == "desk"}
    cancel_rows = [row for row in forwards if row["detail"].get("class") == "cancel"]

    calls = [c for c in chaos.calls if c.kind != "health"]

    def kill_within(t, before, after=0.0):
        """The first kill -9 in [t - after, t + before], if any."""
        return next((k for k in chaos.kills if t - after <= k <= t + before), None)

    # a. Every acknowledged call has its row.
    lost, unexplained = [], []
    for c in calls:
        if not c.ok:
            continue
        if c.kind in ACTS:
            row = forward_by_request.get(c.request_id)
            if row is None:
                problems.append(f"a. an acknowledged {c.kind} ({c.ident}, request {c.request_id}, answered at "
                                f"{chaos.rel(c.ended)} s) has no gateway.forward row")
            elif c.kind == "order" and row["detail"].get("client_order_id") != c.ident:
                problems.append(f"a. order {c.ident}'s row names {row['detail'].get('client_order_id')}")
        elif c.request_id not in result_requests:
            k = kill_within(c.ended, LOSS_WINDOW, after=KILL_SKEW)
            if k is None:
                unexplained.append(c)
            else:
                lost.append(round(k - c.ended, 3))
    if unexplained:
        first, last = chaos.rel(unexplained[0].ended), chaos.rel(unexplained[-1].ended)
        crashes = [chaos.rel(t) for t in chaos.crashes]
        problems.append(
            f"a. {len(unexplained)} acknowledged reads/LLM calls (answered between {first} s and {last} s) have no "
            f"gateway.result row, and no kill -9 came within {LOSS_WINDOW} s after (or {KILL_SKEW} s before) their "
            f"answer (kills at {[chaos.rel(k) for k in chaos.kills]} s; crashes at {crashes} s); e.g. " + "; ".join(
                f"{c.kind} {c.ident} request {c.request_id} answered at {chaos.rel(c.ended)} s" for c in unexplained[:5]))

    # b. No venue saw an unaudited call.
    venue_orders = [r for r in chaos.binance.requests if r["method"] == "POST" and r["path"].split("?")[0] == "/api/v3/order"]
    for r in venue_orders:
        cid = binance_params(r).get("newClientOrderId")
        if cid not in forward_orders:
            problems.append(f"b. the venue received order {cid} (at {chaos.rel(r['t'])} s) with no gateway.forward row")
    venue_cancels = [r for r in chaos.binance.requests if r["method"] == "DELETE"]
    if len(venue_cancels) > len(cancel_rows):
        problems.append(f"b. the venue received {len(venue_cancels)} cancels, only {len(cancel_rows)} have a forward row")
    venue_posts = [r for r in chaos.service.requests if r["method"] != "GET"]
    for r in venue_posts:
        if r["path"] not in forward_posts:
            problems.append(f"b. the service received {r['method']} {r['path']} (at {chaos.rel(r['t'])} s) with no "
                            "gateway.forward row")
    result_paths = {row["detail"].get("path") for row in results if row["target"] == "desk"}
    unaudited_reads, unexcused = 0, []
    for r in chaos.service.requests:
        if r["method"] == "GET" and r["path"] not in result_paths:
            if kill_within(r["t"], CRASH_REACH) is None:
                unexcused.append(r)
            unaudited_reads += 1
    if unexcused:
        problems.append(f"b. the service received {len(unexcused)} GETs that have no row, none within {CRASH_REACH} s "
                        f"before a kill -9 (received between {chaos.rel(unexcused[0]['t'])} s and "
                        f"{chaos.rel(unexcused[-1]['t'])} s), e.g. " + ", ".join(r["path"] for r in unexcused[:3]))
    # Reads and LLM calls the venue saw but whose rows a kill lost: at most those that reached it just before a kill.
    for fake, target, match in ((chaos.binance, "binance", lambda r: r["method"] == "GET"),
                                (chaos.openai, "openai", lambda r: True)):
        seen = [r for r in fake.requests if match(r)]
        rowed = [row for row in results if row["target"] == target and row["detail"].get("method") == "GET"] \
            if target == "binance" else [row for row in results if row["target"] == target]
        near_kill = [r for r in seen if kill_within(r["t"], CRASH_REACH) is not None]
        missing = len(seen) - len(rowed)
        if missing > len(near_kill):
            problems.append(f"b. {target} saw {len(seen)} reads, {len(rowed)} have rows: {missing} missing, more than "
                            f"the {len(near_kill)} that reached it shortly before a kill -9")
        unaudited_reads += max(0, missing)

    # c. The cap holds and Warden holds at least what the venue accepted.
    accepted = [o for o in chaos.binance.state["orders"].values()]
    venue_usd = sum(float(o["price"]) * float(o["origQty"]) for o in accepted)
    for o in accepted:
        value = float(o["price"]) * float(o["origQty"])
        reserved = [float(d.get("notional_usd", "nan")) for d in forward_orders.get(o["clientOrderId"], [])
                    if d.get("retry") != "true" and d.get("mode") == "live"]
        if not reserved or max(reserved) < value - 0.005:
            problems.append(f"c. the venue accepted {o['clientOrderId']} worth {value:.2f} USD; Warden reserved {reserved}")
    if venue_usd > DAILY_CAP_USD + 0.005:
        problems.append(f"c. the venue accepted {venue_usd:.2f} USD > daily_cap_usd {DAILY_CAP_USD}")
    if trading["live_usd"] < venue_usd - 0.005:
        problems.append(f"c. Warden holds {trading['live_usd']} USD of live notional < {venue_usd:.2f} USD the venue accepted")
    cap_refusals = sum(1 for c in calls if c.kind == "order" and c.outcome == 403 and "daily_cap_usd" in (c.note or ""))
    if not cap_refusals:
        problems.append(f"c. the daily cap ({DAILY_CAP_USD} USD) was never reached: the run does not test it")

    # e. No call hung.
    slowest = max(chaos.calls, key=lambda c: c.seconds)
    hung = [c for c in chaos.calls if c.seconds > HANG_BOUND]
    for c in sorted(hung, key=lambda c: -c.seconds)[:10]:
        problems.append(f"e. a {c.kind} call ({c.ident}) took {c.seconds:.1f} s > {HANG_BOUND} s (started at "
                        f"{chaos.rel(c.started)} s, ended {c.outcome})")
    for f in chaos.faults:
        if f["healthy_after_s"] is None:
            problems.append(f"e. after the {f['fault']} at {f['at_s']} s Warden was not healthy again within "
                            f"{RECOVERY_BOUND} s (then killed and restarted): {f.get('wedged')}")
        during = f.get("healthz_during")
        if during and not (isinstance(during["status"], int) and during["seconds"] < 5):
            problems.append(f"e. /healthz during the {f['fault']} at {f['at_s']} s: {during}")

    # The figures.
    def status_counts(kinds):
        counts = {}
        for c in calls:
            if c.kind in kinds:
                key = str(c.outcome) if isinstance(c.outcome, int) else c.outcome
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    for f in chaos.faults:
        ended = f.pop("_ended")
        after = [c for c in calls if c.ok and c.started >= ended]
        f["first_2xx_after_s"] = round(min(c.ended for c in after) - ended, 3) if after else None
        window = [c for c in calls if chaos.rel(c.started) >= f["at_s"] and c.started <= ended]
        f["calls_during"] = len(window)
        f["503_during"] = sum(1 for c in window if c.outcome == 503)
    figures = {
        "store": store_kind, "seed": SEED, "seconds": SECONDS, "traffic_seconds": round(traffic_seconds, 1),
        "calls": len(calls),
        "2xx": sum(1 for c in calls if c.ok), "503": sum(1 for c in calls if c.outcome == 503),
        "other": sum(1 for c in calls if not c.ok and c.outcome != 503),
        "by_kind": {kind: status_counts({kind}) for kind in sorted({c.kind for c in calls})},
        "faults": chaos.faults,
        "kills": len(chaos.kills), "crashes": chaos.crash_notes, "rescue_kills": len(chaos.rescues),
        "rows_lost_to_kill9": len(lost), "lost_rows_answered_s_before_kill": sorted(lost),
        "venue_reads_without_row": unaudited_reads,
        "max_call_s": round(slowest.seconds, 3), "max_call": f"{slowest.kind} {slowest.ident} -> {slowest.outcome}",
        "calls_over_5s": sum(1 for c in chaos.calls if c.seconds > 5),
        "sigterm_stop_s": round(stop_seconds, 3),
        "venue_orders_received": len(venue_orders), "venue_orders_accepted": len(accepted),
        "venue_accepted_usd": round(venue_usd, 2), "warden_live_usd": trading["live_usd"],
        "daily_cap_usd": DAILY_CAP_USD, "cap_refusals": cap_refusals,
        "held_not_at_venue_usd": round(trading["live_usd"] - venue_usd, 2),
        "venue_cancels": len(venue_cancels), "cancel_rows": len(cancel_rows),
        "service_posts": len(venue_posts), "forward_rows": len(forwards), "result_rows": len(results),
        "warden_logs": chaos.logs,
        "problems": problems,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"chaos-{store_kind}.json"
    if problems:  # pytest's tmp directories rotate: keep the logs beside the figures
        kept = RESULTS_DIR / f"chaos-{store_kind}-logs"
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir()
        for log in chaos.logs:
            shutil.copy(log, kept)
        figures["warden_logs"] = [str(kept / pathlib.Path(log).name) for log in chaos.logs]
    out.write_text(json.dumps(figures, indent=2, default=str))
    print(f"\nchaos {store_kind} {tag()}: {json.dumps({k: v for k, v in figures.items() if k not in ('faults', 'warden_logs')}, default=str)}")
    for f in chaos.faults:
        print("  fault", json.dumps(f, default=str))
    print(f"  figures written to {out}")
    assert not problems, tag() + f" ({len(problems)} problems; figures in {out}; logs {figures['warden_logs']}):\n  " + "\n  ".join(problems[:40])
