"""1,000 resources converge to Ready, each with its child, against the embedded API
server over real HTTP (no timing asserted: speed belongs to `engine bench reconcile`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    eventually,
    fast_settings,
    running_engine,
)

RESOURCES = 1000


async def test_a_thousand_resources_converge_to_ready(tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, max_concurrent_reconciles=16)
    async with running_engine(tmp_path, settings=settings, separate_apiserver=True) as engine:
        gate = asyncio.Semaphore(32)

        async def create(n: int) -> None:
            async with gate:
                await engine.api.create_widget(f"w-{n:04d}", size=n % 10)

        await asyncio.gather(*(create(n) for n in range(RESOURCES)))

        async def converged() -> bool:
            _, listed = await engine.api.request("GET", WIDGETS)
            phases = [(item.get("status") or {}).get("phase") for item in listed["items"]]
            return phases == ["Ready"] * RESOURCES

        await eventually(converged, f"{RESOURCES} widgets Ready", within=100)
        assert all(v.state == "Ready" for v in engine.controller.snapshot())
        _, maps = await engine.api.request("GET", CONFIGMAPS)
        children = [m for m in maps["items"] if m["metadata"]["name"].endswith("-config")]
        assert len(children) == RESOURCES
        assert len(engine.service.registered) == RESOURCES
        assert set(engine.service.calls.values()) == {1}
