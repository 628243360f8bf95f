"""The vault over years, through the real binary: rotating its key (also killed at random moments), recovery
shares, the process hardening of `warden serve`, audit export with offline verification, and pruning behind a
signed checkpoint.

Every gateway call goes to local fakes: the OpenAI fake accepts only the real key, the REST service fake only
tokens `tok-…` and records which one it saw, so a call that succeeds proves the credential was opened.
"""
import collections
import concurrent.futures
import hashlib
import hmac
import json
import os
import pathlib
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import stat
import struct
import subprocess
import tempfile
import time

import pytest
import requests

import fakes
from conftest import BINARY, clean_env, free_port, port_open, warden

ADMIN, ADMIN_PASSWORD = "admin@example.com", "admin-password-1"
PLAIN, PLAIN_PASSWORD = "plain@example.com", "plain-password-1"
MODEL = "gpt-test"
ROTATED_OUT = "warden: the key does not unseal this vault: its key was rotated and is now version {}; an older key opens nothing"
SEED = int(os.environ.get("WARDEN_ROTATION_SEED", "0")) or random.randrange(1, 10**6)


def keygen():
    return warden("keygen").stdout.strip()


def token_service(h, body):
    """A REST service that takes any token `tok-…` (the fake records which); answers without Nagle's delay."""
    h.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if not h.headers.get("X-Api-Token", "").startswith("token tok-"):
        return fakes.send_json(h, 401, {"message": "Bad credentials"})
    fakes.send_json(h, 200, {"path": h.path})


