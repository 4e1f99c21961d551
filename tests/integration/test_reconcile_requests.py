"""The engine sends only the requests the steps need: create → Ready costs a fixed
number of writes per resource, and a settled resource costs none (no status write that
changes nothing, no GET before a PATCH: the engine sends no GET at all here)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    Engine,
    ExternalService,
    eventually,
    running_engine,
    widget_operator,
)

WRITES_TO_READY = 4
"""Finalizer patch, child apply, status Ready, one Event (Pending → Provisioning →
Ready): the Provisioning status of a provision that succeeds at once is never written."""

WRITES_TO_READY_WITHOUT_FINALIZE = 3
"""Child apply, status Ready, one Event: no finalize step and every child owned, so no
finalizer (the garbage collector removes the child with its owner)."""


async def _settled(engine: Engine, expected: int) -> None:
    """The engine sent `expected` writes (the Event follows the Ready status, so wait for
    it), and not one more once the watch events of its own writes arrived and settled."""

    async def sent_all() -> bool:
        return engine.controller.requests_sent >= expected

    await eventually(sent_all, f"{expected} writes sent")
    await asyncio.sleep(1.0)
    assert engine.controller.requests_sent == expected


async def test_create_to_ready_costs_four_writes_per_resource_and_nothing_after(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        names = [f"req-{n}" for n in range(5)]
        for name in names:
            await engine.api.create_widget(name, size=1)

        async def all_ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in names])

        await eventually(all_ready, "every widget is Ready")
        await _settled(engine, WRITES_TO_READY * len(names))


async def test_without_a_finalize_step_no_finalizer_is_written_and_owned_children_go_with_gc(
    tmp_path: Path,
) -> None:
    operator = replace(widget_operator(ExternalService()), finalize=None)
    async with running_engine(tmp_path, operator=operator) as engine:
        names = [f"bare-{n}" for n in range(5)]
        for name in names:
            await engine.api.create_widget(name, size=2)

        async def all_ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in names])

        await eventually(all_ready, "every widget is Ready")
        await _settled(engine, WRITES_TO_READY_WITHOUT_FINALIZE * len(names))
        widget = await engine.api.get(f"{WIDGETS}/{names[0]}")
        assert widget is not None
        assert not widget["metadata"].get("finalizers")

        status, _ = await engine.api.request("DELETE", f"{WIDGETS}/{names[0]}")
        assert status == 200

        async def child_collected() -> bool:
            return await engine.api.get(f"{CONFIGMAPS}/{names[0]}-config") is None

        await eventually(child_collected, "the garbage collector removes the owned ConfigMap")
        assert await engine.api.get(f"{CONFIGMAPS}/{names[1]}-config") is not None
