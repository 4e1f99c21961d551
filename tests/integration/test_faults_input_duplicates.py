"""E1: every watch event delivered 1000 times. The engine watches through the fault
proxy, which sends each line of each watch stream (the Widget's ADDED, every MODIFIED
echo, its ConfigMap child's events) a thousand times over real HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from engine.fsm import events as ev
from tests.integration.reconcile_support import eventually, running_engine
from tests.support.fault_proxy import FaultSettings

COPIES = 1000


async def test_one_event_delivered_a_thousand_times_runs_each_effect_once(
    tmp_path: Path,
) -> None:
    repeated = FaultSettings(repeat_watch_lines=COPIES)
    async with running_engine(tmp_path, fault_proxy=repeated) as engine:
        await engine.api.create_widget("copied", size=3)

        async def converged() -> bool:
            return await engine.phase("copied") == "Ready"

        await eventually(converged, "the Widget Ready")
        await asyncio.sleep(0.2)  # the copies still in flight have arrived
        records = [r async for r in engine.journal.read_all()]
        calls = dict(engine.service.calls)
    types = Counter(r.type for r in records)
    succeeded = Counter(r.data["key"] for r in records if r.type == ev.EFFECT_SUCCEEDED)
    # one external call for the Widget's (uid, generation)
    assert list(calls.values()) == [1], calls
    assert all(n == 1 for n in succeeded.values()), succeeded
    # the copies were not journaled: a few observations, not thousands
    assert types[ev.OBSERVED] <= 5, types
    print(dict(types))
