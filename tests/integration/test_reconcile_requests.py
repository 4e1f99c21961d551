"""The engine sends only the requests the steps need: create → Ready costs a fixed
number of writes per resource, and a settled resource costs none (no status write that
changes nothing, no GET before a PATCH: the engine sends no GET at all here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.reconcile_support import eventually, running_engine

WRITES_TO_READY = 6
"""Finalizer patch, status Provisioning, Event Pending→Provisioning, child apply, Event
Provisioning→Ready, status Ready."""


async def test_create_to_ready_costs_six_writes_per_resource_and_nothing_after(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path) as engine:
        names = [f"req-{n}" for n in range(5)]
        for name in names:
            await engine.api.create_widget(name, size=1)

        async def all_ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in names])

        await eventually(all_ready, "every widget is Ready")
        sent = engine.controller.requests_sent
        assert sent == WRITES_TO_READY * len(names)
        await asyncio.sleep(1.0)  # watch events of the engine's own writes arrive and settle
        assert engine.controller.requests_sent == sent
