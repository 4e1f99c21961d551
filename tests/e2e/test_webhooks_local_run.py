"""`engine run --local` with an operator that validates, mutates and converts (the Quota
of tests/support/quota_operator.py), driven with the real kubectl: the engine registers
its webhooks into the embedded API server with no manual step; a Quota breaking the
cross-field rule is refused with the handler's message; a default the schema cannot
express is filled; a Quota created as v1alpha1 reads as v1 and back with nothing lost;
the decisions are in `engine replay`; and once the engine is stopped the webhooks'
failurePolicy (Fail) refuses writes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from tests.e2e.kubectl import Kubectl, apiserver_process, needs_kubectl

pytestmark = [pytest.mark.e2e, needs_kubectl]
ROOT = Path(__file__).resolve().parents[2]
REF = "tests.support.quota_operator:OPERATOR"

V1 = """
apiVersion: webhooks.test/v1
kind: Quota
metadata: {{name: {name}, namespace: default}}
spec: {{minReplicas: {low}, maxReplicas: {high}}}
"""
V1ALPHA1 = """
apiVersion: webhooks.test/v1alpha1
kind: Quota
metadata:
  name: legacy
  namespace: default
  labels: {team: storage}
  annotations: {owner: alice}
spec: {range: "2-4", token: s3cr3t-in-spec}
"""


def wait_for(what: str, check: Callable[[], bool], *, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


def get(kubectl: Kubectl, resource: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(kubectl.ok("get", resource, "-o", "json"))
    return found


def test_the_operators_webhooks_validate_default_and_convert_under_kubectl(
    tmp_path: Path,
) -> None:
    state, log = tmp_path / "state", tmp_path / "run.log"
    env = {**os.environ, "ENGINE_HEALTH_PORT": "0"}
    env.pop("ENGINE_OPERATOR", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine",
                "run",
                "--operator",
                REF,
                "--local",
                "--plain",
                "--state-dir",
                str(state),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for("the engine to serve", lambda: "health:" in log.read_text(), log=log)
        assert "webhooks at https://127.0.0.1:" in log.read_text()
        kubectl = Kubectl(state / "kubeconfig", tmp_path / "kubectl-cache")
        registered = kubectl.ok(
            "get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name"
        )
        assert "validate.quotas.webhooks.test" in registered
        assert "mutate.quotas.webhooks.test" in registered

        refused = kubectl.run("apply", "-f", "-", stdin=V1.format(name="bad", low=5, high=3))
        assert refused.code != 0
        assert "spec.minReplicas (5) must not exceed spec.maxReplicas (3)" in refused.stderr
        assert "[rule quota-range]" in refused.stderr
        assert kubectl.run("get", "quotas.webhooks.test/bad").code != 0  # nothing was stored

        kubectl.ok("apply", "-f", "-", stdin=V1.format(name="big", low=1, high=20))
        assert get(kubectl, "quotas.webhooks.test/big")["spec"] == {
            "minReplicas": 1,
            "maxReplicas": 20,
            "tier": "large",
        }

        kubectl.ok("apply", "-f", "-", stdin=V1ALPHA1)
        stored = get(kubectl, "quotas.v1.webhooks.test/legacy")
        assert stored["apiVersion"] == "webhooks.test/v1"
        assert stored["spec"] == {
            "minReplicas": 2,
            "maxReplicas": 4,
            "tier": "small",
            "token": "s3cr3t-in-spec",
        }
        back = get(kubectl, "quotas.v1alpha1.webhooks.test/legacy")
        assert back["apiVersion"] == "webhooks.test/v1alpha1"
        assert back["spec"] == {"range": "2-4", "tier": "small", "token": "s3cr3t-in-spec"}
        metadata = back["metadata"]
        assert metadata["labels"] == {"team": "storage"}
        assert metadata["annotations"]["owner"] == "alice"
        # a v1 field v1alpha1 lacks survives a v1alpha1 read-modify-write
        kubectl.ok(
            "patch",
            "quotas.v1.webhooks.test/legacy",
            "--type=merge",
            "-p",
            '{"spec": {"note": "keep me"}}',
        )
        for _ in range(10):  # read, write back as v1alpha1; the engine's own writes may race
            spoke = get(kubectl, "quotas.v1alpha1.webhooks.test/legacy")
            assert spoke["metadata"]["annotations"]["webhooks.test/note"] == "keep me"
            spoke["spec"]["tier"] = "medium"
            written = kubectl.run("replace", "-f", "-", stdin=json.dumps(spoke))
            if written.code == 0 or "the object has been modified" not in written.stderr:
                break
        assert written.code == 0, written.describe()
        kept = get(kubectl, "quotas.webhooks.test/legacy")["spec"]
        assert (kept["tier"], kept["note"]) == ("medium", "keep me")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0, log.read_text()

    journal = state / "journal.db"
    replayed = CliRunner().invoke(cli, ["replay", str(journal), "--resource", "default/bad"])
    assert replayed.exit_code == 0, replayed.output
    assert "AdmissionDecided" in replayed.output
    flat = " ".join(replayed.output.split())
    assert "validate CREATE by " in flat
    assert "rejected (403): spec.minReplicas (5) must not exceed" in flat
    exported = tmp_path / "journal.jsonl"
    done = CliRunner().invoke(cli, ["journal", "export", str(journal), "--to", str(exported)])
    assert done.exit_code == 0, done.output
    records = exported.read_text()
    assert '"patch_digest": "sha256:' in records or '"patch_digest":"sha256:' in records
    assert "s3cr3t-in-spec" not in records

    # the engine is stopped: its webhooks cannot be called, and failurePolicy Fail refuses
    scratch = tmp_path / "after"
    scratch.mkdir()
    for suffix in ("", "-wal", "-shm"):
        if (state / f"apiserver.db{suffix}").exists():
            shutil.copy(state / f"apiserver.db{suffix}", scratch / f"api.db{suffix}")
    with apiserver_process(scratch) as alone:
        refused = alone.run("apply", "-f", "-", stdin=V1.format(name="late", low=1, high=2))
        assert refused.code != 0
        assert "failed calling webhook" in refused.stderr
        assert "mutate.quotas.webhooks.test" in refused.stderr
