"""The engine as its own manifests deploy it, in a simulated pod: `engine run --in-cluster`
reads the ServiceAccount token, ca.crt and namespace from a directory and
KUBERNETES_SERVICE_HOST/PORT, and runs its whole job against `engine apiserver
--authorization-mode=RBAC` over HTTPS. The ClusterRole and the Lease Role of config/ are
enforced by the server: every request the engine makes is allowed and Sites reach Ready;
what the roles do not grant is refused with 403, and `kubectl auth can-i --as` agrees."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.e2e.kubectl import Kubectl
from tests.e2e.test_rbac_reality import SITE, engine_env, started, stop, wait_for
from tests.support.manifests import CONFIG, find, needs_kubectl, render
from tests.support.rbac import Request, Rule, denied, rules_of

pytestmark = [pytest.mark.e2e, needs_kubectl]
NAMESPACE = "engine-system"
ACCOUNT = f"system:serviceaccount:{NAMESPACE}:engine"
HTTPS_URL = re.compile(r"https://127\.0\.0\.1:(\d+)")
RBAC_KINDS = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
              "RoleBinding")  # fmt: skip


@dataclass(frozen=True)
class Run:
    """What one in-cluster run left behind."""

    scratch: Path
    admin: Kubectl
    server_url: str
    ca_file: Path
    token: str
    engine_log: str
    audit: tuple[dict[str, object], ...]
    rules: tuple[Rule, ...]


def as_account(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with the engine's ServiceAccount token (no kubeconfig), over HTTPS."""
    command = ["kubectl", f"--server={run.server_url}", f"--certificate-authority={run.ca_file}",
               f"--token={run.token}", f"--cache-dir={run.scratch / 'sa-cache'}",
               "--request-timeout=10s", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def run_in_cluster(scratch: Path) -> Run:
    manifests = render(CONFIG)
    deployment = find(manifests, "Deployment", "engine")
    kubeconfig, audit = scratch / "kubeconfig", scratch / "audit.jsonl"
    server_log, engine_log = scratch / "apiserver.log", scratch / "engine.log"
    server = started(
        [sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db"),
         "--port", "0", "--secure-port", "0", "--cert-dir", str(scratch / "pki"),
         "--authorization-mode=RBAC", "--kubeconfig", str(kubeconfig),
         "--audit-log", str(audit)],
        server_log, dict(os.environ),
    )  # fmt: skip
    try:
        wait_for("the HTTPS URL", lambda: HTTPS_URL.search(server_log.read_text()), server_log)
        wait_for("its kubeconfig", kubeconfig.exists, server_log)
        match = HTTPS_URL.search(server_log.read_text())
        assert match is not None
        admin = Kubectl(kubeconfig, scratch / "kubectl-cache")
        wanted = [m for m in manifests if m["kind"] in RBAC_KINDS]
        admin.ok("apply", "-f", "-", stdin=yaml.safe_dump_all(wanted))
        token = admin.ok("create", "token", "engine", "-n", NAMESPACE, "--duration=1h").strip()
        pod = scratch / "serviceaccount"
        pod.mkdir()
        (pod / "token").write_text(token)
        (pod / "ca.crt").write_bytes((scratch / "pki" / "ca.crt").read_bytes())
        (pod / "namespace").write_text(NAMESPACE)
        env = engine_env(scratch, deployment)
        env.update(KUBERNETES_SERVICE_HOST="127.0.0.1", KUBERNETES_SERVICE_PORT=match.group(1),
                   ENGINE_SERVICE_ACCOUNT_DIR=str(pod))  # fmt: skip
        engine = started(
            [sys.executable, "-m", "engine", "run", "--in-cluster", "--plain"], engine_log, env
        )
        try:
            out = engine_log.read_text
            wait_for("the engine to serve", lambda: "health:" in out(), engine_log, seconds=60)
            for name in ("blog", "shop"):
                site = SITE.format(name=name, domain=f"{name}.example.com", replicas=1, extra="")
                admin.ok("apply", "-f", "-", stdin=site)
            for name in ("blog", "shop"):
                wait_for(f"{name} Ready", lambda n=name: f"default/{n} Ready" in out(), engine_log)
            admin.ok("delete", "site/blog", "--timeout=30s")
            wait_for("blog Deleted", lambda: "default/blog Deleted" in out(), engine_log)
        finally:
            stop(engine, engine_log)

        def watches_logged() -> bool:
            # a watch is audited when it ends: the server logs the engine's three watches
            # (sites, configmaps, services) a moment after the engine has closed them
            entries = [json.loads(line) for line in audit.read_text().splitlines()]
            engine_watches = [
                e for e in entries
                if e["verb"] == "watch" and not str(e["user_agent"]).startswith("kubectl")
            ]  # fmt: skip
            return len(engine_watches) >= 3

        wait_for("the engine's watches in the audit log", watches_logged, server_log, seconds=10)
        entries = tuple(json.loads(line) for line in audit.read_text().splitlines())
        roles = [m for m in manifests if m["kind"] in ("Role", "ClusterRole")]
        return Run(
            scratch=scratch, admin=admin, server_url=match.group(0),
            ca_file=pod / "ca.crt", token=token, engine_log=engine_log.read_text(),
            audit=entries, rules=tuple(r for role in roles for r in rules_of(role)),
        )  # fmt: skip
    finally:
        stop(server, server_log)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_in_cluster(tmp_path_factory.mktemp("in-cluster"))


@pytest.fixture(scope="module")
def live(run: Run) -> Iterator[Run]:
    """The same server state, served again (the module's run stopped it) for probes."""
    scratch = run.scratch
    log = scratch / "apiserver-again.log"
    server = started(
        [sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db"),
         "--port", "0", "--secure-port", "0", "--cert-dir", str(scratch / "pki"),
         "--authorization-mode=RBAC", "--kubeconfig", str(scratch / "kubeconfig")],
        log, dict(os.environ),
    )  # fmt: skip
    wait_for("the HTTPS URL", lambda: HTTPS_URL.search(log.read_text()), log)
    match = HTTPS_URL.search(log.read_text())
    assert match is not None
    try:
        yield dataclasses.replace(run, server_url=match.group(0))
    finally:
        stop(server, log)


def engine_entries(run: Run) -> list[dict[str, object]]:
    return [e for e in run.audit if not str(e["user_agent"]).startswith("kubectl")]


def test_sites_reach_ready_under_the_service_account(run: Run) -> None:
    assert "default/blog Ready" in run.engine_log
    assert "default/shop Ready" in run.engine_log
    assert "default/blog Deleted" in run.engine_log


def test_every_request_the_engine_made_was_allowed(run: Run) -> None:
    entries = engine_entries(run)
    assert len(entries) > 20
    refused = [e for e in entries if e["code"] in (401, 403)]
    assert refused == []
    assert {e["user"] for e in entries} == {ACCOUNT}  # every request as the ServiceAccount
    resources = {(e["resource"], e["verb"]) for e in entries}
    assert ("sites", "watch") in resources
    assert ("leases", "update") in resources or ("leases", "create") in resources


def test_what_the_role_does_not_grant_is_refused_with_403(live: Run) -> None:
    done = as_account(live, "get", "secrets", "-n", "default")
    assert done.returncode == 1
    assert (
        f'secrets is forbidden: User "{ACCOUNT}" cannot list resource "secrets" in API group '
        '"" in the namespace "default"'
    ) in done.stderr
    allowed = as_account(live, "get", "configmaps", "-A", "-o", "name")
    assert allowed.returncode == 0, allowed.stderr
    assert "configmap/shop-config" in allowed.stdout


def test_the_service_account_token_is_who_it_says(live: Run) -> None:
    done = as_account(live, "auth", "whoami", "-o", "json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)["status"]["userInfo"]
    assert info["username"] == ACCOUNT
    assert set(info["groups"]) == {
        "system:serviceaccounts",
        f"system:serviceaccounts:{NAMESPACE}",
        "system:authenticated",
    }


CAN_I = [
    pytest.param("list", "sites.example.dev", "default", id="list-sites"),
    pytest.param("watch", "sites.example.dev", "default", id="watch-sites"),
    pytest.param("patch", "sites.example.dev:status", "default", id="patch-site-status"),
    pytest.param("update", "sites.example.dev:status", "default", id="update-site-status"),
    pytest.param("delete", "sites.example.dev", "default", id="delete-sites"),
    pytest.param("create", "events", "default", id="create-events"),
    pytest.param("patch", "configmaps", "default", id="patch-configmaps"),
    pytest.param("delete", "configmaps", "default", id="delete-configmaps"),
    pytest.param("list", "secrets", "default", id="list-secrets"),
    pytest.param("create", "leases.coordination.k8s.io", NAMESPACE, id="create-lease"),
    pytest.param("create", "leases.coordination.k8s.io", "default", id="create-lease-elsewhere"),
    pytest.param("update", "leases.coordination.k8s.io/engine-leader", NAMESPACE,
                 id="update-own-lease"),
    pytest.param("update", "leases.coordination.k8s.io/other", NAMESPACE, id="update-other-lease"),
]  # fmt: skip


@pytest.mark.parametrize(("verb", "what", "namespace"), CAN_I)
def test_kubectl_auth_can_i_as_the_account_matches_the_roles(
    live: Run, verb: str, what: str, namespace: str
) -> None:
    what, _, subresource = what.partition(":")
    resource, _, name = what.partition("/")
    plural, _, group = resource.partition(".")
    request = Request(verb, group, plural, subresource, namespace, name)
    expected = "no" if denied(list(live.rules), [request]) else "yes"
    extra = (f"--subresource={subresource}",) if subresource else ()
    done = live.admin.run("auth", "can-i", verb, what, "-n", namespace, f"--as={ACCOUNT}", *extra)
    assert done.stdout.strip().split(" ")[0] == expected, done.describe()
