"""The supervisors' side of the reconcile loop over in-memory parts: the stuck watchdog's
note heals a resource in its next turn (and the journal replays), a note left while a
reconcile of the key runs waits for the key's next turn, and two writers racing on one
stream never interleave (the journal's `ConcurrencyError`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.clock import FakeClock
from engine.fsm import events as ev
from engine.journal.errors import ConcurrencyError
from engine.journal.memory import MemoryJournal
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.journal.store import Journal
from engine.runtime.queue.worker import Outcome, RequeueAfter
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.conditions import STUCK
from engine.runtime.reconcile.inbox import Note
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.supervision.watchdog import RunningReconciles, Watchdog
from tests.support.gadget_operator import PERMANENT, REGISTER, Target, gadget_operator, replay

DEADLINE = 60.0


def _types(records: list[Record]) -> list[str]:
    return [r.type for r in records]


def _watchdog(loop: MemoryLoop, running: RunningReconciles | None = None) -> Watchdog:
    """The real stuck watchdog over the loop's parts (Provisioning has a deadline)."""
    return Watchdog(
        operator=loop.operator,
        streams=loop.streams,
        objects=loop.objects,
        conditions=loop.conditions,
        running=running or RunningReconciles(),
        inbox=loop.inbox,
        enqueue=loop.queued.append,
        clock=loop.clock,
        deadlines={"Provisioning": DEADLINE},
    )


async def _cut_mid_step(loop: MemoryLoop, key: str, target: Target) -> None:
    """Run `key`'s turn until its `register` step is called, then end the process there
    (a kill -9: the step's EffectStarted has no outcome)."""
    turn = asyncio.get_running_loop().create_task(loop.reconcile(key))
    await target.entered.wait()
    turn.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await turn


async def _hung_then_restarted() -> tuple[MemoryLoop, str]:
    """A provision cut off inside its `register` step (a kill -9), and the new process
    on the same journal and cluster after its relists."""
    hung = Target(hold=asyncio.Event())
    loop = MemoryLoop(gadget_operator(hung))
    key = await loop.create("alpha", {"size": 1})
    await _cut_mid_step(loop, key, hung)
    restarted = loop.restart(gadget_operator(Target()))
    await restarted.relist()
    return restarted, key


async def test_the_watchdogs_note_heals_a_hung_provision_in_the_next_turn() -> None:
    restarted, key = await _hung_then_restarted()
    assert await _watchdog(restarted).check() == ()  # not overdue yet
    restarted.clock.advance(DEADLINE + 1)
    (report,) = await _watchdog(restarted).check()
    assert report.key == key
    assert report.pending_effect == "uid-alpha:1:register (attempt 1)"
    assert restarted.inbox.pending(key)
    assert key in restarted.queued
    before = len(await restarted.records(key))
    assert ev.STUCK_DETECTED not in _types(await restarted.records(key))  # only noted

    await restarted.settle(key)

    records = await restarted.records(key)
    turn = records[before:]
    assert _types(turn)[:2] == [ev.STUCK_DETECTED, ev.HEALING_APPLIED]
    assert turn[1].data["action"] == "redrive"
    resumed = [r for r in turn if r.type == ev.EFFECT_STARTED]
    assert [(r.data["key"], r.data["attempt"]) for r in resumed] == [
        ("uid-alpha:1:provision", 2),
        ("uid-alpha:1:register", 2),
    ]
    triggers = [r.data["trigger"] for r in records if r.type == ev.TRANSITION_TAKEN]
    assert triggers == ["observed_live", "provisioned"]  # no false drift after the restart
    assert (await restarted.state(key)).state == "Ready"
    warnings = [e for e in restarted.cluster.events if e.reason == "StuckDetected"]
    assert len(warnings) == 1
    assert warnings[0].warning


async def test_the_replay_of_a_journal_the_watchdog_healed_agrees_with_it() -> None:
    restarted, key = await _hung_then_restarted()
    restarted.clock.advance(DEADLINE + 1)
    assert len(await _watchdog(restarted).check()) == 1
    await restarted.settle(key)
    assert (await restarted.state(key)).state == "Ready"
    report = await replay(restarted)
    assert report.divergence is None, report.divergence


