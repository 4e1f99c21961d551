"""The Widget workload of `engine bench kopf`, written for kopf (run by `kopf run`).

On create, the ConfigMap `<name>-cm` with `data.size = str(spec.size)`, adopted by the
Widget (`kopf.adopt`: the controller ownerReference), then `status.phase = Ready`.
The ConfigMap is POSTed with one plain aiohttp session to the kubeconfig's server (the
cheapest client kopf could be given). This file is kopf's side of the comparison: the
engine never imports it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import yaml


def _server_and_headers() -> tuple[str, dict[str, str]]:
    """The server URL and bearer token of the kubeconfig in KUBECONFIG."""
    kubeconfig = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    server = kubeconfig["clusters"][0]["cluster"]["server"]
    token = kubeconfig["users"][0]["user"].get("token", "")
    return server, ({"Authorization": f"Bearer {token}"} if token else {})


@kopf.on.startup()
async def connect(memo: kopf.Memo, **_: Any) -> None:
    server, headers = _server_and_headers()
    memo.session = aiohttp.ClientSession(server, headers=headers)


@kopf.on.cleanup()
async def disconnect(memo: kopf.Memo, **_: Any) -> None:
    await memo.session.close()


@kopf.on.create("bench.example.dev", "v1", "widgets")
async def create_widget(
    spec: kopf.Spec,
    name: str,
    namespace: str | None,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    config_map: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-cm"},
        "data": {"size": str(spec["size"])},
    }
    kopf.adopt(config_map)
    path = f"/api/v1/namespaces/{namespace or 'default'}/configmaps"
    async with memo.session.post(path, json=config_map) as response:
        if response.status not in (201, 409):
            raise kopf.TemporaryError(f"creating {name}-cm -> {response.status}", delay=1)
    patch.status["phase"] = "Ready"
