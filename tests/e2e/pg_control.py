"""A PostgreSQL server of a test's own, which the test may stop, restart and freeze (SIGSTOP) at will."""
import glob
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile

import pytest

from conftest import free_port


def bin_dir():
    """WARDEN_TEST_PG_BINDIR (set by scripts/with-postgres), else the newest installed server's."""
    given = os.environ.get("WARDEN_TEST_PG_BINDIR")
    if given and os.path.exists(os.path.join(given, "initdb")):
        return given
    found = sorted((d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(d, "initdb"))),
                   key=lambda d: [int(p) if p.isdigit() else p for p in d.split("/")[-2].split(".")])
    return found[-1] if found else None


class OwnPostgres:
    def __init__(self):
        self.bin = bin_dir()
        self.port = free_port()
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="warden-own-pg-"))
        self.data = self.dir / "data"
        self.as_pg = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "warden", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "warden", "warden")
        self.url = f"postgres://warden@127.0.0.1:{self.port}/warden?sslmode=disable"

    def _run(self, tool, *args):
        subprocess.run([*self.as_pg, os.path.join(self.bin, tool), *args], check=True, capture_output=True, timeout=60)

    def start(self):
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} -c fsync=off "
                  "-c max_connections=200",
                  "start")

    def stop(self):
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self):
        self.stop()
        self.start()

    def processes(self):
        """The postmaster and every process it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for status in glob.glob("/proc/[0-9]*/status"):
            try:
                fields = dict(line.split(":\t", 1) for line in pathlib.Path(status).read_text().splitlines() if ":\t" in line)
            except OSError:
                continue
            if fields.get("PPid", "").strip() == str(postmaster):
                children.append(int(fields["Pid"].strip()))
        return [postmaster, *children]

    def freeze(self):
        """SIGSTOPs the postmaster first (so it starts no one new), then every process it started."""
        self.frozen = []
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)
            except ProcessLookupError:
                pass
        return len(self.frozen)

    def thaw(self):
        for pid in reversed(getattr(self, "frozen", [])):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def close(self):
        self.thaw()
        subprocess.run([*self.as_pg, os.path.join(self.bin, "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def own_postgres():
    if bin_dir() is None:
        if os.environ.get("WARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("WARDEN_REQUIRE_POSTGRES=1 but no PostgreSQL server binaries were found")
        pytest.skip("needs the PostgreSQL server binaries (scripts/bootstrap installs them)")
    server = OwnPostgres()
    yield server
    server.close()
