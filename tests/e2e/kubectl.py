"""Run `engine apiserver` in a child process and the real kubectl against it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
KUBECTL = shutil.which("kubectl")
URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+")

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one server's kubeconfig, with short client and process timeouts."""

    kubeconfig: Path
    cache_dir: Path

    def command(self, *args: str) -> list[str]:
        assert KUBECTL is not None
        return [
            *(KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir)),
            *("--request-timeout=10s", *args),
        ]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 20) -> Result:
        done = subprocess.run(
            self.command(*args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(args, done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run and insist on success; stdout."""
        result = self.run(*args, stdin=stdin)
        assert result.code == 0, result.describe()
        return result.stdout

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"kubectl {' '.join(self.args)} -> exit {self.code}\n{self.stdout}{self.stderr}"


@contextmanager
def apiserver_process(scratch: Path, *extra_args: str) -> Iterator[Kubectl]:
    """`engine apiserver` on a fresh SQLite file (with `extra_args`); kubectl pointed at it."""
    kubeconfig = scratch / "kubeconfig"
    log_path = scratch / "apiserver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db")),
                *("--port", "0", "--kubeconfig", str(kubeconfig)),
                *extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not (URL_PATTERN.search(log_path.read_text()) and kubeconfig.exists()):
            assert process.poll() is None, f"engine apiserver exited: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"no URL printed: {log_path.read_text()}"
            time.sleep(0.05)
        yield Kubectl(kubeconfig, scratch / "kubectl-cache")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_discoverable(kubectl: Kubectl, resource: str) -> None:
    """A freshly applied CRD's resource shows in discovery (kubectl caches per run)."""
    deadline = time.monotonic() + 10
    while resource not in kubectl.ok("api-resources", "-o", "name"):
        assert time.monotonic() < deadline, f"{resource} never became discoverable"
        time.sleep(0.1)