async def test_a_healing_note_on_a_failed_resource_reprovisions_it_in_a_new_round() -> None:
    target = Target(plan={REGISTER: [PERMANENT]})
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("bravo", {"size": 2})
    await loop.settle(key)
    assert (await loop.state(key)).state == "Failed"

    # the note the watchdog leaves when it re-drives (engine/runtime/supervision/watchdog.py)
    note = Note(
        stream=loop.stream(key),
        records=(
            ev.stuck_detected(state="Failed", seconds=DEADLINE + 1, reason="in Failed for 61s"),
            ev.healing_applied(action="redrive", reason="heal 1: re-drive"),
        ),
        condition={
            "type": "Stuck",
            "status": "True",
            "reason": "FailedDeadlineExceeded",
            "message": "in Failed for 61s",
        },
        reason="StuckDetected",
        message="in Failed for 61s",
    )
    loop.leave_note(key, note)
    await loop.settle(key)

    records = await loop.records(key)
    assert [r.data["trigger"] for r in records if r.type == ev.TRANSITION_TAKEN][-2:] == [
        "healing",
        "provisioned",
    ]
    assert target.calls == ["uid-bravo:1:register", "uid-bravo:1:register:1"]
    assert (await loop.state(key)).state == "Ready"
    report = await replay(loop)
    assert report.divergence is None, report.divergence


async def test_a_note_left_during_a_running_reconcile_is_acted_on_in_the_next_turn_only() -> None:
    target = Target(hold=asyncio.Event())
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("charlie", {"size": 1})
    running = RunningReconciles()

    async def turn() -> Outcome | None:
        try:
            async with running.guard(key, 3600):
                return (await loop.reconcile(key)).outcome
        except TimeoutError:
            return running.outcome_after_timeout(key, 3600)

    first = asyncio.get_running_loop().create_task(turn())
    await target.entered.wait()  # the reconcile is inside its register step
    loop.clock.advance(DEADLINE + 1)
    watchdog = Watchdog(
        operator=loop.operator,
        streams=loop.streams,
        objects=loop.objects,
        conditions=loop.conditions,
        running=running,
        inbox=loop.inbox,
        enqueue=loop.queued.append,
        clock=loop.clock,
        deadlines={"Provisioning": DEADLINE},
    )
    (report,) = await watchdog.check()
    assert report.key == key
    assert loop.inbox.pending(key)
    assert ev.STUCK_DETECTED not in _types(await loop.records(key))  # not beside the turn

    outcome = await first  # the re-drive ended the running turn at its deadline
    assert isinstance(outcome, RequeueAfter) or outcome is None
    records = await loop.records(key)
    assert ev.STUCK_DETECTED not in _types(records)
    assert loop.inbox.pending(key)  # still waiting for the key's next turn
    ended = len(records)

    target.hold = None  # the next call answers at once
    await loop.settle(key)
    records = await loop.records(key)
    assert not loop.inbox.pending(key)
    assert _types(records)[ended : ended + 2] == [ev.STUCK_DETECTED, ev.HEALING_APPLIED]
    assert _types(records).count(ev.STUCK_DETECTED) == 1
    assert (await loop.state(key)).state == "Ready"
    obj = loop.cluster.get(loop.kind, "default", "charlie")
    assert obj is not None
    assert STUCK not in {c["type"] for c in obj["status"]["conditions"]}


@contextlib.asynccontextmanager
async def _memory(tmp_path: Path) -> AsyncIterator[Journal]:
    yield MemoryJournal(clock=FakeClock())


@contextlib.asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[Journal]:
    journal = await SqliteJournal.open(tmp_path / "journal.db", clock=FakeClock())
    try:
        yield journal
    finally:
        await journal.close()


@pytest.mark.parametrize(
    "journal_of",
    [pytest.param(_memory, id="memory"), pytest.param(_sqlite, id="sqlite")],
)
async def test_two_writers_racing_on_one_stream_never_interleave(
    tmp_path: Path, journal_of: object
) -> None:
    stream = "loop.engine.dev/Gadget/default/delta#uid-delta"
    async with journal_of(tmp_path) as journal:  # type: ignore[operator]
        one = StreamWriter(journal, ledger=ChildLedger())
        other = StreamWriter(journal, ledger=ChildLedger())
        assert (await one.current(stream)).version == 0
        assert (await other.current(stream)).version == 0
        mine = [ev.stuck_detected(state="Provisioning", seconds=1.0, reason="mine")] * 2
        theirs = [ev.healing_applied(action="redrive", reason="the other writer")] * 2

        results = await asyncio.gather(
            one.append(stream, mine), other.append(stream, theirs), return_exceptions=True
        )

        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], ConcurrencyError)
        records = await journal.read_stream(stream)
        assert [r.stream_version for r in records] == [1, 2]
        assert len({r.type for r in records}) == 1  # one writer's two records, whole
        winner = one if not isinstance(results[0], BaseException) else other
        loser = other if winner is one else one
        assert (await winner.current(stream)).version == 2
        assert (await loser.current(stream)).version == 2  # it reads before it writes again
