"""What an operator installs: `warden` is one file that starts on a machine without the Swift toolchain (its
libraries hidden from it), also with W^X memory enforced, and deploy/warden.service is a valid, hardened unit."""
import ctypes
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import requests

from conftest import BINARY, ROOT, clean_env, free_port

# The Swift toolchain's root (/opt/swift/usr/bin/swift → /opt/swift): hidden from the binary below.
TOOLCHAIN = pathlib.Path(os.path.realpath(shutil.which("swift"))).parents[2]
# `warden` linked as scripts/release links it (scripts/test builds it; debug, to save a release build).
STATIC = pathlib.Path(os.environ.get("WARDEN_STATIC_BIN", ROOT / ".build" / "static" / "debug" / "warden"))


def static_binary():
    assert STATIC.exists(), f"{STATIC} is built by: swift build --static-swift-stdlib --product warden --scratch-path .build/static"
    return STATIC


def test_the_binary_needs_no_library_of_the_toolchain():
    linked = subprocess.run(["ldd", str(static_binary())], capture_output=True, text=True, check=True).stdout
    assert "not found" not in linked
    for line in linked.splitlines():
        assert not re.search(r"swift|foundation|dispatch|icu", line, re.I), line
        assert str(TOOLCHAIN) not in line, line


# Runs its arguments with PR_SET_MDWE(PR_MDWE_REFUSE_EXEC_GAIN): no memory may become writable and
# executable, as systemd's MemoryDenyWriteExecute= enforces.
W_XOR_X = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed: errno %d" % ctypes.get_errno())
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_one_copied_file_serves_without_the_toolchain_and_with_w_xor_x(tmp_path, master_key):
    alone = tmp_path / "bin" / "warden"
    alone.parent.mkdir()
    shutil.copy2(static_binary(), alone)
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    data = tmp_path / "data"
    # A mount namespace of its own where the toolchain's folder is an empty one; the network is shared.
    script = (f"mount --bind {empty} {TOOLCHAIN} && test -z \"$(ls -A {TOOLCHAIN})\" && "
              f"exec {sys.executable} -c '{W_XOR_X}' {alone} serve --data-dir {data} --listen 127.0.0.1:{port}")
    proc = subprocess.Popen(["unshare", "--map-root-user", "--mount", "sh", "-c", script],
                            env=clean_env({"WARDEN_MASTER_KEY": master_key}), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.time() < deadline, "warden did not start"
            time.sleep(0.1)
        # The dashboard's templates and the OpenAPI document are inside the binary.
        login = requests.get(url + "/login")
        assert login.status_code == 200 and "<form" in login.text
        assert requests.get(url + "/static/warden.css").status_code == 200
        assert requests.get(url + "/api/v1/openapi.json").json()["openapi"].startswith("3.1")
        # Password hashing (Argon2id), TLS-free JWT signing and the store all run under W^X.
        r = requests.post(url + "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong-password-1"})
        assert r.status_code == 401
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def unit_for_test(tmp_path):
    """deploy/warden.service with ExecStart pointing at the built binary (verify checks that it exists)."""
    text = (ROOT / "deploy" / "warden.service").read_text()
    assert "ExecStart=/usr/local/bin/warden serve" in text
    unit = tmp_path / "warden.service"
    unit.write_text(text.replace("/usr/local/bin/warden", str(BINARY)))
    return unit, text


def test_the_systemd_unit_verifies_and_is_hardened(tmp_path):
    unit, text = unit_for_test(tmp_path)
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # verify exits 0 on settings it ignores: any word from it is a mistake in the unit.
    assert verified.returncode == 0 and not verified.stdout.strip() and not verified.stderr.strip(), verified
    for setting in ("Type=notify", "User=warden", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                    "MemoryDenyWriteExecute=yes", "CapabilityBoundingSet=\n", "LimitCORE=0", "UMask=0077",
                    "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                    "ExecReload=/bin/kill -HUP $MAINPID"):
        assert setting in text, setting
    # systemd's own exposure score (0 best, 10 worst); 2.0 and under is what it calls OK.
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
                              capture_output=True, text=True)
    assert security.returncode == 0, security.stdout + security.stderr
    level = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout).group(1))
    assert level <= 2.0, security.stdout


def test_a_broken_unit_is_caught(tmp_path):
    unit, text = unit_for_test(tmp_path)
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=maybe\nProtectEverything=yes"))
    verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert "maybe" in verified.stderr and "ProtectEverything" in verified.stderr


def test_systemd_is_told_when_the_server_is_ready(tmp_path, master_key):
    """`Type=notify`: READY=1 reaches NOTIFY_SOCKET once the port is open, and a reload right then is harmless."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)
    port = free_port()
    proc = subprocess.Popen([str(BINARY), "serve", "--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}"],
                            env=clean_env({"WARDEN_MASTER_KEY": master_key, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert notify.recv(256) == b"READY=1"
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGHUP)  # systemctl reload, the moment systemd says the unit is up
        time.sleep(0.5)
        assert proc.poll() is None and requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        notify.close()
    assert proc.returncode == 0
