"""RBAC checked against reality (S2): the engine runs its end-to-end workload against the
embedded API server, whose audit log records every request with its User-Agent; every
request the engine made must be allowed by the shipped roles, and every verb the
ClusterRole grants must have been used, except the grants named in UNEXERCISED."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.kubectl import URL_PATTERN, Kubectl
from tests.support.manifests import CONFIG, env_of, find, needs_kubectl, render
from tests.support.rbac import Request, Rule, denied, rules_of, unused_grants

pytestmark = [pytest.mark.e2e, needs_kubectl]
NAMESPACE = "engine-system"
UNEXERCISED = {
    # Re-read of a Site after a 409 on a finalizer write: a race the workload cannot
    # produce on demand; without it a conflicting finalizer write fails for good.
    ("example.dev", "sites", "get"),
    # Not a request: the OwnerReferencesPermissionEnforcement admission plugin checks it
    # when a child sets blockOwnerDeletion: true (the embedded server has no such plugin).
    ("example.dev", "sites/finalizers", "update"),
}
SITE = """
apiVersion: example.dev/v1
kind: Site
metadata: {{name: {name}, namespace: default}}
spec: {{domain: {domain}, replicas: {replicas}{extra}}}
"""


@dataclass(frozen=True)
class Workload:
    """What one run recorded: the engine's requests and how many requests kubectl sent."""

    engine_requests: tuple[Request, ...]
    engine_non_resource_paths: frozenset[str]
    kubectl_request_count: int
    cluster_rules: tuple[Rule, ...]
    lease_rules: tuple[Rule, ...]


def wait_for(what: str, check: object, log: Path, seconds: float = 30) -> None:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting: {what}\n{log.read_text()}"
        time.sleep(0.1)


