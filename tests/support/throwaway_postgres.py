"""A PostgreSQL cluster of the test's own, to stop and start under a running journal
(the shared test server must never be restarted): `initdb` in the test's directory, as
the `postgres` user when run as root, the way `.ci/postgres` does it. Without the server
binaries (or that user) a test fails in CI (CI=true) and skips elsewhere with one line.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

HINT = "no PostgreSQL server binaries (initdb, pg_ctl) for a throwaway cluster"


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return Path(os.path.realpath(pg_ctl)).parent if pg_ctl else None


def _missing(problem: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@dataclass
class Cluster:
    """A running cluster: `url` (password login over TCP), `stop()`, `start()`."""

    bin: Path
    data: Path
    port: int
    url: str
    as_owner: tuple[str, ...]

    def _pg_ctl(self, *args: str) -> None:
        command = [*self.as_owner, str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1"
        log = str(self.data.parent / "server.log")
        self._pg_ctl("-l", log, "-w", "-t", "60", "-o", options, "start")

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, the server is down until `start`."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A fresh cluster in a new /tmp directory (the postgres user must reach it, which a
    test's own tmp_path may not let it), started; stopped and removed at the end."""
    server = _server_bin()
    if server is None or not (server / "initdb").exists():
        _missing(HINT)
        raise AssertionError("unreachable")
    as_owner: tuple[str, ...] = ()
    if os.geteuid() == 0:  # initdb refuses root: the cluster belongs to the postgres user
        try:
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            _missing("no postgres user to own a throwaway cluster")
        as_owner = ("runuser", "-u", "postgres", "--")
    home = Path(tempfile.mkdtemp(prefix="engine-pg-test-"))
    password = secrets.token_hex(12)
    (home / "pw").write_text(password + "\n")
    if as_owner:
        shutil.chown(home, "postgres")
        shutil.chown(home / "pw", "postgres")
    home.chmod(0o700)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    data = home / "data"
    subprocess.run(
        [*as_owner, str(server / "initdb"), "-D", str(data), "-U", "postgres",
         f"--pwfile={home / 'pw'}", "--auth-local=trust", "--auth-host=scram-sha-256",
         "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    url = f"postgresql://postgres:{password}@127.0.0.1:{port}/postgres"
    cluster = Cluster(server, data, port, url, as_owner)
    cluster.start()
    try:
        yield cluster
    finally:
        subprocess.run(
            [*as_owner, str(server / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(home, ignore_errors=True)
