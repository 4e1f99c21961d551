"""The restart's start-up scan (`start_scan.scan`): the streams in flight, and every
other stream's newest `Observed` record (`OfflineReader.newest_of_type`), read without
folding a stream, as reading each stream whole finds them."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.fsm import events as ev
from engine.journal.errors import JournalError
from engine.journal.offline_reader import OfflineReader
from engine.journal.sqlite import SqliteJournal
from engine.runtime.manager.start_scan import begin, scan
from engine.runtime.reconcile.memory_loop import MemoryLoop
from tests.support.gadget_operator import GROUP, RETRY, Target, gadget_operator


async def _journal_with_runs(path: Path) -> MemoryLoop:
    """A journal at `path` of settled Gadgets, one waiting for its retry and one cut
    inside its step; the loop that wrote it."""
    clock = FakeClock()
    journal = await SqliteJournal.open(path, clock=clock)
    try:
        target = Target()
        loop = MemoryLoop(gadget_operator(target), journal=journal, clock=clock)
        for n in range(3):
            await loop.settle(await loop.create(f"settled-{n}", {"size": f"{n}Gi"}))
        target.retry_delay = 3600.0
        target.plan["register"] = [RETRY]
        await loop.reconcile(await loop.create("retrying", {"size": "1Gi"}))
        target.hold = asyncio.Event()
        turn = asyncio.get_running_loop().create_task(
            loop.reconcile(await loop.create("cut", {"size": "1Gi"}))
        )
        await target.entered.wait()
        turn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turn
    finally:
        await journal.close()
    return loop


async def test_a_scan_begun_early_answers_what_the_scan_does_with_the_head_it_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    loop = await _journal_with_runs(path)
    early = begin(path)
    assert early is not None
    assert early.path == path
    found = await asyncio.wrap_future(early.result)
    assert found == scan(path, "")
    assert found.in_flight == (loop.stream("default/cut"), loop.stream("default/retrying"))
    assert {r.stream for r in found.observed} == {
        loop.stream(f"default/settled-{n}") for n in range(3)
    }
    with OfflineReader.open(path) as reader:
        assert found.head == reader.head
    assert found.head.position > 0


def test_nothing_is_begun_without_a_journal_file(tmp_path: Path) -> None:
    assert begin(None) is None
    assert begin(tmp_path / "journal.db") is None  # a first start
    assert begin(tmp_path) is None  # a directory is no journal file


async def test_a_scan_begun_early_on_a_file_that_is_no_journal_hands_back_its_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    path.write_bytes(b"not a journal at all" * 100)
    early = begin(path)
    assert early is not None
    with pytest.raises(JournalError):
        await asyncio.wrap_future(early.result)


async def test_the_scan_names_the_runs_in_flight_and_the_last_observation_of_the_others(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path, clock=clock)
    try:
        target = Target()
        loop = MemoryLoop(gadget_operator(target), journal=journal, clock=clock)
        settled = [await loop.create(f"settled-{n}", {"size": f"{n}Gi"}) for n in range(3)]
        for key in settled:
            await loop.settle(key)
        target.retry_delay = 3600.0
        target.plan["register"] = [RETRY]
        retrying = await loop.create("retrying", {"size": "1Gi"})
        await loop.reconcile(retrying)  # failed, its retry due: a run to resume after the cut
        target.hold = asyncio.Event()
        cut = await loop.create("cut", {"size": "1Gi"})
        turn = asyncio.get_running_loop().create_task(loop.reconcile(cut))
        await target.entered.wait()
        turn.cancel()  # a kill -9 inside the register step
        with contextlib.suppress(asyncio.CancelledError):
            await turn
        newest = {}
        for key in settled:
            records = await journal.read_stream(loop.stream(key))
            observed = [r for r in records if r.type == ev.OBSERVED]
            assert len(observed) > 1  # the scan must pick the newest of several
            newest[loop.stream(key)] = observed[-1]
    finally:
        await journal.close()

    found = scan(path, f"{GROUP}/Gadget/")
    assert found.in_flight == (loop.stream(cut), loop.stream(retrying))
    assert {r.stream: r for r in found.observed} == newest
    assert scan(path, "other.dev/Thing/").observed == ()
