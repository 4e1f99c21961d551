"""Workloads through kubernetes-asyncio over real HTTP: the scale subresource, OpenAPI
documents with upstream schemas, a Deployment's chain collected in the foreground, and Pod
watch events through the simulated kubelet's phases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config, watch

from engine.apiserver.http.embedded import RunningApiServer, serve_apiserver
from engine.apiserver.kubelet.pod_stages import KubeletSettings

FAST = KubeletSettings(start_delay=0.02, run_seconds=0.05, grace_cap=0.05)


@contextlib.asynccontextmanager
async def cluster() -> AsyncIterator[tuple[RunningApiServer, client.ApiClient]]:
    async with serve_apiserver(kubelet=FAST) as server:
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(server.kubeconfig_path), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield server, api


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }


async def until(check: Callable[[], Awaitable[bool]], *, attempts: int = 500) -> None:
    """Poll `check` every 20 ms (10 s by default) until it holds."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_scale_subresource_reads_and_sets_replicas() -> None:
    async with cluster() as (_, api):
        apps = client.AppsV1Api(api)
        await apps.create_namespaced_deployment("default", deployment("web", 2))
        scale = await apps.read_namespaced_deployment_scale("web", "default")
        assert scale.spec.replicas == 2
        assert scale.status.selector == "app=web"
        await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 5}})
        assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 5

        async def ready() -> bool:
            found = await apps.read_namespaced_deployment("web", "default")
            return found.status is not None and (found.status.ready_replicas or 0) == 5

        await until(ready)


async def test_openapi_documents_carry_upstream_schemas_of_built_in_kinds() -> None:
    async with cluster() as (server, _), aiohttp.ClientSession(server.url) as session:
        async with session.get("/openapi/v3") as response:
            index = await response.json()
        assert {"api/v1", "apis/apps/v1", "apis/batch/v1"} <= set(index["paths"])
        async with session.get(index["paths"]["apis/apps/v1"]["serverRelativeURL"]) as response:
            document = await response.json()
        schemas = document["components"]["schemas"]
        replica_set = schemas["io.k8s.api.apps.v1.ReplicaSet"]
        assert replica_set["x-kubernetes-group-version-kind"] == [
            {"group": "apps", "kind": "ReplicaSet", "version": "v1"}
        ]
        assert "io.k8s.api.core.v1.PodSpec" in schemas
        assert "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}/scale" in document["paths"]


async def test_foreground_deletion_of_a_deployment_collects_replicasets_and_pods_first() -> None:
    async with cluster() as (_, api):
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        await apps.create_namespaced_deployment("default", deployment("chain", 3))

        async def rolled_out() -> bool:
            found = await apps.read_namespaced_deployment("chain", "default")
            return found.status is not None and (found.status.available_replicas or 0) == 3

        await until(rolled_out)
        await apps.delete_namespaced_deployment(
            "chain", "default", body=client.V1DeleteOptions(propagation_policy="Foreground")
        )

        async def all_gone() -> bool:
            deployments = await apps.list_namespaced_deployment("default")
            sets = await apps.list_namespaced_replica_set("default")
            pods = await core.list_namespaced_pod("default", label_selector="app=chain")
            return not (deployments.items or sets.items or pods.items)

        await until(all_gone)


async def test_a_pod_is_watched_through_pending_running_and_deletion() -> None:
    async with cluster() as (_, api):
        core = client.CoreV1Api(api)
        body = {"metadata": {"name": "solo"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip
        # watched from a revision before the create, as an informer lists then watches: the
        # Pending events are replayed however fast the kubelet moves the Pod on
        listed = await core.list_namespaced_pod("default")
        await core.create_namespaced_pod("default", body)
        seen: list[tuple[str, str]] = []
        stream = watch.Watch()
        async with asyncio.timeout(10):
            async for event in stream.stream(
                core.list_namespaced_pod,
                "default",
                field_selector="metadata.name=solo",
                resource_version=listed.metadata.resource_version,
            ):
                pod = event["object"]
                seen.append((event["type"], pod.status.phase if pod.status else ""))
                running = pod.status is not None and pod.status.phase == "Running"
                if running and not pod.metadata.deletion_timestamp and event["type"] != "DELETED":
                    await core.delete_namespaced_pod("solo", "default")
                if event["type"] == "DELETED":
                    break
        stream.stop()
        phases = [phase for _, phase in seen]
        assert "Pending" in phases
        assert "Running" in phases
        assert seen[-1][0] == "DELETED"
        nodes = await core.list_node()
        assert [n.metadata.name for n in nodes.items] == ["sim-node-1"]
