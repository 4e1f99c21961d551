"""After a restart on the same SQLite file, the controllers and the simulated kubelet pick
up where they were: Pods left Pending start, and a ReplicaSet keeps its count."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from kubernetes_asyncio import client, config

from engine.apiserver.http.embedded import serve_apiserver
from engine.apiserver.kubelet.pod_stages import KubeletSettings

NEVER = KubeletSettings(start_delay=3600.0)
FAST = KubeletSettings(start_delay=0.02, run_seconds=0.05, grace_cap=0.05)


@contextlib.asynccontextmanager
async def apps_and_core(
    db: Path, kubelet: KubeletSettings
) -> AsyncIterator[tuple[client.AppsV1Api, client.CoreV1Api]]:
    async with serve_apiserver(db=str(db), kubelet=kubelet) as server:
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(server.kubeconfig_path), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield client.AppsV1Api(api), client.CoreV1Api(api)


def replica_set(replicas: int) -> dict[str, object]:
    labels = {"app": "kept"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "kept"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }


async def phases(core: client.CoreV1Api) -> list[str]:
    pods = await core.list_namespaced_pod("default", label_selector="app=kept")
    return sorted(p.status.phase if p.status else "" for p in pods.items)


async def wait_for_phases(core: client.CoreV1Api, wanted: list[str]) -> None:
    for _ in range(500):
        if await phases(core) == wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"pods stayed {await phases(core)}, wanted {wanted}")


async def test_pods_left_pending_start_after_a_restart_and_the_count_holds(
    tmp_path: Path,
) -> None:
    db = tmp_path / "api.db"
    async with apps_and_core(db, NEVER) as (apps, core):
        await apps.create_namespaced_replica_set("default", replica_set(2))
        await wait_for_phases(core, ["Pending", "Pending"])
    async with apps_and_core(db, FAST) as (apps, core):
        await wait_for_phases(core, ["Running", "Running"])
        await apps.patch_namespaced_replica_set_scale("kept", "default", {"spec": {"replicas": 3}})
        await wait_for_phases(core, ["Running", "Running", "Running"])
        found = await apps.read_namespaced_replica_set("kept", "default")
        for _ in range(500):
            found = await apps.read_namespaced_replica_set("kept", "default")
            if found.status.ready_replicas == 3:
                break
            await asyncio.sleep(0.02)
        assert found.status.ready_replicas == 3
