"""A real embedded API server for a test: started on a free loopback port with its own
kubeconfig (kubectl and kubernetes-asyncio use it unchanged), the operator's CRD
installed and served, and small JSON helpers for the operator's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine import Operator
from engine.apiserver.http.embedded import serve_apiserver
from engine.effects.install import Collection, apply_definition, wait_until_served
from engine.watchers import connect_kubeconfig

MERGE_PATCH = "application/merge-patch+json"


class ClusterRequestError(Exception):
    """The API server answered a helper's request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class EmbeddedCluster:
    """A running embedded API server: `url`, `kubeconfig` (a file), `api` (a connected
    kubernetes-asyncio `ApiClient`, closed on exit) and the operator it serves."""

    url: str
    kubeconfig: Path
    api: Any
    operator: Operator

    @property
    def collection(self) -> Collection:
        resource = self.operator.resource
        return Collection(resource.group, resource.version, resource.plural,
                          namespaced=resource.namespaced)  # fmt: skip

    def _path(self, namespace: str, name: str = "", subresource: str = "") -> str:
        path = self.collection.path(namespace)
        return "/".join(p for p in (path, name, subresource) if p)

    async def create(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create one of the operator's objects (apiVersion and kind filled in when absent)."""
        resource = self.operator.resource
        body = {"apiVersion": resource.api_version, "kind": resource.kind, **manifest}
        namespace = (body.get("metadata") or {}).get("namespace") or "default"
        return await self.request("POST", self._path(namespace), body=body)

    async def get(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", self._path(namespace, name))
        except ClusterRequestError as error:
            if error.status == 404:
                return None
            raise

    async def patch_spec(
        self, name: str, spec: Mapping[str, Any], *, namespace: str = "default"
    ) -> dict[str, Any]:
        """Merge-patch `spec` into the object (a new generation)."""
        body = {"spec": dict(spec)}
        return await self.request("PATCH", self._path(namespace, name), body=body,
                                  content_type=MERGE_PATCH)  # fmt: skip

    async def delete(self, name: str, namespace: str = "default") -> None:
        """Delete the object (the engine's finalizer holds it until `finalize` succeeded)."""
        await self.request("DELETE", self._path(namespace, name))

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One JSON request to the API server. Errors: `ClusterRequestError` for a status >= 400."""
        response: aiohttp.ClientResponse = await self.api.call_api(
            path,
            method,
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=dict(body) if body is not None else None,
            auth_settings=["BearerToken"],
            _preload_content=False,
            _request_timeout=30,
        )
        try:
            text = (await response.read()).decode("utf-8", errors="replace")
        finally:
            response.release()
        answer = json.loads(text) if text else {}
        if response.status >= 400:
            raise ClusterRequestError(response.status, str(answer.get("message", text[:300])))
        return dict(answer)


@contextlib.asynccontextmanager
async def start_cluster(operator: Operator, *, directory: Path) -> AsyncIterator[EmbeddedCluster]:
    """Serve an embedded API server (database and kubeconfig in `directory`) with
    `operator`'s CRD installed and served, for the `async with` body."""
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    kubeconfig = directory / "kubeconfig"
    async with serve_apiserver(
        db=str(directory / "apiserver.db"), kubeconfig_path=kubeconfig
    ) as server:
        api = await connect_kubeconfig(kubeconfig)
        try:
            cluster = EmbeddedCluster(url=server.url, kubeconfig=kubeconfig, api=api,
                                      operator=operator)  # fmt: skip
            await apply_definition(api, operator.resource.crd())
            await wait_until_served(api, cluster.collection)
            yield cluster
        finally:
            await api.close()
