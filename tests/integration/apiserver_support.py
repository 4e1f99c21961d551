"""Shared pieces for the API server integration tests: a running server with a real
kubernetes-asyncio client, and a Site CRD with a schema, defaults and a status subresource."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client, config

from engine.apiserver.http.embedded import RunningApiServer, serve_apiserver
from engine.apiserver.store.api_context import Settings

GROUP = "example.engine.dev"
PLURAL = "sites"

SITE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "tier": {"type": "string", "enum": ["small", "large"], "default": "small"},
                "owner": {"type": "string"},
            },
            "required": ["size"],
        },
        "status": {
            "type": "object",
            "properties": {"state": {"type": "string"}, "observedGeneration": {"type": "integer"}},
        },
    },
}

SITE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "site", "kind": "Site", "shortNames": ["st"]},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": SITE_SCHEMA},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "State", "type": "string", "jsonPath": ".status.state"}
                ],
            }
        ],
    },
}


@dataclass(frozen=True)
class Connected:
    """A running server and a kubernetes-asyncio ApiClient configured from its kubeconfig."""

    server: RunningApiServer
    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)


@contextlib.asynccontextmanager
async def connected(settings: Settings | None = None) -> AsyncIterator[Connected]:
    """Start a server in memory and yield it with a real client."""
    async with serve_apiserver(settings=settings) as server:
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(server.kubeconfig_path), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield Connected(server=server, api=api)


async def install_site_crd(conn: Connected) -> None:
    """Create the Site CRD."""
    await client.ApiextensionsV1Api(conn.api).create_custom_resource_definition(SITE_CRD)


def site(name: str, *, size: Any = 3, **spec: Any) -> dict[str, Any]:
    """A Site object."""
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Site",
        "metadata": {"name": name},
        "spec": {"size": size, **spec},
    }
