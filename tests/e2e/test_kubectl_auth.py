"""The real kubectl against `engine apiserver --authorization-mode=RBAC` over HTTPS:
`kubectl auth can-i` with and without --as / --as-group, `auth whoami`, `create token`,
403 and 401 as kubectl shows them; and bad security flags refused in one line, exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.kubectl import KUBECTL, Kubectl, needs_kubectl
from tests.e2e.test_rbac_reality import started, stop, wait_for

pytestmark = [pytest.mark.e2e, needs_kubectl]
HTTPS_URL = re.compile(r"https://127\.0\.0\.1:\d+")
TOKENS = 'alice-token,alice,1,"team-a"\nbob-token,bob,2\n'
SETUP = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cm-reader}
rules:
  - {apiGroups: [""], resources: [configmaps], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: team-a-reads, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cm-reader}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-a}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules:
  - {apiGroups: [""], resources: [users], verbs: [impersonate], resourceNames: [bob]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-impersonates-bob}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-bob}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: default}
"""


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    scratch = tmp_path_factory.mktemp("kubectl-auth")
    (scratch / "tokens.csv").write_text(TOKENS)
    kubeconfig, log = scratch / "kubeconfig", scratch / "apiserver.log"
    server = started(
        [sys.executable, "-m", "engine", "apiserver", "--kubeconfig", str(kubeconfig),
         "--authorization-mode=RBAC", "--secure-port", "0", "--cert-dir", str(scratch / "pki"),
         "--token-auth-file", str(scratch / "tokens.csv")],
        log, dict(os.environ),
    )  # fmt: skip
    try:
        wait_for("the HTTPS URL", lambda: HTTPS_URL.search(log.read_text()), log)
        wait_for("its kubeconfig", kubeconfig.exists, log)
        kubectl = Kubectl(kubeconfig, scratch / "kubectl-cache")
        kubectl.ok("apply", "-f", "-", stdin=SETUP)
        yield kubectl
    finally:
        stop(server, log)


def with_token(admin: Kubectl, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    command = [KUBECTL, "--kubeconfig", str(admin.kubeconfig), "--token", token,
               "--cache-dir", str(admin.cache_dir), "--request-timeout=10s", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


CAN_I = [
    pytest.param(("list", "configmaps"), (), "yes", id="admin-anything"),
    pytest.param(("list", "configmaps"), ("--as=alice", "--as-group=team-a"), "yes",
                 id="as-user-and-group"),
    pytest.param(("list", "configmaps"), ("--as=alice",), "no", id="as-user-without-group"),
    pytest.param(("delete", "configmaps"), ("--as=alice", "--as-group=team-a"), "no",
                 id="verb-not-granted"),
    pytest.param(("list", "configmaps", "-n", "kube-system"), ("--as=alice", "--as-group=team-a"),
                 "no", id="other-namespace"),
    pytest.param(("create", "selfsubjectaccessreviews.authorization.k8s.io"), ("--as=bob",),
                 "yes", id="basic-user"),
    pytest.param(("get", "/version"), ("--as=bob",), "yes", id="public-info-url"),
    pytest.param(("get", "/api"), ("--as=bob",), "yes", id="discovery-url"),
    pytest.param(("get", "/metrics"), ("--as=bob",), "no", id="other-url"),
]  # fmt: skip


@pytest.mark.parametrize(("question", "as_flags", "answer"), CAN_I)
def test_kubectl_auth_can_i(
    admin: Kubectl, question: tuple[str, ...], as_flags: tuple[str, ...], answer: str
) -> None:
    done = admin.run("auth", "can-i", *question, *as_flags)
    assert done.stdout.strip() == answer, done.describe()
    assert done.code == (0 if answer == "yes" else 1)


def test_anonymous_may_not_even_ask(admin: Kubectl) -> None:
    done = admin.run("auth", "can-i", "get", "/api", "--as=system:anonymous")
    assert done.code == 1
    assert (
        'selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "system:anonymous" '
        'cannot create resource "selfsubjectaccessreviews" in API group "authorization.k8s.io" '
        "at the cluster scope"
    ) in done.stderr


def test_can_i_asked_with_a_users_own_token(admin: Kubectl) -> None:
    assert with_token(admin, "alice-token", "auth", "can-i", "list", "configmaps").stdout == "yes\n"
    assert with_token(admin, "bob-token", "auth", "can-i", "list", "configmaps").stdout == "no\n"


def test_a_refused_request_shows_upstreams_forbidden_line(admin: Kubectl) -> None:
    done = with_token(admin, "alice-token", "get", "secrets")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'Error from server (Forbidden): secrets is forbidden: User "alice" cannot list '
        'resource "secrets" in API group "" in the namespace "default"'
    )


def test_an_unknown_token_is_unauthorized(admin: Kubectl) -> None:
    done = with_token(admin, "no-such-token", "get", "configmaps")
    assert done.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in done.stderr


def test_impersonation_with_as_is_allowed_only_where_bound(admin: Kubectl) -> None:
    allowed = with_token(admin, "alice-token", "auth", "whoami", "--as=bob")
    assert allowed.returncode == 0, allowed.stderr
    assert re.search(r"Username\s+bob", allowed.stdout)
    refused = with_token(admin, "alice-token", "get", "configmaps", "--as=carol")
    assert refused.returncode == 1
    assert (
        'users "carol" is forbidden: User "alice" cannot impersonate resource "users" in API '
        'group "" at the cluster scope'
    ) in refused.stderr


def test_kubectl_create_token_issues_a_service_account_token(admin: Kubectl) -> None:
    token = admin.ok("create", "token", "robot").strip()
    done = with_token(admin, token, "auth", "whoami")
    assert done.returncode == 0, done.stderr
    assert re.search(r"Username\s+system:serviceaccount:default:robot", done.stdout)
    listed = admin.ok("auth", "can-i", "--list", "--as=system:serviceaccount:default:robot")
    assert "selfsubjectaccessreviews.authorization.k8s.io" in listed


BAD_FLAGS = [
    pytest.param(("--authorization-mode=Bogus",), "Invalid value for '--authorization-mode'",
                 id="unknown-mode"),
    pytest.param(("--oidc-issuer-url=https://issuer.test",),
                 "--oidc-issuer-url and --oidc-client-id go together", id="oidc-half"),
    pytest.param(("--authentication-token-webhook-config-file=/nonexistent/webhook.yaml",),
                 "webhook config /nonexistent/webhook.yaml", id="webhook-missing"),
    pytest.param(("--token-auth-file=/nonexistent/tokens.csv",),
                 "--token-auth-file /nonexistent/tokens.csv", id="token-file-missing"),
    pytest.param(("--tls-cert-file=/nonexistent/tls.crt",),
                 "--tls-cert-file and --tls-private-key-file go together", id="tls-half"),
    pytest.param(("--authentication-token-webhook-cache-ttl=soon",),
                 "not a duration", id="bad-duration"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "message"), BAD_FLAGS)
def test_bad_security_flags_get_one_line_and_exit_2(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "apiserver", "--kubeconfig", str(tmp_path / "kc"),
         *flags],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