def started(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def engine_env(scratch: Path, deployment: dict[str, object]) -> dict[str, str]:
    """The Deployment's ENGINE_* settings, with local paths and ports."""
    [container] = deployment["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    env = {k: v for k, v in env_of(container).items() if k.startswith("ENGINE_")}
    env.update(
        ENGINE_STATE_DIR=str(scratch / "state"),
        ENGINE_HEALTH_HOST="127.0.0.1",
        ENGINE_HEALTH_PORT="0",
        ENGINE_LEASE_NAMESPACE=NAMESPACE,
    )
    return {**os.environ, **env}


def run_workload(scratch: Path) -> Workload:
    manifests = render(CONFIG)
    deployment = find(manifests, "Deployment", "engine")
    kubeconfig, audit = scratch / "kubeconfig", scratch / "audit.jsonl"
    server_log, engine_log = scratch / "apiserver.log", scratch / "engine.log"
    server = started(
        [sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db"),
         "--port", "0", "--kubeconfig", str(kubeconfig), "--audit-log", str(audit)],
        server_log, dict(os.environ),
    )  # fmt: skip
    try:
        wait_for("the API server", lambda: URL_PATTERN.search(server_log.read_text()), server_log)
        wait_for("its kubeconfig", kubeconfig.exists, server_log)
        kubectl = Kubectl(kubeconfig, scratch / "kubectl-cache")
        kubectl.ok("apply", "-f", str(CONFIG / "namespace.yaml"))
        kubectl.ok("apply", "-f", str(CONFIG / "crd" / "site.yaml"))  # as `apply -k` does
        engine = started(
            [sys.executable, "-m", "engine", "run", "--kubeconfig", str(kubeconfig), "--plain"],
            engine_log, engine_env(scratch, deployment),
        )  # fmt: skip
        try:
            out = engine_log.read_text
            wait_for("the engine to serve", lambda: "health:" in out(), engine_log)
            for name, extra in (("blog", ""), ("shop", ", image: nginx:1.27")):  # a Deployment
                site = SITE.format(name=name, domain=f"{name}.example.com", replicas=1, extra=extra)
                kubectl.ok("apply", "-f", "-", stdin=site)
            bad = SITE.format(name="bad", domain="invalid.example", replicas=1, extra="")
            kubectl.ok("apply", "-f", "-", stdin=bad)
            for name in ("blog", "shop"):
                wait_for(f"{name} Ready", lambda n=name: f"default/{n} Ready" in out(), engine_log)
            wait_for("bad Failed", lambda: "default/bad Failed" in out(), engine_log)
            kubectl.ok("patch", "site/shop", "--type=merge", "-p", '{"spec":{"replicas":2}}')
            wait_for(
                "shop's children updated",
                lambda: kubectl.run("get", "configmap/shop-config", "-o",
                                    "jsonpath={.data.replicas}").stdout == "2",
                engine_log,
            )  # fmt: skip
            kubectl.ok("delete", "site/blog", "--timeout=30s")
            wait_for("blog Deleted", lambda: "default/blog Deleted" in out(), engine_log)
        finally:
            stop(engine, engine_log)
    finally:
        stop(server, server_log)
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    from_kubectl = [e for e in entries if e["user_agent"].startswith("kubectl")]
    requests = tuple(
        Request(e["verb"], e["group"], e["resource"], e["subresource"], e["namespace"], e["name"])
        for e in entries
        if not e["user_agent"].startswith("kubectl")
    )
    roles = {m["kind"]: m for m in manifests if m["kind"] in ("Role", "ClusterRole")}
    return Workload(
        engine_requests=requests,
        engine_non_resource_paths=frozenset(
            e["path"]
            for e in entries
            if not e["resource"] and not e["user_agent"].startswith("kubectl")
        ),
        kubectl_request_count=len(from_kubectl),
        cluster_rules=tuple(rules_of(roles["ClusterRole"])),
        lease_rules=tuple(rules_of(roles["Role"])),
    )


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Workload:
    return run_workload(tmp_path_factory.mktemp("rbac"))


def resource_requests(workload: Workload) -> list[Request]:
    """The engine's resource requests. Discovery (/api, /apis, /version: no resource) is
    open to every authenticated user through system:discovery, so it needs no rule."""
    return [r for r in workload.engine_requests if r.resource]


def test_the_audit_log_tells_the_engine_from_kubectl(workload: Workload) -> None:
    assert workload.kubectl_request_count > 0
    assert len(resource_requests(workload)) > 0
    verbs = {(r.resource, r.verb) for r in resource_requests(workload)}
    assert ("sites", "watch") in verbs
    assert ("sites", "create") not in verbs  # only kubectl created Sites


def test_the_engine_reads_only_the_discovery_urls_every_account_may_read(
    workload: Workload,
) -> None:
    # system:discovery grants /version, /api, /api/*, /apis, /apis/* (and /openapi/*)
    open_prefixes = ("/api/", "/apis/", "/openapi/")
    for path in workload.engine_non_resource_paths:
        assert path in {"/version", "/api", "/apis"} or path.startswith(open_prefixes), path


def test_every_request_the_engine_made_is_allowed(workload: Workload) -> None:
    rules = [*workload.cluster_rules, *workload.lease_rules]
    assert [str(r) for r in denied(rules, resource_requests(workload))] == []


def test_the_cluster_role_grants_nothing_the_engine_did_not_use(workload: Workload) -> None:
    unused = unused_grants(workload.cluster_rules, resource_requests(workload))
    assert unused <= UNEXERCISED, f"granted but never requested: {sorted(unused - UNEXERCISED)}"
    assert ("example.dev", "sites/finalizers", "update") in unused  # an admission check only


def test_the_lease_role_grants_what_leader_election_uses(workload: Workload) -> None:
    lease_requests = [r for r in resource_requests(workload) if r.resource == "leases"]
    assert lease_requests, "the engine made no Lease request with ENGINE_LEADER_ELECTION=true"
    assert unused_grants(workload.lease_rules, lease_requests) == set()
