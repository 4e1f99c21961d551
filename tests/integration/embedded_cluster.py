"""kubernetes-asyncio against the embedded API server: one client for ConfigMaps and Sites."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from engine.apiserver.http.embedded import serve_apiserver

NAMESPACE = "default"
GROUP, VERSION, PLURAL = "example.dev", "v1", "sites"
SITE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "site", "kind": "Site"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"domain": {"type": "string"}},
                            },
                        },
                    }
                },
            }
        ],
    },
}


@dataclass(frozen=True)
class Cluster:
    """The generated APIs over one ApiClient, reduced to plain dicts for ConfigMaps and Sites."""

    api: client.ApiClient

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    async def install_site_crd(self) -> None:
        await client.ApiextensionsV1Api(self.api).create_custom_resource_definition(SITE_CRD)
        await eventually(self._site_collection_served, "the Site CRD is served")

    async def _site_collection_served(self) -> bool:
        try:
            await self.custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
        except ApiException as missing:
            if missing.status == 404:
                return False
            raise
        return True

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        if kind == "ConfigMap":
            made = await self.core.create_namespaced_config_map(NAMESPACE, body)
            return dict(self.api.sanitize_for_serialization(made))
        made = await self.custom.create_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, body
        )
        return dict(made)

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            if kind == "ConfigMap":
                found = await self.core.read_namespaced_config_map(name, NAMESPACE)
                return dict(self.api.sanitize_for_serialization(found))
            return dict(
                await self.custom.get_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, name
                )
            )
        except ApiException as missing:
            if missing.status == 404:
                return None
            raise

    async def delete(self, kind: str, name: str, policy: str) -> None:
        if kind == "ConfigMap":
            await self.core.delete_namespaced_config_map(name, NAMESPACE, propagation_policy=policy)
        else:
            await self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, propagation_policy=policy
            )

    async def merge_patch(self, kind: str, name: str, body: dict[str, Any]) -> None:
        if kind == "ConfigMap":
            await self.core.patch_namespaced_config_map(
                name, NAMESPACE, body, _content_type="application/merge-patch+json"
            )
        else:
            await self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                name,
                body,
                _content_type="application/merge-patch+json",
            )

    async def current_version(self) -> str:
        """The resourceVersion of a fresh ConfigMap list (one counter for the whole store)."""
        listed = await self.core.list_namespaced_config_map(NAMESPACE)
        return str(listed.metadata.resource_version)

    async def deletion_versions(
        self, kind: str, tag: str, *, since: str, names: set[str]
    ) -> dict[str, int]:
        """Watch `kind` from `since` until every name in `names` is DELETED: name -> its RV."""
        if kind == "ConfigMap":
            lister: Any = self.core.list_namespaced_config_map
            args: tuple[str, ...] = (NAMESPACE,)
        else:
            lister = self.custom.list_namespaced_custom_object
            args = (GROUP, VERSION, NAMESPACE, PLURAL)
        seen: dict[str, int] = {}
        stream = watch.Watch()
        async with stream:
            async for event in stream.stream(
                lister,
                *args,
                label_selector=f"family={tag}",
                resource_version=since,
                timeout_seconds=10,
            ):
                metadata = event["raw_object"]["metadata"]
                if event["type"] == "DELETED":
                    seen[metadata["name"]] = int(metadata["resourceVersion"])
                if names <= seen.keys():
                    break
        assert names <= seen.keys(), f"{kind} DELETED events seen: {seen}, wanted {names}"
        return seen

    async def family(self, tag: str, *, with_sites: bool = True) -> dict[str, list[str]]:
        """Every ConfigMap (and Site) labelled family=tag: name -> its owners' uids."""
        selector = f"family={tag}"
        maps = await self.core.list_namespaced_config_map(NAMESPACE, label_selector=selector)
        items = [self.api.sanitize_for_serialization(m) for m in maps.items]
        if with_sites:
            sites = await self.custom.list_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, label_selector=selector
            )
            items += sites["items"]
        return {
            item["metadata"]["name"]: [
                r["uid"] for r in item["metadata"].get("ownerReferences", [])
            ]
            for item in items
        }


@asynccontextmanager
async def running_cluster(db: Path | str = ":memory:", *, scratch: Path) -> AsyncIterator[Cluster]:
    """serve_apiserver on `db`, and a kubernetes-asyncio client loaded from its kubeconfig."""
    async with serve_apiserver(db=str(db), kubeconfig_path=scratch / "kubeconfig") as running:
        settings = client.Configuration()
        await config.load_kube_config(
            config_file=str(running.kubeconfig_path), client_configuration=settings
        )
        async with client.ApiClient(settings) as api:
            yield Cluster(api)


def manifest(
    kind: str,
    name: str,
    tag: str,
    *,
    owners: tuple[dict[str, Any], ...] = (),
    finalizers: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A ConfigMap or Site labelled family=tag, owned by `owners` (objects as returned)."""
    metadata: dict[str, Any] = {"name": name, "labels": {"family": tag}}
    if owners:
        metadata["ownerReferences"] = [owner_reference(owner) for owner in owners]
    if finalizers:
        metadata["finalizers"] = list(finalizers)
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": kind, "metadata": metadata, "data": {"a": "b"}}
    spec = {"domain": f"{name}.example.com"}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": spec}


def owner_reference(owner: dict[str, Any], *, block: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = 10.0
) -> None:
    """Wait (polling) until `check` holds; fail naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)
