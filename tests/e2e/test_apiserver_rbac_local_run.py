"""`engine run --local --rbac`: the embedded server enforces RBAC over HTTPS and the
engine runs as the ServiceAccount and roles of config/: the samples reach Ready, the
engine's own kubeconfig is refused what its roles do not grant, the administrator's is
not, and a second run on the same state directory resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.kubectl import Kubectl
from tests.support.manifests import needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]
SAMPLES = ("blog", "docs", "shop")


def run(state: Path, log: Path, seconds: float) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--local", "--rbac", "--plain",
             "--state-dir", str(state), "--health-port", "0", "--duration", str(seconds)],
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ),
        )  # fmt: skip


def wait_ready(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not all(f"default/{name} Ready" in log.read_text() for name in SAMPLES):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_the_engine_runs_under_its_own_roles_on_the_local_server(tmp_path: Path) -> None:
    state, log = tmp_path / "state", tmp_path / "run.log"
    process = run(state, log, seconds=40)
    try:
        wait_ready(log, process)
        assert "RBAC on: the engine connects with" in log.read_text()
        engine = Kubectl(state / "engine-kubeconfig", tmp_path / "cache-engine")
        admin = Kubectl(state / "kubeconfig", tmp_path / "cache-admin")
        refused = engine.run("get", "secrets", "-n", "default")
        assert refused.code == 1
        assert (
            'secrets is forbidden: User "system:serviceaccount:engine-system:engine" cannot '
            'list resource "secrets" in API group "" in the namespace "default"'
        ) in refused.stderr
        assert "blog" in engine.ok("get", "sites", "-n", "default", "-o", "name")
        assert engine.run("delete", "site", "blog", "-n", "default").code == 1
        assert admin.ok("get", "secrets", "-n", "default") is not None
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()
    again = tmp_path / "again.log"
    second = run(state, again, seconds=8)
    assert second.wait(timeout=60) == 0, again.read_text()
    assert "sample default/blog: exists" in again.read_text()
    assert "default/blog Ready" in again.read_text()
