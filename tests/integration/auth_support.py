"""Shared pieces for the authentication and RBAC tests: a server with security options,
real kubernetes-asyncio clients for the administrator and for any bearer token, and
helpers to write roles and bindings."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from engine.apiserver.http.embedded import RunningApiServer, serve_apiserver
from engine.apiserver.http.security import SecurityOptions

RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Secured:
    """A running server, an administrator client, and where its files are."""

    server: RunningApiServer
    admin: client.ApiClient
    scratch: Path

    def as_token(self, token: str, *, headers: Mapping[str, str] | None = None) -> client.ApiClient:
        """A client sending `token` (and extra headers) to the server's kubeconfig URL."""
        configuration = client.Configuration(host=self.server.url)
        configuration.api_key = {"BearerToken": f"Bearer {token}"}
        if self.server.ca_pem is not None:
            ca = self.scratch / "client-ca.crt"
            ca.write_bytes(self.server.ca_pem)
            configuration.ssl_ca_cert = str(ca)
        api = client.ApiClient(configuration=configuration)
        for key, value in (headers or {}).items():
            api.set_default_header(key, value)
        return api


@contextlib.asynccontextmanager
async def secured(options: SecurityOptions) -> AsyncIterator[Secured]:
    """`serve_apiserver` with `options`, and an administrator client from its kubeconfig."""
    with tempfile.TemporaryDirectory(prefix="engine-auth-") as scratch_dir:
        scratch = Path(scratch_dir)
        async with serve_apiserver(
            kubeconfig_path=scratch / "kubeconfig", security=options
        ) as server:
            configuration = client.Configuration()
            await config.load_kube_config(
                config_file=str(server.kubeconfig_path), client_configuration=configuration
            )
            async with client.ApiClient(configuration=configuration) as admin:
                yield Secured(server=server, admin=admin, scratch=scratch)


async def create(api: client.ApiClient, kind: str, body: dict[str, Any]) -> None:
    """Create an RBAC object (Role, ClusterRole, RoleBinding, ClusterRoleBinding)."""
    rbac = client.RbacAuthorizationV1Api(api)
    namespace = body["metadata"].get("namespace")
    body = {"apiVersion": f"{RBAC}/v1", "kind": kind, **body}
    if kind == "Role":
        await rbac.create_namespaced_role(namespace, body)
    elif kind == "RoleBinding":
        await rbac.create_namespaced_role_binding(namespace, body)
    elif kind == "ClusterRole":
        await rbac.create_cluster_role(body)
    else:
        await rbac.create_cluster_role_binding(body)


def subject(kind: str, name: str, namespace: str | None = None) -> dict[str, str]:
    """A binding subject (User, Group or ServiceAccount)."""
    found = {"kind": kind, "name": name}
    if kind == "ServiceAccount":
        if namespace is not None:
            found["namespace"] = namespace
    else:
        found["apiGroup"] = RBAC
    return found


async def bind(
    api: client.ApiClient,
    *,
    name: str,
    role: str,
    subjects: list[dict[str, str]],
    namespace: str | None = None,
    role_kind: str = "ClusterRole",
) -> None:
    """A RoleBinding (with `namespace`) or ClusterRoleBinding of `role` to `subjects`."""
    metadata: dict[str, str] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    body = {
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": subjects,
    }
    await create(api, "RoleBinding" if namespace is not None else "ClusterRoleBinding", body)


async def status_of(call: Any) -> int:
    """The HTTP status of awaiting `call` (200 when it succeeds)."""
    try:
        await call
    except ApiException as error:
        return int(error.status)
    return 200
