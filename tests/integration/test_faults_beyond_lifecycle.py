"""Objects and definitions that go away under a running engine: a Widget deleted and
created again with the same name (a new uid) is provisioned as a new object, its
children its own; a namespace deleted while its Widgets hold the engine's finalizer has
them finalized and goes; the CustomResourceDefinition deleted while the engine runs is
reported in one log line and by /readyz, the engine neither exits nor fails liveness,
and it goes on once the definition is created again. The engine, the embedded API
server (its garbage collector and namespace controller) and SQLite are the real ones,
over real HTTP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    WIDGETS,
    Engine,
    eventually,
    fast_settings,
    install_crd,
    running_engine,
    widget_operator,
)

CRD = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{PLURAL}.{GROUP}"
PROBE = 0.1


async def _until_phase(engine: Engine, name: str, phase: str, *, uid: str | None = None) -> None:
    async def reached() -> bool:
        widget = await engine.widget(name)
        if widget is None or (uid is not None and widget["metadata"]["uid"] != uid):
            return False
        return (widget.get("status") or {}).get("phase") == phase

    await eventually(reached, f"{name} is {phase}")


def _owners(obj: dict[str, Any] | None) -> list[str]:
    return [ref["uid"] for ref in ((obj or {}).get("metadata") or {}).get("ownerReferences", [])]


async def test_a_widget_deleted_and_created_again_with_the_same_name_is_a_new_object(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        first = (await engine.api.create_widget("reborn", size=1))["metadata"]["uid"]
        await _until_phase(engine, "reborn", "Ready", uid=first)
        assert _owners(await engine.config("reborn")) == [first]
        assert await engine.api.delete(f"{WIDGETS}/reborn") == 200

        async def gone() -> bool:
            return await engine.widget("reborn") is None

        await eventually(gone, "the first reborn finalized and gone")
        second = (await engine.api.create_widget("reborn", size=2))["metadata"]["uid"]
        assert second != first
        await _until_phase(engine, "reborn", "Ready", uid=second)

        async def owned_by_the_new_one() -> bool:
            config = await engine.config("reborn")
            return _owners(config) == [second] and (config or {})["data"]["size"] == "2"

        await eventually(owned_by_the_new_one, "the ConfigMap belongs to the new reborn")
        # each uid has its own stream and keys: the first provisioned and finalized once,
        # the second provisioned once, and no finalize ran against it
        streams = await engine.journal.streams()
        assert len([s for s in streams if s.endswith(first)]) == 1
        assert len([s for s in streams if s.endswith(second)]) == 1
        calls = engine.service.calls
        assert sorted(calls.values()) == [1, 1, 1], calls
        assert {key.split(":")[0] + ":" + key.split(":")[2] for key in calls} == {
            f"{first}:register",
            f"{first}:unregister",
            f"{second}:register",
        }
        assert engine.service.registered == {"reborn": {"size": 2}}
        assert await engine.phase("reborn") == "Ready"
        assert _owners(await engine.config("reborn")) == [second]


async def test_a_namespace_deleted_while_its_widgets_hold_the_finalizer_goes(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        api = engine.api
        status, made = await api.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}}
        )
        assert status == 201, made
        widgets = f"/apis/{GROUP}/{VERSION}/namespaces/doomed/{PLURAL}"
        uids = []
        for name in ("one", "two", "three"):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "metadata": {"name": name, "namespace": "doomed"},
                "spec": {"size": 1},
            }
            status, made = await api.request("POST", widgets, body)
            assert status == 201, made
            uids.append(made["metadata"]["uid"])

        async def all_ready() -> bool:
            status, listed = await api.request("GET", widgets)
            phases = [(item.get("status") or {}).get("phase") for item in listed["items"]]
            return status == 200 and phases == ["Ready"] * 3

        await eventually(all_ready, "the doomed namespace's widgets are Ready")
        assert await api.delete("/api/v1/namespaces/doomed") == 200

        async def namespace_gone() -> bool:
            status, _ = await api.request("GET", "/api/v1/namespaces/doomed")
            return status == 404

        await eventually(namespace_gone, "the namespace goes once its widgets are finalized")
        assert engine.service.registered == {}
        unregistered = [key for key in engine.service.calls if key.endswith(":unregister")]
        assert sorted(key.split(":")[0] for key in unregistered) == sorted(uids)
        assert all(count == 1 for count in engine.service.calls.values())
        # the engine still serves the namespaces that remain
        await engine.api.create_widget("after", size=1)
        await _until_phase(engine, "after", "Ready")


async def _probe(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as answer:
        return answer.status, await answer.text()


async def test_the_crd_deleted_under_a_running_engine_is_reported_and_recovered_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = fast_settings(tmp_path, readiness_probe_seconds=PROBE)
    async with (
        running_engine(tmp_path, settings=settings) as engine,
        aiohttp.ClientSession() as http,
    ):
        url = engine.controller.health_url
        assert url is not None
        await engine.api.create_widget("before", size=1)
        await _until_phase(engine, "before", "Ready")
        caplog.set_level(logging.INFO, logger="engine.runtime.manager.readiness")
        assert await engine.api.delete(CRD) == 200

        async def not_ready() -> bool:
            return await _probe(http, f"{url}/readyz") == (503, "unavailable: resource\n")

        await eventually(not_ready, "/readyz names the missing resource", within=10)
        # the engine is alive and stays up: no exit, liveness holds, one line says why
        for _ in range(5):
            assert await _probe(http, f"{url}/healthz") == (200, "ok\n")
        assert await _probe(http, f"{url}/readyz") == (503, "unavailable: resource\n")
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.name == "engine.runtime.manager.readiness" and r.levelno == logging.WARNING
        ]
        assert warnings == [
            "readiness: the API server does not serve widgets.test.engine.dev/v1 (404): its "
            "CustomResourceDefinition is missing; the engine waits, and goes on once it is "
            "created again"
        ]
        await install_crd(engine.api, widget_operator(engine.service))

        async def ready() -> bool:
            return await _probe(http, f"{url}/readyz") == (200, "ok\n")

        await eventually(ready, "ready again once the CRD is back", within=10)
        await engine.api.create_widget("after", size=1)
        await _until_phase(engine, "after", "Ready")
