"""Fail-closed promises under a stalled SQLite store, from the side of an agent that tries to get past them.

docs/gateway.md (What happens to each call, step 6): a call that can change something at the venue (... a wallet call ...) gets a gateway.forward
row committed durably before it is sent; no call is sent after its client disconnected or more than
[gateway] send_deadline_seconds after its request was read in full."""
import time

import requests

import fake_exchanges as fx
from test_faults import hold_sqlite_lock
from test_polymarket_signing import agent_key, fake, l1_call, make_world, l1_signatures  # noqa: F401 (fixtures)


def _world(start, tmp_path, master_key, fake, extra=()):
    world = make_world(start, tmp_path, master_key, fake, extra_config=extra)
    agent = agent_key(world)
    # Prime the key cache with a level-2 read, so that admission needs no store query while the lock is held.
    r = requests.get(world.url + "/proxy/polymarket/data/orders", headers={"X-Warden-Key": agent}, timeout=10)
    assert r.status_code == 200, r.text
    time.sleep(1.2)  # let last_used_at and the audit rows settle
    return world, agent


def _l1_seen(fake):
    return [r for r in fake.requests if r["method"] == "POST" and r["path"].split("?")[0] == "/auth/api-key"]


def test_a_level_one_call_is_not_sent_after_its_client_has_gone(start, tmp_path, master_key, fake):
    """POST /auth/api-key (mints new level-2 credentials at the venue) waits for its durable row while another process
    holds SQLite's write lock; the client gives up after 1 s. When the lock goes, the row commits and Warden sends the
    call anyway: TradingPolicy.walletAuth never checks the client or the send deadline after audit.append."""
    world, agent = _world(start, tmp_path, master_key, fake)
    before = len(_l1_seen(fake))
    holder = hold_sqlite_lock(tmp_path / "data" / "warden.db", 3)
    from py_clob_client.headers.headers import create_level_1_headers
    from py_clob_client.signer import Signer
    from test_polymarket_signing import THROWAWAY_KEY, CHAIN_ID
    headers = {"X-Warden-Key": agent, **create_level_1_headers(Signer(THROWAWAY_KEY, CHAIN_ID), 8)}
    gone_at = None
    try:
        requests.post(world.url + "/proxy/polymarket/auth/api-key", headers=headers, timeout=1)
    except requests.exceptions.ReadTimeout:
        gone_at = time.monotonic()
    assert gone_at is not None, "the call was answered within 1 s (the lock did not hold it)"
    holder.join()
    time.sleep(1.5)
    after = _l1_seen(fake)[before:]
    assert not after, (f"the venue received {len(after)} level-1 call(s) (new API credentials minted, nonce "
                       f"{[r['headers'].get('poly_nonce') for r in after]}) after the client had disconnected")


def test_a_level_one_call_is_not_sent_past_the_send_deadline(start, tmp_path, master_key, fake):
    """With send_deadline_seconds = 1, a level-1 call held by a 3 s SQLite lock must be refused, never sent."""
    world, agent = _world(start, tmp_path, master_key, fake, extra=("[gateway]", "send_deadline_seconds = 1"))
    holder = hold_sqlite_lock(tmp_path / "data" / "warden.db", 3)
    started = time.monotonic()
    r = l1_call(world, "POST", "/auth/api-key", agent, nonce=9)
    elapsed = time.monotonic() - started
    holder.join()
    time.sleep(0.5)
    seen = _l1_seen(fake)
    assert not seen, (f"the venue received POST /auth/api-key {elapsed:.1f} s after the request was read in full "
                      f"(send_deadline_seconds = 1); Warden answered {r.status_code}")


def stop_during_a_stall(start, tmp_path, master_key, lock_seconds):
    """A read is forwarded (the venue sees it) while another process holds SQLite's write lock, so its
    gateway.result row waits in the queue; SIGTERM comes 6 s into the lock. Returns (path, exit code, log, rows)."""
    import json
    import signal
    import sqlite3
    from test_faults import Desk
    desk = Desk(start, tmp_path, master_key, extra_config="[server]\nshutdown_grace_seconds = 10\n")
    assert desk.call()[1] == 200
    time.sleep(1.2)
    holder = hold_sqlite_lock(desk.sqlite_path, lock_seconds)
    path, status, _ = desk.call()
    assert status == 200 and path in desk.seen()  # forwarded: the venue saw it
    time.sleep(6)  # the writer's first commit attempt has failed (busy timeout 5 s)
    desk.server.proc.send_signal(signal.SIGTERM)
    desk.server.proc.wait(timeout=60)
    holder.join()
    db = sqlite3.connect(str(desk.sqlite_path))
    paths = {json.loads(d or "{}").get("path") for (d,) in db.execute("SELECT detail FROM audit WHERE action = 'gateway.result'")}
    db.close()
    return path, desk.server.proc.returncode, desk.server.output(), paths


def test_a_stop_during_a_stall_waits_for_the_store_and_keeps_the_rows_of_calls_the_venue_saw(start, tmp_path, master_key):
    """The lock goes 3 s after SIGTERM, within the 10 s grace: the stop waits for it, writes the row, exits 0."""
    path, code, log, paths = stop_during_a_stall(start, tmp_path, master_key, lock_seconds=9)
    assert code == 0, log[-2000:]
    assert path in paths, "the venue saw a call whose row a clean stop did not write"


def test_a_stop_that_cannot_write_its_rows_fails_and_says_how_many(start, tmp_path, master_key):
    """The lock outlasts the grace: the stop cannot write the row, and says so (exit 1, the count in one line)
    rather than reporting a clean stop."""
    path, code, log, paths = stop_during_a_stall(start, tmp_path, master_key, lock_seconds=25)
    assert path not in paths
    assert code == 1, log[-2000:]
    assert "audit rows could not be written before the stop" in log, log[-2000:]


def test_the_gateway_reopens_after_a_failed_commit_of_only_durable_rows(start, tmp_path, master_key):
    """A write (durable gateway.forward row) is the only traffic while another process holds SQLite's write lock
    for 7 s: its batch fails after the 5 s busy timeout, the caller gets 503 and its row is dropped (rightly: not
    sent). The queue is then empty, AuditWriter.failure stays set, and nothing ever queues a row again (refusals
    while unhealthy are only counted), so the drain never retries: the gateway answers 503 to every call, and
    /healthz says 503, for ever after the store is fine again."""
    from test_faults import Desk
    desk = Desk(start, tmp_path, master_key)
    assert desk.call()[1] == 200
    time.sleep(1.2)
    holder = hold_sqlite_lock(desk.sqlite_path, 7)
    _, status, seconds = desk.call("POST", timeout=30)
    assert status == 503, status
    holder.join()
    time.sleep(3)  # the store has been free for 3 s
    statuses = []
    for _ in range(10):
        statuses.append(desk.call()[1])
        time.sleep(1)
    health = requests.get(desk.server.url + "/healthz", timeout=5)
    assert 200 in statuses, (f"13 s after the lock was released every call is still refused: {statuses}; "
                             f"/healthz {health.status_code} {health.text}")
