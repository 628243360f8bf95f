"""Fixtures that start the real `warden` binary on a free loopback port."""
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("WARDEN_BIN", ROOT / ".build" / "debug" / "warden"))
# Small Argon2id cost so passphrase tests run fast; the default cost is measured in bench/.
FAST_KDF = {"WARDEN_KDF_MEMORY_KIB": "1024", "WARDEN_KDF_ITERATIONS": "1"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def warden(*args, env=None, timeout=30, input=None):
    """Runs a warden command to completion."""
    return subprocess.run([str(BINARY), *args], env=clean_env(env), capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARDEN_") or k.startswith("WARDEN_TEST")}
    env.update(extra or {})
    return env


class Server:
    """A running `warden serve`; stderr (the log) is kept in a file for inspection."""

    def __init__(self, data_dir, env, args=()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.verify = True  # what requests checks an https:// url's certificate against
        self.log_path = pathlib.Path(data_dir).parent / f"warden-{self.port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [str(BINARY), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{self.port}", *args],
            env=clean_env(env), stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"warden exited with {self.proc.returncode}: {self.output()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("warden did not become ready: " + self.output())

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("warden did not stop on " + str(sig))
        self.log.close()
        return self.proc.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()


@pytest.fixture
def master_key():
    return warden("keygen").stdout.strip()


@pytest.fixture
def start(tmp_path):
    servers = []

    def _start(env, data_dir=None, args=(), ready=True):
        server = Server(data_dir or tmp_path / "data", env, args)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield _start
    for server in servers:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long-running test (fault injection); still run by default, with short durations")
