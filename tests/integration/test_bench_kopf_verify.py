"""`engine bench kopf` fails loudly when an operator's work is wrong: the check reads
every Widget and ConfigMap from a real embedded API server over HTTP."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from engine.apiserver.http.embedded import serve_apiserver
from engine.bench.kopf_side import CONFIG_MAPS, CRDS, WIDGETS, KopfBenchError, verify
from engine.bench.kopf_widget_engine import WIDGET


def _config_map(name: str, size: str, owner: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "controller": True,
             "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        ]  # fmt: skip
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"size": size}}


async def test_verify_names_each_wrong_config_map() -> None:
    async with (
        serve_apiserver() as server,
        aiohttp.ClientSession(server.url) as session,
    ):
        async with session.post(CRDS, json=WIDGET.crd()) as response:
            assert response.status == 201
        widgets = []
        for index in range(4):
            body = {"apiVersion": "bench.example.dev/v1", "kind": "Widget",
                    "metadata": {"name": f"w-{index}"}, "spec": {"size": index}}  # fmt: skip
            async with session.post(WIDGETS, json=body) as response:
                assert response.status == 201
                widgets.append(await response.json())
        children = [
            _config_map("w-0-cm", "0", widgets[0]),  # right
            _config_map("w-1-cm", "7", widgets[1]),  # wrong size
            _config_map("w-2-cm", "2", None),  # not owned
        ]  # w-3 has none
        for child in children:
            async with session.post(CONFIG_MAPS, json=child) as response:
                assert response.status == 201
        with pytest.raises(KopfBenchError) as failed:
            await verify(session, "kopf")
        message = str(failed.value)
        assert "(3 of 4)" in message
        assert "w-1-cm holds {'size': '7'}" in message
        assert "w-2-cm is not controlled by its Widget" in message
        assert "w-3-cm is missing" in message
        assert "w-0-cm" not in message

        async with session.delete(f"{CONFIG_MAPS}/w-1-cm") as response:
            assert response.status == 200
        for child in (_config_map("w-1-cm", "1", widgets[1]),
                      _config_map("w-3-cm", "3", widgets[3])):  # fmt: skip
            async with session.post(CONFIG_MAPS, json=child) as response:
                assert response.status == 201
        async with session.delete(f"{CONFIG_MAPS}/w-2-cm") as response:
            assert response.status == 200
        async with session.post(
            CONFIG_MAPS, json=_config_map("w-2-cm", "2", widgets[2])
        ) as response:
            assert response.status == 201
        await verify(session, "kopf")  # all right now: no error
