"""Installing an operator's manifests before it runs: apply its CRD (server-side apply,
so a newer schema replaces an older one), wait until the API serves the new kind, and
create sample objects that are missing (an existing object, perhaps edited by hand, is
left alone).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from engine.effects.kube_client import ApiClient

_AUTH = ["BearerToken"]
FIELD_MANAGER = "engine"
KubeApi = ApiClient
"""The client type callers outside the Kubernetes layers may name (they cannot import it)."""

InstallOutcome = Literal["created", "exists", "applied"]


class InstallError(Exception):
    """A manifest could not be installed; the message names it and the server's answer."""


@dataclass(frozen=True)
class Collection:
    """Where objects of one kind live: `/api/v1` or `/apis/<group>/<version>`, plural, scope."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            return f"{root}/namespaces/{namespace or 'default'}/{self.plural}"
        return f"{root}/{self.plural}"


CRDS = Collection("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


def _describe(manifest: Mapping[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{manifest.get('kind', '?')} {where}{metadata.get('name', '?')}"


async def _request(
    api: ApiClient,
    method: str,
    path: str,
    *,
    body: Mapping[str, Any] | None = None,
    content_type: str = "application/json",
    query: list[tuple[str, str]] | None = None,
) -> tuple[int, str]:
    try:
        response: aiohttp.ClientResponse = await api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=dict(body) if body is not None else None,
            auth_settings=_AUTH,
            _preload_content=False,
            _request_timeout=30,
        )
        try:
            text = (await response.read()).decode("utf-8", errors="replace")
        finally:
            response.release()
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise InstallError(f"{method} {path}: {error or type(error).__name__}") from None
    return response.status, text


def _message(text: str) -> str:
    try:
        status = json.loads(text)
    except ValueError:
        return text[:300]
    return str(status.get("message", text[:300])) if isinstance(status, dict) else text[:300]


async def apply_definition(api: ApiClient, crd: Mapping[str, Any]) -> InstallOutcome:
    """Server-side apply of a CustomResourceDefinition (creates it or updates it).

    Errors: `InstallError` naming the CRD and the server's message.
    """
    name = str(crd["metadata"]["name"])
    status, text = await _request(
        api,
        "PATCH",
        f"{CRDS.path(None)}/{name}",
        body=crd,
        content_type="application/apply-patch+yaml",
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
    )
    if status >= 300:
        raise InstallError(f"cannot apply {_describe(crd)}: {status} {_message(text)}")
    return "applied"


async def apply_cluster_object(
    api: ApiClient, collection: Collection, manifest: Mapping[str, Any]
) -> InstallOutcome:
    """Server-side apply of a cluster-scoped object of `collection` (a webhook
    configuration, say). Errors: `InstallError` naming it and the server's message."""
    name = str(manifest["metadata"]["name"])
    status, text = await _request(
        api,
        "PATCH",
        f"{collection.path(None)}/{name}",
        body=manifest,
        content_type="application/apply-patch+yaml",
        query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
    )
    if status >= 300:
        raise InstallError(f"cannot apply {_describe(manifest)}: {status} {_message(text)}")
    return "applied"


async def wait_until_served(
    api: ApiClient, collection: Collection, *, timeout_seconds: float = 30.0
) -> None:
    """Return once LIST of `collection` answers 200 (a new CRD is established).

    Errors: `InstallError` after `timeout_seconds`.
    """
    deadline = time.monotonic() + timeout_seconds
    path = collection.path("default")
    while True:
        status, text = await _request(api, "GET", path, query=[("limit", "1")])
        if status == 200:
            return
        if time.monotonic() > deadline:
            raise InstallError(
                f"{collection.plural}.{collection.group} is not served after "
                f"{timeout_seconds:g}s ({status} {_message(text)}); check the CRD"
            )
        await asyncio.sleep(0.1)


async def list_objects(api: ApiClient, collection: Collection) -> list[dict[str, Any]]:
    """Every object of `collection` in all namespaces (one LIST).

    Errors: `InstallError` naming the collection and the server's answer.
    """
    root = (
        f"/apis/{collection.group}/{collection.version}"
        if collection.group
        else f"/api/{collection.version}"
    )
    status, text = await _request(api, "GET", f"{root}/{collection.plural}")
    if status != 200:
        raise InstallError(f"cannot list {collection.plural}: {status} {_message(text)}")
    items = json.loads(text).get("items") or []
    return [item for item in items if isinstance(item, dict)]


async def create_if_missing(
    api: ApiClient, collection: Collection, manifest: Mapping[str, Any]
) -> InstallOutcome:
    """Create `manifest` unless an object of that name exists ("exists": left as it is).

    Errors: `InstallError` naming the object and the server's message (for example a
    sample that fails the CRD's schema).
    """
    namespace = (manifest.get("metadata") or {}).get("namespace")
    status, text = await _request(api, "POST", collection.path(namespace), body=manifest)
    if status == 409:
        return "exists"
    if status >= 300:
        raise InstallError(f"cannot create {_describe(manifest)}: {status} {_message(text)}")
    return "created"
