"""`engine run --operator FILE:OPERATOR --local` with an operator the project does not
ship (its own group and kind, one child ConfigMap, one external effect), driven with the
real kubectl: create, update, a schema-refused object, a permanent failure, delete; then
SIGTERM, and `engine replay --operator ... --verify` over the journal it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.kubectl import Kubectl, needs_kubectl
from tests.support.book_operator import write_operator

pytestmark = [pytest.mark.e2e, needs_kubectl]

BOOK = """
apiVersion: library.test/v1alpha1
kind: Book
metadata: {{name: {name}, namespace: default}}
spec: {{title: {title}, copies: {copies}}}
"""


def wait_for(what: str, check: Callable[[], bool], *, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


def phase(kubectl: Kubectl, name: str) -> str:
    result = kubectl.run("get", f"book/{name}", "-o", "jsonpath={.status.phase}")
    return result.stdout if result.code == 0 else f"<{result.stderr.strip()}>"


def engine(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_an_operator_of_ones_own_runs_from_its_file_driven_by_kubectl(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_operator(project)
    state, ledger, log = tmp_path / "state", tmp_path / "ledger", tmp_path / "run.log"
    env = {**os.environ, "ENGINE_HEALTH_PORT": "0", "BOOK_LEDGER": str(ledger)}
    env.pop("ENGINE_OPERATOR", None)
    ref = "book_operator.py:OPERATOR"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "--operator", ref, "--local", "--plain",
             "--state-dir", str(state)],
            cwd=project, stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    try:
        wait_for("the engine to serve", lambda: "health:" in log.read_text(), log=log)
        assert "get books" in log.read_text()  # the kubectl hint names this operator's kind
        kubectl = Kubectl(state / "kubeconfig", tmp_path / "kubectl-cache")

        kubectl.ok("apply", "-f", "-", stdin=BOOK.format(name="dune", title="Dune", copies=1))
        wait_for("dune is Ready", lambda: phase(kubectl, "dune") == "Ready", log=log)
        header, *rows = kubectl.ok("get", "books").splitlines()
        assert header.split() == ["NAME", "TITLE", "STATE", "AGE"]
        assert rows[0].split()[:3] == ["dune", "Dune", "Ready"]
        card = json.loads(kubectl.ok("get", "configmap/dune-card", "-o", "json"))
        assert card["data"] == {"title": "Dune", "copies": "1"}
        [owner] = card["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Book", "dune", True)

        kubectl.ok("apply", "-f", "-", stdin=BOOK.format(name="dune", title="Dune", copies=3))
        wait_for(
            "the card follows the update",
            lambda: (
                kubectl.ok("get", "configmap/dune-card", "-o", "jsonpath={.data.copies}") == "3"
            ),
            log=log,
        )
        wait_for("dune is Ready again", lambda: phase(kubectl, "dune") == "Ready", log=log)
        generation = kubectl.ok("get", "book/dune", "-o", "jsonpath={.status.observedGeneration}")
        assert generation == "2"

        refused = kubectl.run("apply", "-f", "-", stdin=BOOK.format(name="huge", title="x" * 41,
                                                                     copies=1))  # fmt: skip
        assert refused.code != 0
        assert "spec.title" in refused.stderr
        assert kubectl.run("get", "book/huge").code != 0

        kubectl.ok("apply", "-f", "-", stdin=BOOK.format(name="nope", title="forbidden", copies=1))
        wait_for("nope is Failed", lambda: phase(kubectl, "nope") == "Failed", log=log)
        reason = kubectl.ok("get", "book/nope", "-o", "jsonpath={.status.reason}")
        assert "this title cannot be shelved" in reason

        kubectl.ok("delete", "book/dune", "--timeout=30s")
        assert kubectl.run("get", "book/dune").code != 0
        shelved = sorted(p.name.split("_", 1)[1] for p in ledger.iterdir())
        # one effect call per generation; the deletion's generation bump gets the unshelve
        assert shelved[:2] == ["1_shelve.json", "2_shelve.json"]
        assert len(shelved) == 3
        assert shelved[2].endswith("_unshelve.json")

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "Traceback" not in text
    assert "engine stopped" in text

    replayed = engine("replay", str(state / "journal.db"), "--operator", ref, "--verify",
                      cwd=project, env=env)  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "no divergence" in replayed.stdout
    why = engine("why", "default/nope", str(state / "journal.db"), "--operator", ref,
                 cwd=project, env=env)  # fmt: skip
    assert why.returncode == 0, why.stderr
    assert "Failed" in why.stdout
