"""The restart's in-flight scan (`OfflineReader.open_runs`): one query names the streams
whose newest handler attempt started and has no outcome, the same streams a fold of
every stream finds with a handler effect pending (what the engine resumes first)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from engine.clock import FakeClock
from engine.fsm.key import FINALIZE, PROVISION
from engine.journal.offline_reader import OfflineReader
from engine.journal.sqlite import SqliteJournal
from engine.runtime.reconcile.memory_loop import MemoryLoop
from tests.support.gadget_operator import RETRY, Target, gadget_operator


async def test_open_runs_names_the_streams_a_fold_finds_in_flight(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path, clock=clock)
    try:
        target = Target()
        loop = MemoryLoop(gadget_operator(target), journal=journal, clock=clock)
        ready = await loop.create("ready", {"size": "1Gi"})
        await loop.settle(ready)
        target.plan["register"] = [RETRY]
        retrying = await loop.create("retrying", {"size": "1Gi"})
        await loop.reconcile(retrying)  # failed, its retry due: not in flight
        target.hold = asyncio.Event()
        cut = await loop.create("cut", {"size": "1Gi"})
        turn = asyncio.get_running_loop().create_task(loop.reconcile(cut))
        await target.entered.wait()
        turn.cancel()  # a kill -9 inside the register step: the provision has no outcome
        with contextlib.suppress(asyncio.CancelledError):
            await turn

        folded = set()
        for stream in await journal.streams():
            state = await loop.streams.current(stream)
            if any(e.name in (PROVISION, FINALIZE) for e in state.pending_effects):
                folded.add(stream)
    finally:
        await journal.close()

    with OfflineReader.open(path) as reader:
        found = reader.open_runs((PROVISION, FINALIZE))
    assert found == [loop.stream(cut)]
    assert set(found) == folded
