"""The example Site with an image runs a Deployment and is Ready only once that Deployment
is available, on the embedded cluster's own controllers and simulated kubelet, driven
with the real kubectl: a Site whose pods never become Ready waits (its reason says for
what), a spec change that lets them start rolls out and the Site goes Ready, deleting the
Site collects the Deployment, its ReplicaSets and Pods, and the journal replays exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.kubectl import Kubectl, needs_kubectl
from tests.e2e.test_engine_run import engine_run, phase, wait_for

pytestmark = [pytest.mark.e2e, needs_kubectl]

SITE = """
apiVersion: example.dev/v1
kind: Site
metadata: {name: app, namespace: default}
spec:
  domain: app.example.com
  replicas: 2
  image: nginx:1.27
  podAnnotations: {kubelet.engine.dev/outcome: never-ready}
"""


def reason(kubectl: Kubectl) -> str:
    return kubectl.run("get", "site/app", "-o", "jsonpath={.status.reason}").stdout


def pods(kubectl: Kubectl) -> list[dict[str, object]]:
    listed = json.loads(
        kubectl.ok("get", "pods", "-l", "app.kubernetes.io/instance=app", "-o", "json")
    )
    items: list[dict[str, object]] = listed["items"]
    return items


def phase_of(pod: dict[str, object]) -> object:
    status = pod.get("status")
    return status.get("phase") if isinstance(status, dict) else None


def test_a_site_waits_for_its_deployment_to_be_available(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with engine_run(state, tmp_path / "run.log", "--no-samples") as engine:
        kubectl = engine.kubectl
        kubectl.ok("apply", "-f", "-", stdin=SITE)
        wait_for(
            "the pods run, never Ready",
            lambda: [phase_of(p) for p in pods(kubectl)] == ["Running"] * 2,
            log=engine.log,
        )
        wait_for(
            "the Site says what it waits for",
            lambda: "waiting for Deployment app-web (0 of 2 replicas available)" in reason(kubectl),
            log=engine.log,
        )
        time.sleep(1.5)  # past a poll of the wait: it holds
        assert phase(kubectl, "app") == "Provisioning"
        names = {i["name"] for i in engine.registry("/registrations")["items"]}  # type: ignore[union-attr]
        assert "default.app" not in names  # nothing after the wait ran

        deployment = json.loads(kubectl.ok("get", "deployment/app-web", "-o", "json"))
        [owner] = deployment["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Site", "app", True)

        kubectl.ok("patch", "site/app", "--type=merge", "-p", '{"spec":{"podAnnotations":null}}')
        kubectl.ok("rollout", "status", "deployment/app-web", "--timeout=30s")
        wait_for("the Site is Ready", lambda: phase(kubectl, "app") == "Ready", log=engine.log)
        ready = json.loads(kubectl.ok("get", "deployment/app-web", "-o", "json"))["status"]
        assert ready["availableReplicas"] == 2
        names = {i["name"] for i in engine.registry("/registrations")["items"]}  # type: ignore[union-attr]
        assert "default.app" in names

        kubectl.ok("delete", "site/app", "--timeout=30s")
        wait_for(
            "the Deployment, its ReplicaSets and Pods are collected",
            lambda: kubectl.ok("get", "deployments,replicasets,pods", "-o", "name") == "",
            log=engine.log,
        )

    journal = state / "journal.db"
    verify = subprocess.run(
        [sys.executable, "-m", "engine", "replay", str(journal), "--verify"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "no divergence" in verify.stdout
