"""`engine run --local` as a subprocess, driven with the real kubectl: Sites go Ready with
their children and registration, a bad spec goes Failed with its reason, deletion
unregisters, SIGTERM exits cleanly, and a re-run on the same state dir repeats nothing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.kubectl import Kubectl, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]

REGISTRY = re.compile(r"example registry at (http://127\.0\.0\.1:\d+)")
SAMPLES = ("blog", "docs", "shop")
SITE = """
apiVersion: example.dev/v1
kind: Site
metadata: {{name: {name}, namespace: default}}
spec: {{domain: {domain}, replicas: 2, password: e2e-secret}}
"""


@dataclass(frozen=True)
class Engine:
    process: subprocess.Popen[bytes]
    log: Path
    kubectl: Kubectl
    registry_url: str

    def registry(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(self.registry_url + path, timeout=5) as response:
            body: dict[str, object] = json.load(response)
        return body


def wait_for(what: str, check: Callable[[], bool], *, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


@contextmanager
def engine_run(state_dir: Path, log: Path, *extra: str) -> Iterator[Engine]:
    """Start `engine run --local`; on exit send SIGTERM and insist on a clean exit."""
    env = {**os.environ, "ENGINE_HEALTH_PORT": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--local", "--plain",
             "--state-dir", str(state_dir), *extra],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_for("the registry URL", lambda: REGISTRY.search(log.read_text()) is not None, log=log)
        match = REGISTRY.search(log.read_text())
        assert match is not None
        kubectl = Kubectl(state_dir / "kubeconfig", state_dir.parent / "kubectl-cache")
        yield Engine(process, log, kubectl, match.group(1))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in log.read_text()


def phase(kubectl: Kubectl, name: str) -> str:
    result = kubectl.run("get", f"site/{name}", "-o", "jsonpath={.status.phase}")
    return result.stdout if result.code == 0 else f"<{result.stderr.strip()}>"


def all_ready(engine: Engine, names: tuple[str, ...]) -> Callable[[], bool]:
    return lambda: all(phase(engine.kubectl, name) == "Ready" for name in names)


def test_engine_run_reconciles_sites_driven_by_kubectl(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with engine_run(state, tmp_path / "run1.log") as engine:
        kubectl = engine.kubectl
        wait_for("the samples are Ready", all_ready(engine, SAMPLES), log=engine.log)

        kubectl.ok("apply", "-f", "-", stdin=SITE.format(name="e2e", domain="e2e.example.com"))
        wait_for("e2e is Ready", all_ready(engine, ("e2e",)), log=engine.log)
        table = kubectl.ok("get", "sites")
        header, *rows = table.splitlines()
        assert header.split() == ["NAME", "STATE", "DOMAIN", "REPLICAS", "AGE"]
        assert ["e2e", "Ready", "e2e.example.com", "2"] in [row.split()[:4] for row in rows]
        config = json.loads(kubectl.ok("get", "configmap/e2e-config", "-o", "json"))
        assert config["data"]["replicas"] == "2"
        assert "e2e-secret" not in json.dumps(config)
        service = json.loads(kubectl.ok("get", "service/e2e-web", "-o", "json"))
        [owner] = service["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Site", "e2e", True)
        names = {item["name"] for item in engine.registry("/registrations")["items"]}  # type: ignore[union-attr]
        assert {"default.e2e", "default.blog", "default.docs", "default.shop"} <= names

        bad = SITE.format(name="bad", domain="invalid.example")
        kubectl.ok("apply", "-f", "-", stdin=bad)
        wait_for("bad is Failed", lambda: phase(kubectl, "bad") == "Failed", log=engine.log)
        status = json.loads(kubectl.ok("get", "site/bad", "-o", "jsonpath={.status}"))
        assert "reserved" in json.dumps(status)

        kubectl.ok("delete", "site/e2e", "--timeout=30s")
        assert kubectl.run("get", "site/e2e").code != 0
        names = {item["name"] for item in engine.registry("/registrations")["items"]}  # type: ignore[union-attr]
        assert "default.e2e" not in names
        wait_for(
            "the children are collected",
            lambda: (
                kubectl.run("get", "configmap/e2e-config").code != 0
                and kubectl.run("get", "service/e2e-web").code != 0
            ),
            log=engine.log,
        )
        calls_after_first_run = len(engine.registry("/calls")["items"])  # type: ignore[arg-type]
        applied = engine.registry("/applied")["counts"]
        assert set(applied.values()) == {1}  # type: ignore[union-attr]

    with engine_run(state, tmp_path / "run2.log") as engine:
        wait_for("the samples are Ready again", all_ready(engine, SAMPLES), log=engine.log)
        wait_for(
            "the re-run shows every Site",
            lambda: all(f"default/{name} Ready" in engine.log.read_text() for name in SAMPLES),
            log=engine.log,
        )
        time.sleep(1.0)  # time for any wrongly repeated effect to reach the registry
        assert engine.registry("/applied")["counts"] == applied
        assert len(engine.registry("/calls")["items"]) == calls_after_first_run  # type: ignore[arg-type]
    verify_journal(state / "journal.db")


def verify_journal(journal: Path) -> None:
    """`engine replay --verify` on a journal the main job wrote: exit 0, no divergence."""
    result = subprocess.run(
        [sys.executable, "-m", "engine", "replay", str(journal), "--verify"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no divergence" in result.stdout
