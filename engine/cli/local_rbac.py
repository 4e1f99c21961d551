"""`engine run --local --rbac`: the embedded API server enforces RBAC over HTTPS; the
administrator installs the Namespace, ServiceAccount, ClusterRole, Role and bindings of
config/ (the files the kustomize base lists, in its namespace), and the engine connects
with a kubeconfig carrying that ServiceAccount's token, so it runs with exactly the
rights a deployment grants it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from engine.apiserver.http.embedded import RunningApiServer
from engine.apiserver.http.kubeconfig import write_kubeconfig
from engine.apiserver.http.security import SecurityOptions
from engine.effects.install import Collection, KubeApi, create_if_missing

CONFIG = Path(__file__).resolve().parents[2] / "config"
ACCOUNT = "engine"
TOKEN_SECONDS = 30 * 24 * 3600
RBAC_GROUP = "rbac.authorization.k8s.io"
COLLECTIONS = {
    "Namespace": Collection("", "v1", "namespaces", namespaced=False),
    "ServiceAccount": Collection("", "v1", "serviceaccounts"),
    "ClusterRole": Collection(RBAC_GROUP, "v1", "clusterroles", namespaced=False),
    "ClusterRoleBinding": Collection(RBAC_GROUP, "v1", "clusterrolebindings", namespaced=False),
    "Role": Collection(RBAC_GROUP, "v1", "roles"),
    "RoleBinding": Collection(RBAC_GROUP, "v1", "rolebindings"),
}


def server_options(state_dir: Path) -> SecurityOptions:
    """The server's options: RBAC, HTTPS on a free port, certificates kept in the state dir."""
    return SecurityOptions(authorization_mode="RBAC", secure_port=0, cert_dir=state_dir / "pki")


def rbac_manifests(config: Path) -> tuple[str, list[dict[str, Any]]]:
    """The kustomize base's namespace and its objects of the kinds above, each namespaced
    one placed in that namespace (as `kubectl kustomize` renders them).

    Errors: `click.ClickException` when config/ or its kustomization cannot be read.
    """
    try:
        kustomization = yaml.safe_load((config / "kustomization.yaml").read_text())
        namespace = str(kustomization["namespace"])
        documents = [
            doc
            for resource in kustomization["resources"]
            for doc in yaml.safe_load_all((config / str(resource)).read_text())
            if isinstance(doc, dict) and doc.get("kind") in COLLECTIONS
        ]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise click.ClickException(
            f"--rbac needs the manifests in {config} (kustomization.yaml, rbac/): {error}"
        ) from None
    for doc in documents:
        if COLLECTIONS[doc["kind"]].namespaced:
            doc["metadata"]["namespace"] = namespace
    order = list(COLLECTIONS)
    return namespace, sorted(documents, key=lambda doc: order.index(doc["kind"]))


async def enroll(admin: KubeApi, server: RunningApiServer, state_dir: Path) -> Path:
    """Install the engine's RBAC objects with the administrator client `admin` and write
    `<state_dir>/engine-kubeconfig` for the engine's ServiceAccount; its path."""
    namespace, manifests = rbac_manifests(CONFIG)
    for manifest in manifests:
        await create_if_missing(admin, COLLECTIONS[manifest["kind"]], manifest)
    assert server.service_account_token is not None
    # a static token in a kubeconfig is not refreshed: make it outlast any local session
    token = server.service_account_token(namespace, ACCOUNT, TOKEN_SECONDS)
    path = state_dir / "engine-kubeconfig"
    write_kubeconfig(path, url=server.url, token=token, ca_pem=server.ca_pem, namespace=namespace)
    return path
