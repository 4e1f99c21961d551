"""The engine's users of kubernetes-asyncio (watchers, cluster writer, installer, leader
election) do not load its generated API and model classes; every name of the package
still resolves, from the same module, when something uses it."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import asyncio, json, sys
import engine.watchers, engine.effects.kube, engine.effects.install, engine.supervisor.leader
before = sorted(m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models."))
import kubernetes_asyncio
from kubernetes_asyncio import client
from kubernetes_asyncio.client.models import V1ConfigMap
lease = client.V1Lease(metadata=client.V1ObjectMeta(name="x"))


async def deserialized() -> str:
    async with client.ApiClient() as api:
        answer = type("Answer", (), {"data": '{"metadata": {"name": "y"}}'})()
        return type(api.deserialize(answer, "V1ConfigMap")).__name__


print(json.dumps({
    "models_at_start": before,
    "apis_at_start": "kubernetes_asyncio.client.api.core_v1_api" in sys.modules,
    "config_map": V1ConfigMap.__module__,
    "lease": lease.metadata.name,
    "core": client.CoreV1Api.__module__,
    "version": kubernetes_asyncio.__version__ == client.__version__,
    "deserialized": asyncio.run(deserialized()),
}))
"""


def test_the_engine_starts_without_the_generated_classes_and_each_still_resolves() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["models_at_start"] == []
    assert seen["apis_at_start"] is False
    assert seen["config_map"] == "kubernetes_asyncio.client.models.v1_config_map"
    assert seen["lease"] == "x"
    assert seen["core"] == "kubernetes_asyncio.client.api.core_v1_api"
    assert seen["version"] is True
    assert seen["deserialized"] == "V1ConfigMap"
