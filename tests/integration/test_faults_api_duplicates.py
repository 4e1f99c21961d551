"""B.2 A6d: the running engine, through the fault proxy, against the embedded API server,
with its watches ended once the Widgets are Ready and the next ones repeating the
events earlier watches of their path delivered, then ending (so the engine reconnects
and gets them all again, eight times in all). The repeated events cost no effect, no
write and no journaled attempt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.fsm import events as ev
from tests.integration.reconcile_support import (
    Engine,
    eventually,
    running_engine,
)
from tests.support.fault_proxy import REPLAY_WATCH, FaultSettings

NAMES = ["d0", "d1", "d2"]
REPEATS = 8
WRITES_TO_READY = 4


async def _attempts(engine: Engine) -> int:
    return len([r async for r in engine.journal.read_all() if r.type == ev.EFFECT_STARTED])


async def test_events_repeated_after_each_reconnect_cost_no_effect_or_write(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path, fault_proxy=FaultSettings()) as engine:
        proxy = engine.proxy
        assert proxy is not None
        for name in NAMES:
            await engine.api.create_widget(name, size=1)

        async def ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in NAMES])

        await eventually(ready, "every Widget Ready")

        async def settled() -> bool:  # finalizer, child, status and the Event of each
            return engine.controller.requests_sent >= WRITES_TO_READY * len(NAMES)

        await eventually(settled, "the writes to Ready sent")
        writes, calls, attempts = (
            engine.controller.requests_sent,
            dict(engine.service.calls),
            await _attempts(engine),
        )
        proxy.settings = FaultSettings(watch_rate=1.0, kinds=(REPLAY_WATCH,), limit=REPEATS)
        proxy.end_watches()

        async def repeated() -> bool:
            return len(proxy.injected) == REPEATS

        await eventually(repeated, f"{REPEATS} watches repeated what was delivered")
        await asyncio.sleep(0.2)  # the engine has handled the last of them

        assert engine.controller.requests_sent == writes, "no write for a repeated event"
        assert engine.service.calls == calls
        assert sorted(calls.values()) == [1] * len(NAMES)
        assert await _attempts(engine) == attempts, "no attempt journaled"
        assert [await engine.phase(name) for name in NAMES] == ["Ready"] * len(NAMES)