class Vault:
    """A data directory, its configuration (OpenAI and `services` REST services on local fakes), an admin and a
    plain user, and the CLI and API around them."""

    def __init__(self, start, tmp_path, services=2):
        self._start = start
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.key = keygen()
        self.openai = fakes.Fake(fakes.openai_handler())
        self.service = fakes.Fake(token_service)
        self.services = [f"s{i}" for i in range(services)]
        self.config = tmp_path / "warden.toml"
        self.config.write_text(self.config_text())
        for email, password, admin in ((ADMIN, ADMIN_PASSWORD, ["--admin"]), (PLAIN, PLAIN_PASSWORD, [])):
            made = self.cli("user", "create", email, password, "--no-reset", *admin)
            assert made.returncode == 0, made.stderr
        self.server = None

    def config_text(self, extra=""):
        text = f'[venues.openai]\nbase_url = "{self.openai.url}"\n\n[prices.openai]\n"{MODEL}" = {{ input = 0, output = 0 }}\n\n'
        for name in self.services:
            text += (f'[services.{name}]\nbase_url = "{self.service.url}"\nauth_header = "X-Api-Token"\n'
                     'auth_value_prefix = "token "\n\n')
        return text + extra

    def cli(self, *args, key=None, new_key=None, data=None):
        env = {} if key == "" else {"WARDEN_MASTER_KEY": key or self.key}  # "": no key at all
        if new_key:
            env["WARDEN_NEW_MASTER_KEY"] = new_key
        return warden(*args, "--data-dir", str(data or self.data), "--config", str(self.config), env=env)

    def rotate(self, new_key):
        """Rotates to `new_key` (which becomes `self.key`); returns how many sealed values were re-wrapped."""
        rotated = self.cli("vault", "rotate", new_key=new_key)
        assert rotated.returncode == 0, rotated.stderr
        found = re.search(r"vault key rotated: version (\d+) → (\d+), (\d+) sealed values re-wrapped\.", rotated.stdout)
        assert found, rotated.stdout
        assert int(found.group(2)) == int(found.group(1)) + 1
        assert self.key not in rotated.stdout + rotated.stderr and new_key not in rotated.stdout + rotated.stderr
        self.key = new_key
        return int(found.group(3))

    def serve(self, env=None, args=(), config=None, data=None):
        self.server = self._start(env or {"WARDEN_MASTER_KEY": self.key}, data_dir=data or self.data,
                                  args=("--config", str(config or self.config), *args))
        self.token = self.login(ADMIN, ADMIN_PASSWORD)
        return self.server

    def stop(self):
        assert self.server.stop() == 0, self.server.output()[-3000:]

    def login(self, email, password):
        answer = requests.post(self.server.url + "/api/v1/auth/login", json={"email": email, "password": password}, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def api(self, method, path, token=None, session=requests, **kw):
        return session.request(method, self.server.url + "/api/v1" + path, timeout=10,
                               headers={"Authorization": f"Bearer {token or self.token}"}, **kw)

    def credential(self, venue, secret, session=requests):
        made = self.api("POST", "/credentials", json={"venue": venue, "label": venue, "secret": secret}, session=session)
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def agent_key(self, credential_ids, session=requests):
        made = self.api("POST", "/agent-keys", json={"name": "k", "credential_ids": credential_ids, "access": "trade"},
                        session=session)
        assert made.status_code == 201, made.text
        return made.json()["key"]

    def chat(self, agent_key):
        """An OpenAI call through the gateway: the fake answers only with the real key."""
        answer = requests.post(self.server.url + "/proxy/openai/v1/chat/completions", timeout=10,
                               headers={"Authorization": f"Bearer {agent_key}"},
                               json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "Hello from the fake model"
        assert self.openai.requests[-1]["headers"]["authorization"] == f"Bearer {fakes.REAL_OPENAI_KEY}"

    def service_call(self, agent_key, venue, session=requests):
        """A REST service call through the gateway; returns the token the service saw."""
        path = f"/repos/{random.randrange(10**9)}"
        answer = session.get(self.server.url + f"/proxy/{venue}{path}", headers={"X-Warden-Key": agent_key}, timeout=10)
        assert answer.status_code == 200, answer.text
        seen = next(r for r in reversed(self.service.requests) if r["path"] == path)
        return seen["headers"]["x-api-token"].removeprefix("token ")

    def close(self):
        self.openai.stop()
        self.service.stop()


@pytest.fixture
def vault(start, tmp_path):
    v = Vault(start, tmp_path)
    yield v
    v.close()


def boot_refused(vault, env):
    """`warden serve` that must exit 1 without opening its port; returns its stderr."""
    port = free_port()
    proc = subprocess.Popen([str(BINARY), "serve", "--data-dir", str(vault.data), "--config", str(vault.config),
                             "--listen", f"127.0.0.1:{port}"], env=clean_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    opened = False
    while proc.poll() is None:
        opened = opened or port_open(port)
        time.sleep(0.01)
    err = proc.communicate()[1]
    assert proc.returncode == 1, err
    assert not opened, "the port was opened before refusing"
    return err


def audit_rows(vault, key=None):
    """The audit rows as exported (the export is checked against the store in test_export_…)."""
    exported = vault.cli("audit", "export", key=key)
    assert exported.returncode == 0, exported.stderr
    return [line for line in map(json.loads, exported.stdout.splitlines()) if line["type"] == "row"]


# ------------------------------------------------------------------------------------------------- rotation

def test_rotation_the_old_key_opens_nothing_and_the_new_one_serves_every_credential(vault):
    old = vault.key
    vault.serve()
    ids = [vault.credential("openai", {"api_key": fakes.REAL_OPENAI_KEY}),
           vault.credential("s0", {"token": "tok-s0"}), vault.credential("s1", {"token": "tok-s1"})]
    agent = vault.agent_key(ids)
    vault.chat(agent)
    assert [vault.service_call(agent, s) for s in ("s0", "s1")] == ["tok-s0", "tok-s1"]
    session = vault.token
    fingerprints = {c["id"]: c["fingerprint"] for c in vault.api("GET", "/credentials").json()["credentials"]}
    vault.stop()

    new = keygen()
    assert vault.rotate(new) == len(ids)  # the credentials (a first rotation has no older audit epoch keys)
    # Run again with the same two keys: nothing left to do.
    again = vault.cli("vault", "rotate", key=old, new_key=new)
    assert again.returncode == 0, again.stderr
    assert "the vault already opens with the new key (version 2): the rotation is complete" in again.stdout

    # The old key opens nothing: neither a boot nor the CLI.
    err = boot_refused(vault, {"WARDEN_MASTER_KEY": old})
    assert ROTATED_OUT.format(2) in err, err
    verified = vault.cli("audit", "verify", key=old)
    assert verified.returncode == 1 and ROTATED_OUT.format(2) in verified.stderr, verified.stderr

    # The new key serves every credential, to the agent key made before the rotation. Sessions end (their
    # signing key is replaced): people log in again.
    server = vault.serve()
    vault.chat(agent)
    assert [vault.service_call(agent, s) for s in ("s0", "s1")] == ["tok-s0", "tok-s1"]
    assert vault.api("GET", "/me", token=session).status_code == 401
    assert vault.api("GET", "/me").status_code == 200
    # Fingerprints outlive the rotation: the same secret added now is recognised as the same.
    assert {c["id"]: c["fingerprint"] for c in vault.api("GET", "/credentials").json()["credentials"]} == fingerprints
    again_id = vault.credential("s1", {"token": "tok-s0"})
    listed = {c["id"]: c["fingerprint"] for c in vault.api("GET", "/credentials").json()["credentials"]}
    assert listed[again_id] == fingerprints[ids[1]]
    time.sleep(1.2)  # the calls' audit rows are written within about a second
    verified = vault.cli("audit", "verify")
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout, verified.stderr
    rows = audit_rows(vault)
    rotation = [r for r in rows if r["action"] == "vault.rotated"]
    assert len(rotation) == 1 and rotation[0]["epoch"] == 2
    assert {r["epoch"] for r in rows if r["seq"] < rotation[0]["seq"]} == {1}
    assert {r["epoch"] for r in rows if r["seq"] > rotation[0]["seq"]} == {2}
    vault.stop()


def test_a_server_still_on_the_rotated_out_key_refuses_until_restarted(vault):
    vault.config.write_text(vault.config_text("[server]\nshutdown_grace_seconds = 1\n"))  # its stop waits for unwritten rows
    vault.serve()
    credential = vault.credential("s0", {"token": "tok-s0"})
    agent = vault.agent_key([credential])
    assert vault.service_call(agent, "s0") == "tok-s0"
    time.sleep(1.2)  # the call's audit row is written within about a second
    stale = vault.server
    vault.rotate(keygen())
    # The server notices within its store poll or at its next audit write (a call may go out before) ...
    first = requests.get(stale.url + "/proxy/s0/repos/first", headers={"X-Warden-Key": agent}, timeout=10)
    assert first.status_code in (200, 503), first.text
    time.sleep(1.2)
    # ... and from then on refuses gateway calls and management writes (503), and /healthz says why.
    refused = requests.get(stale.url + "/proxy/s0/repos/x", headers={"X-Warden-Key": agent}, timeout=10)
    assert refused.status_code == 503, refused.text
    assert not any(r["path"] == "/repos/x" for r in vault.service.requests)
    write = vault.api("POST", "/credentials", json={"venue": "s1", "label": "late", "secret": {"token": "tok-late"}})
    health = requests.get(stale.url + "/healthz", timeout=10)
    stale.stop()  # exit status 1 when the first call's rows could not be written: it names them in its log
    with sqlite3.connect(vault.data / "warden.db") as db:
        assert db.execute("SELECT count(*) FROM credentials WHERE label = 'late'").fetchone()[0] == 0

    # Restarted with the new key, it serves again; the chain verifies.
    vault.serve()
    assert vault.service_call(agent, "s0") == "tok-s0"
    vault.stop()
    verified = vault.cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    # What operations.md promises of the stale server's answers.
    assert (write.status_code, write.json().get("code")) == (503, "vault_rotated"), write.text
    assert health.status_code == 503 and health.json()["vault"] == "rotated", health.text


def test_rotation_killed_at_random_moments_leaves_exactly_one_key_working(start, tmp_path):
    """Many sealed values, so a rotation takes measurable time; kill -9 it at random moments, from before it
    printed anything to after its normal duration: exactly one of the two keys opens the vault every time."""
    vault = Vault(start, tmp_path, services=10)
    try:
        vault.serve()
        session = requests.Session()
        per_service = 30
        ids = {s: [vault.credential(s, {"token": f"tok-{s}-{i}"}, session=session) for i in range(per_service)]
               for s in vault.services}
        agents = [vault.agent_key([ids[s][i] for s in vault.services], session=session) for i in range(per_service)]
        vault.stop()

        started = time.monotonic()
        vault.rotate(keygen())
        duration = time.monotonic() - started
        rng = random.Random(SEED)
        outcomes = collections.Counter()
        current, new = vault.key, keygen()
        for attempt in range(16):
            proc = subprocess.Popen([str(BINARY), "vault", "rotate", "--data-dir", str(vault.data)],
                                    env=clean_env({"WARDEN_MASTER_KEY": current, "WARDEN_NEW_MASTER_KEY": new}),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if attempt % 4:
                time.sleep(rng.uniform(0, 1.5 * duration))  # else killed at once, before it printed anything
            proc.kill()
            out, err = proc.communicate()
            assert proc.returncode in (0, -signal.SIGKILL), err
            opens = [k for k in (current, new) if vault.cli("audit", "verify", key=k).returncode == 0]
            assert len(opens) == 1, (f"seed {SEED}, attempt {attempt}: {len(opens)} of the two keys open the vault "
                                     f"(rotate said {out!r} {err!r})")
            if opens == [new]:
                outcomes["committed, then killed" if proc.returncode else "finished before the kill"] += 1
                finished = vault.cli("vault", "rotate", key=current, new_key=new)
                assert finished.returncode == 0 and "the rotation is complete" in finished.stdout, finished
                current, new = new, keygen()
            else:
                outcomes["untouched"] += 1
        print(f"rotation of {len(vault.services) * per_service} credentials takes {duration * 1000:.0f} ms; "
              f"killed at random (seed {SEED}): {dict(outcomes)}")
        assert outcomes["untouched"] >= 1

        # Rerun to completion with the last pair: it finishes the job.
        vault.key = current
        vault.rotate(new)
        verified = vault.cli("audit", "verify")
        assert verified.returncode == 0 and "audit chain intact" in verified.stdout, verified.stderr
        version = 2 + outcomes["committed, then killed"] + outcomes["finished before the kill"] + 1
        assert sum(r["action"] == "vault.rotated" for r in audit_rows(vault)) == version - 1
        with sqlite3.connect(vault.data / "warden.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

        # Every credential still opens, for the agent keys made before all the rotations: each call to each
        # service reaches it with that credential's token.
        vault.serve()
        calls = [(agents[i], s) for i in range(per_service) for s in vault.services]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda call: vault.service_call(*call), calls))
        assert seen == [f"tok-{s}-{i}" for i in range(per_service) for s in vault.services]
        vault.stop()
    finally:
        vault.close()


# ----------------------------------------------------------------------------------------- recovery shares

def test_recovery_shares_any_three_of_five_unseal_two_do_not_a_bad_one_is_named(vault, tmp_path):
    vault.serve()
    credential = vault.credential("openai", {"api_key": fakes.REAL_OPENAI_KEY})
    agent = vault.agent_key([credential])
    vault.stop()

    split = vault.cli("vault", "split", "--shares", "5", "--threshold", "3")
    assert split.returncode == 0, split.stderr
    shares = [line for line in split.stdout.splitlines() if line.startswith("ws1-")]
    assert len(shares) == 5 and len(set(shares)) == 5, split.stdout
    assert all(s.startswith(f"ws1-3-{i}-") for i, s in enumerate(shares, 1)), shares
    assert vault.key not in split.stdout
    files = []
    for i, share in enumerate(shares, 1):
        files.append(tmp_path / f"share{i}.txt")
        files[-1].write_text(share + "\n")

    def share_args(*indexes):
        return [arg for i in indexes for arg in ("--share-file", str(files[i]))]

    # Three different subsets: each unseals without the key, the gateway opens the credential, the boot is logged.
    together = tmp_path / "three-in-one.txt"
    together.write_text(f"{shares[4]}\n\n{shares[0]}\n{shares[2]}\n")
    for args in (share_args(0, 1, 2), share_args(2, 3, 4), ["--share-file", str(together)]):
        server = vault.serve(env={}, args=("--recover", *args))
        assert requests.get(server.url + "/healthz", timeout=10).json()["vault"] == "unsealed"
        vault.chat(agent)
        vault.stop()
        critical = [l for l in server.output().splitlines() if " critical " in l]
        assert len(critical) == 1 and "recovery shares" in critical[0] and "rotate" in critical[0], server.output()
        assert not any(s in server.output() for s in shares)
    rows = audit_rows(vault)
    assert sum(r["action"] == "vault.recovery_boot" for r in rows) == 3
    assert sum(r["action"] == "vault.split" for r in rows) == 1
    assert not any(s[7:] in json.dumps(rows) for s in shares)

    # Two shares: refused, by recover and by serve.
    two = vault.cli("vault", "recover", *share_args(0, 3), new_key=keygen())
    assert two.returncode == 1 and "3 shares are needed and 2 were given" in two.stderr, two.stderr
    err = boot_refused(vault, {})
    assert "WARDEN_MASTER_KEY" in err  # no key and no --recover
    port = free_port()
    served = warden("serve", "--recover", *share_args(1, 4), "--data-dir", str(vault.data), "--config", str(vault.config),
                    "--listen", f"127.0.0.1:{port}")
    assert served.returncode == 1 and "3 shares are needed and 2 were given" in served.stderr, served.stderr

    # A mistyped share is named, with its file; so is one from another vault's split.
    typo = tmp_path / "typo.txt"
    digit = len(shares[2]) - 3
    typo.write_text(shares[2][:digit] + ("0" if shares[2][digit] != "0" else "1") + shares[2][digit + 1:] + "\n")
    bad = vault.cli("vault", "recover", *share_args(0, 1), "--share-file", str(typo), new_key=keygen())
    assert bad.returncode == 1, bad.stderr
    assert f"{typo}: share 3 does not check out: it was mistyped, or it belongs to another vault" in bad.stderr, bad.stderr
    other = ("--data-dir", str(tmp_path / "other"))
    other_key = {"WARDEN_MASTER_KEY": keygen()}
    assert warden("user", "create", "o@example.com", "other-password-1", *other, env=other_key).returncode == 0
    split = warden("vault", "split", "--shares", "3", "--threshold", "3", *other, env=other_key)
    foreign = tmp_path / "foreign.txt"
    foreign.write_text(next(l for l in split.stdout.splitlines() if l.startswith("ws1-3-3-")) + "\n")
    mixed = vault.cli("vault", "recover", *share_args(0, 1), "--share-file", str(foreign), new_key=keygen())
    assert mixed.returncode == 1 and "does not check out" in mixed.stderr and "foreign.txt" in mixed.stderr, mixed.stderr
    assert vault.cli("audit", "verify").returncode == 0  # none of the refusals touched the vault

    # `vault recover` rotates at once: the new key opens, the old key and the old shares open nothing.
    old, new = vault.key, keygen()
    recovered = vault.cli("vault", "recover", *share_args(1, 3, 4), key="", new_key=new)
    assert recovered.returncode == 0, recovered.stderr
    assert "vault recovered and its key rotated to version 2" in recovered.stdout, recovered.stdout
    vault.key = new
    assert vault.cli("audit", "verify", key=old).returncode == 1
    stale = warden("serve", "--recover", *share_args(0, 1, 2), "--data-dir", str(vault.data), "--config", str(vault.config),
                   "--listen", f"127.0.0.1:{free_port()}")
    assert stale.returncode == 1, stale.stderr
    vault.serve()
    vault.chat(agent)
    vault.stop()


# ------------------------------------------------------------------------------------------ process hardening

def core_files(folder):
    return sorted(p.name for p in folder.iterdir() if p.name == "core" or p.name.startswith("core."))


def test_the_server_leaves_no_core_dump_and_is_undumpable(tmp_path, master_key):
    """Run as an unprivileged user (nobody, when the tests run as root) with core dumps allowed, in a folder of
    its own: a control process dumps core there; the server's limit reads 0, its /proc files belong to root
    (the kernel's sign of PR_SET_DUMPABLE 0), and SIGABRT ends it at once (no crash reporter keeps it frozen)
    and leaves no core."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        import pwd
        uid, gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid

    def unprivileged_with_cores():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        if os.getuid() != uid:
            os.setgid(gid)
            os.setuid(uid)

    base = pathlib.Path(tempfile.mkdtemp(prefix="warden-core-"))  # tmp_path's parents are private to root
    try:
        control, cwd = base / "control", base / "cwd"
        for folder in (base, control, cwd):
            folder.mkdir(exist_ok=True)
            os.chown(folder, uid, gid)
        pattern = pathlib.Path("/proc/sys/kernel/core_pattern").read_text().strip()
        # Controls: an ordinary process of that user, allowed to, dumps core in its folder; its /proc entry is its own.
        subprocess.run(["/bin/sh", "-c", "kill -ABRT $$"], cwd=control, preexec_fn=unprivileged_with_cores, timeout=60)
        if not core_files(control):
            pytest.skip(f"an aborting process leaves no core file here (core_pattern {pattern!r}): nothing to compare with")
        sleeper = subprocess.Popen(["/bin/sleep", "30"], preexec_fn=unprivileged_with_cores)
        try:
            assert os.stat(f"/proc/{sleeper.pid}/status").st_uid == uid
        finally:
            sleeper.kill()
            sleeper.wait()

        port = free_port()
        proc = subprocess.Popen([str(BINARY), "serve", "--data-dir", str(cwd / "data"), "--listen", f"127.0.0.1:{port}"],
                                cwd=cwd, env=clean_env({"WARDEN_MASTER_KEY": master_key}),
                                preexec_fn=unprivileged_with_cores,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.time() + 20
            while not port_open(port):
                if proc.poll() is not None:
                    pytest.fail("warden serve exited: " + proc.stderr.read().decode()[-3000:])
                assert time.time() < deadline, "warden serve did not open its port"
                time.sleep(0.05)
            status = pathlib.Path(f"/proc/{proc.pid}/status").read_text()
            assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
            limits = pathlib.Path(f"/proc/{proc.pid}/limits").read_text()
            assert re.search(r"^Max core file size\s+0\s+0\s", limits, re.M), limits
            assert os.stat(f"/proc/{proc.pid}/status").st_uid == 0, "the server's /proc files are its own: it is dumpable"
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGABRT, proc.returncode
        time.sleep(0.5)
        assert core_files(cwd) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ audit export

def session_cookie(vault, email, password):
    http = requests.Session()
    form = http.get(vault.server.url + "/login", timeout=10).text
    csrf = re.search(r'name="csrf"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf"', form)
    answer = http.post(vault.server.url + "/login", allow_redirects=False, timeout=10, headers={"Origin": vault.server.url},
                       data={"csrf": csrf.group(1) or csrf.group(2), "email": email, "password": password})
    assert answer.status_code in (302, 303), answer.text
    return http


def verify_file(vault, lines, key=None):
    path = vault.tmp / f"export-{random.randrange(10**9)}.jsonl"
    path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return vault.cli("audit", "verify", "--file", str(path), key=key)


def test_export_verifies_offline_and_every_edit_is_caught(vault, tmp_path):
    vault.serve()
    agent = vault.agent_key([vault.credential("openai", {"api_key": fakes.REAL_OPENAI_KEY})])
    vault.chat(agent)
    vault.stop()
    old = vault.key
    vault.rotate(keygen())
    server = vault.serve()
    vault.chat(agent)
    time.sleep(1.2)  # the call's audit rows are written within about a second

    # The API: administrators only; a window from a row's time on verifies as rows a–b.
    api_export = vault.api("GET", "/audit/export")
    assert api_export.status_code == 200 and api_export.headers["Content-Type"].startswith("application/x-ndjson")
    api_lines = api_export.text.splitlines()
    plain = vault.login(PLAIN, PLAIN_PASSWORD)
    assert vault.api("GET", "/audit/export", token=plain).status_code == 403
    rows = [json.loads(l) for l in api_lines if json.loads(l)["type"] == "row"]
    middle = rows[len(rows) // 2]
    window = vault.api("GET", f"/audit/export?since={middle['at']}&until={rows[-1]['at']}").text.splitlines()
    window_rows = [json.loads(l) for l in window if json.loads(l)["type"] == "row"]
    assert window_rows and all(middle["at"] <= r["at"] < rows[-1]["at"] for r in window_rows)
    assert window_rows[0]["seq"] <= middle["seq"] and window_rows[-1]["seq"] < rows[-1]["seq"]
    checked = verify_file(vault, window)
    assert checked.returncode == 0, checked.stderr
    assert f"rows {window_rows[0]['seq']}–{window_rows[-1]['seq']}" in checked.stdout, checked.stdout
    # The dashboard: the same download for an administrator's session, refused to anyone else's.
    admin_download = session_cookie(vault, ADMIN, ADMIN_PASSWORD).get(server.url + "/activity/export", timeout=10)
    assert admin_download.status_code == 200 and json.loads(admin_download.text.splitlines()[0])["type"] == "header"
    assert verify_file(vault, admin_download.text.splitlines()).returncode == 0
    assert session_cookie(vault, PLAIN, PLAIN_PASSWORD).get(server.url + "/activity/export", timeout=10).status_code == 403
    vault.stop()

    # The CLI: a 0600 file, header / rows / end, the same rows as the store.
    out = tmp_path / "audit.jsonl"
    exported = vault.cli("audit", "export", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    lines = out.read_text().splitlines()
    parsed = [json.loads(l) for l in lines]
    assert parsed[0]["type"] == "header" and parsed[-1]["type"] == "end"
    rows = parsed[1:-1]
    assert all(r["type"] == "row" for r in rows)
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert {"seq", "at", "action", "outcome", "epoch", "mac"} <= set(rows[0])
    assert {r["epoch"] for r in rows} == {1, 2}
    with sqlite3.connect(vault.data / "warden.db") as db:
        stored = db.execute("SELECT seq, action, lower(hex(mac)), epoch FROM audit ORDER BY seq").fetchall()
    assert [(r["seq"], r["action"], r["mac"], r["epoch"]) for r in rows] == stored
    assert [json.loads(l) for l in api_lines[1:-1]] == rows[:len(api_lines) - 2]
    assert parsed[-1]["rows"] == len(rows)

    verified = verify_file(vault, lines)
    assert verified.returncode == 0, verified.stderr
    assert f"export intact: {len(rows)} rows (rows 1–{len(rows)}), key epochs 1, 2" in verified.stdout, verified.stdout
    wrong = verify_file(vault, lines, key=old)
    assert wrong.returncode == 1 and "the key does not open the vault this export came from" in wrong.stderr, wrong.stderr
    assert verify_file(vault, lines, key=keygen()).returncode == 1

    def edited(i, **fields):
        line = dict(parsed[i], **fields)
        return lines[:i] + [json.dumps(line)] + lines[i + 1:]

    k = len(rows) // 2  # a row in the middle (line k + 1)
    tampered = {
        "a row's outcome": edited(k + 1, outcome="failed"),
        "a row's action": edited(k + 1, action="auth.logout"),
        "a row's detail": edited(k + 1, detail=json.dumps({"venue": "binance"})),
        "a row's time": edited(k + 1, at=parsed[k + 1]["at"] + 1),
        "a row's epoch": edited(len(lines) - 2, epoch=1),
        "a row's mac": edited(k + 1, mac="0" * 64),
        "a row line deleted": lines[:k + 1] + lines[k + 2:],
        "the first row deleted": lines[:1] + lines[2:],
        "the last row deleted": lines[:-2] + lines[-1:],
        "two rows swapped": lines[:k + 1] + [lines[k + 2], lines[k + 1]] + lines[k + 3:],
        "the end line dropped": lines[:-1],
        "a line appended": lines + [lines[-2]],
        "a row added before the end": lines[:-1] + [json.dumps(dict(parsed[-2], seq=len(rows) + 1))] + lines[-1:],
        "the end line's count": edited(len(lines) - 1, rows=len(rows) - 1),
        "the header's chain start": edited(0, previous_mac="0" * 64),
        "the header's window": edited(0, since=0),
        "the header's export time": edited(0, exported_at=parsed[0]["exported_at"] - 86_400_000),
    }
    for name, version in tampered.items():
        result = verify_file(vault, version)
        assert result.returncode == 1, f"{name}: {result.stdout}"
        assert result.stderr.startswith("warden: the export does not verify: "), f"{name}: {result.stderr}"
    other_vault = verify_file(vault, edited(0, vault_id="00000000-0000-0000-0000-000000000000"))
    assert other_vault.returncode == 1 and "the key does not open the vault this export came from" in other_vault.stderr

    # Day windows on the CLI.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    for args, count in ((("--since", today), len(rows)), (("--since", tomorrow), 0), (("--until", today), 0)):
        window = vault.cli("audit", "export", *args)
        assert window.returncode == 0, window.stderr
        window_lines = window.stdout.splitlines()
        assert json.loads(window_lines[-1])["rows"] == count, (args, window_lines[-1])
        checked = verify_file(vault, window_lines)
        said = f"export intact: {count} rows" if count else "export intact: no rows in its range"
        assert checked.returncode == 0 and said in checked.stdout, (args, checked)


# ------------------------------------------------------------------------------------------------------ pruning

def chain_key(master_key):
    """The audit chain's key of one epoch: HKDF-SHA256 of the KEK (no salt) under the label "warden.v1.audit-chain"."""
    prk = hmac.new(b"\0" * 32, bytes.fromhex(master_key), hashlib.sha256).digest()
    return hmac.new(prk, b"warden.v1.audit-chain\x01", hashlib.sha256).digest()


def field(value):
    """A MAC input field: 4-byte big-endian length and UTF-8, or ff ff ff ff for none."""
    if value is None:
        return b"\xff\xff\xff\xff"
    data = str(value).encode()
    return struct.pack(">I", len(data)) + data


def age(data, through_seq, keys=None, days=10):
    """Moves rows 1..through_seq `days` into the past. With `keys` (the master key of each epoch), the rows and the
    head are MACed again as Warden would have made them, as someone holding the keys could; without, the edit shows."""
    with sqlite3.connect(data / "warden.db") as db:
        db.execute("UPDATE audit SET at = at - ? WHERE seq <= ?", (days * 86_400_000, through_seq))
        if keys:
            previous = b""
            rows = db.execute("SELECT seq, at, actor_id, owner_id, action, target, outcome, detail, epoch FROM audit ORDER BY seq")
            for seq, at, actor, owner, action, target, outcome, detail, epoch in rows.fetchall():
                fields = b"".join(field(v) for v in (seq, at, actor, owner, action, target, outcome, detail))
                previous = hmac.new(chain_key(keys[epoch]), b"warden.audit.v1" + fields + previous, hashlib.sha256).digest()
                db.execute("UPDATE audit SET mac = ? WHERE seq = ?", (previous, seq))
            seq, epoch = db.execute("SELECT seq, epoch FROM audit_head").fetchone()
            head = hmac.new(chain_key(keys[epoch]), b"warden.audit.head.v1" + field(seq) + previous, hashlib.sha256).digest()
            db.execute("UPDATE audit_head SET mac = ?, head_mac = ?", (previous, head))
    db.close()


def test_prune_behind_a_signed_checkpoint_then_verify(vault, tmp_path):
    vault.serve()
    for i in range(4):
        vault.credential("s0", {"token": f"tok-{i}"})
    vault.stop()
    first_key = vault.key
    vault.rotate(keygen())  # the pruned rows are of epoch 1, the checkpoint is signed in epoch 2
    rows = audit_rows(vault)
    rotation = next(r["seq"] for r in rows if r["action"] == "vault.rotated")
    assert rows[-1]["seq"] == rotation
    vault.serve()
    vault.credential("s1", {"token": "tok-kept"})  # rows after the rotation are kept
    vault.stop()
    kept_before = len(audit_rows(vault)) - (rotation - 1)

    nothing = vault.cli("audit", "prune", "--older-than-days", "5")
    assert nothing.returncode == 0 and "no row is older than 5 days: nothing pruned" in nothing.stdout, nothing
    # Rows backdated by someone without the key: the edit shows, and pruning refuses to hide it.
    tampered = tmp_path / "tampered"
    shutil.copytree(vault.data, tampered)
    age(tampered, rotation - 1)
    broken = vault.cli("audit", "verify", data=tampered)
    assert broken.returncode == 1 and "row 1" in broken.stderr, broken
    refused = vault.cli("audit", "prune", "--older-than-days", "5", data=tampered)
    assert refused.returncode == 1 and "does not verify" in refused.stderr and "nothing was pruned" in refused.stderr, refused
    with sqlite3.connect(tampered / "warden.db") as db:
        assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == len(audit_rows(vault))
    db.close()

    # Rows made old as Warden would have made them (the test holds both epochs' keys): they verify, and go.
    age(vault.data, rotation - 1, keys={1: first_key, 2: vault.key})
    assert vault.cli("audit", "verify").returncode == 0
    aged = tmp_path / "aged"
    shutil.copytree(vault.data, aged)

    pruned = vault.cli("audit", "prune", "--older-than-days", "5")
    assert pruned.returncode == 0, pruned.stderr
    assert f"pruned {rotation - 1} rows (through row {rotation - 1})" in pruned.stdout, pruned.stdout
    verified = vault.cli("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"audit chain intact: {kept_before + 1} rows" in verified.stdout, verified.stdout  # + the prune's own row
    assert f"pruned: {rotation - 1} rows (1–{rotation - 1}) in 1 prune(s)" in verified.stdout, verified.stdout
    again = vault.cli("audit", "prune", "--older-than-days", "5")
    assert again.returncode == 0 and "nothing pruned" in again.stdout
    remaining = audit_rows(vault)
    assert remaining[0]["seq"] == rotation and remaining[-1]["action"] == "audit.pruned"
    exported = tmp_path / "after-prune.jsonl"
    assert vault.cli("audit", "export", "--out", str(exported)).returncode == 0
    offline = vault.cli("audit", "verify", "--file", str(exported))
    assert offline.returncode == 0 and f"rows {rotation}–{remaining[-1]['seq']}" in offline.stdout, offline

    # Behind the checkpoint nothing can go missing unnoticed: the first kept row, a later one, the checkpoint.
    edits = {"the first kept row": f"DELETE FROM audit WHERE seq = {rotation}",
             "a later kept row": f"DELETE FROM audit WHERE seq = {rotation + 1}",
             "the checkpoint's count": "UPDATE audit_checkpoint SET pruned_rows = pruned_rows - 1",
             "the checkpoint": "DELETE FROM audit_checkpoint"}
    for name, sql in edits.items():
        copy = tmp_path / f"edited-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(vault.data, copy)
        with sqlite3.connect(copy / "warden.db") as db:
            db.execute(sql)
        db.close()
        result = vault.cli("audit", "verify", data=copy)
        assert result.returncode == 1, f"{name}: {result.stdout}"
        assert result.stderr.startswith("warden: audit chain broken at row"), f"{name}: {result.stderr}"

    # [audit] retain_days: the server prunes at boot.
    retaining = tmp_path / "retain.toml"
    retaining.write_text(vault.config_text("[audit]\nretain_days = 5\n"))
    server = vault.serve(config=retaining, data=aged)
    deadline = time.time() + 10
    while "audit rows pruned" not in server.output() and time.time() < deadline:
        time.sleep(0.1)
    line = next((l for l in server.output().splitlines() if "audit rows pruned" in l), None)
    assert line and f"rows={rotation - 1}" in line, server.output()
    vault.stop()
    verified = vault.cli("audit", "verify", data=aged)
    assert verified.returncode == 0, verified.stderr
    assert f"pruned: {rotation - 1} rows (1–{rotation - 1}) in 1 prune(s)" in verified.stdout, verified.stdout


# -------------------------------------------------------------------------------------------- backup and restore

def test_an_online_backup_restores_with_the_key_of_its_time(vault, tmp_path):
    """The runbook's SQLite backup (the online backup API, as `sqlite3 … .backup` uses it) taken while the server
    serves; after a rotation the backup still opens with its own key only; restored, it serves and verifies."""
    vault.serve()
    credential = vault.credential("s0", {"token": "tok-s0"})
    agent = vault.agent_key([credential])
    assert vault.service_call(agent, "s0") == "tok-s0"
    time.sleep(1.2)  # the call's row is written within about a second
    backup = tmp_path / "backup.db"
    with sqlite3.connect(vault.data / "warden.db") as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    live.close()
    copy.close()
    vault.service_call(agent, "s0")  # the server goes on meanwhile
    vault.stop()
    backup_key = vault.key
    vault.rotate(keygen())

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copyfile(backup, restored / "warden.db")
    os.chmod(restored / "warden.db", 0o600)
    assert vault.cli("audit", "verify", data=restored).returncode == 1  # the rotated vault's key does not open it
    verified = vault.cli("audit", "verify", key=backup_key, data=restored)
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout, verified.stderr
    vault.serve(env={"WARDEN_MASTER_KEY": backup_key}, data=restored)
    assert vault.service_call(agent, "s0") == "tok-s0"
    vault.stop()
