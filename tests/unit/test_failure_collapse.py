"""Consecutive identical failed attempts are journaled as a few records with a count:
a retry loop of any length adds a number of records that grows with the logarithm of
its attempts; a failure that changes starts over; the runner still counts every
attempt; the live-loop replay reproduces the collapsed journal; a long
`ctx.wait_for_child` stays bounded; an attempt cut off inside a collapsed run is found
by the in-flight scan and no completed effect runs again."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from engine.cli.main import cli
from engine.clock import FakeClock
from engine.effects import BackoffPolicy, EffectRunner, RetryableError, RunnerDeps
from engine.effects.errors import EffectRetryScheduled
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.key import FINALIZE, PROVISION
from engine.journal.memory import MemoryJournal
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.replay.recording import is_external
from engine.replay.replayed_run import replay_through_loop
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.streams import StreamWriter
from tests.support.gadget_operator import (
    CONFIG_MAPS,
    GADGET,
    REGISTER,
    Target,
    gadget_operator,
    journal_of,
    replay,
)

STREAM = "loop.engine.dev/Gadget/default/alpha#uid-alpha"
KEY = "uid-alpha:1:provision"
MANY = BackoffPolicy(max_attempts=1_000_000, cap=1.0)


def _failures(records: list[Record], key: str) -> list[Record]:
    return [r for r in records if r.type == ev.EFFECT_FAILED and r.data.get("key") == key]


def _repeated(record: Record) -> dict[str, Any]:
    value = record.data.get(ev.REPEATED_FIELD)
    assert isinstance(value, dict), record
    return value


async def test_a_retry_loop_of_10000_identical_failures_adds_a_bounded_number_of_records() -> None:
    clock = FakeClock()
    journal = MemoryJournal(clock=clock)
    writer = StreamWriter(journal, ledger=ChildLedger(), clock=clock)
    runner = EffectRunner(RunnerDeps(journal=journal, streams=writer, clock=clock, backoff=MANY))

    async def busy(_: str) -> None:
        raise RetryableError("the registry is busy")

    attempts = []
    for _ in range(10_000):
        try:
            await runner.run(STREAM, KEY, PROVISION, busy)
        except EffectRetryScheduled as retry:
            attempts.append(retry.attempt)
            clock.advance(retry.delay)
    assert attempts == list(range(1, 10_001))  # every attempt counts, journaled or not

    records = await journal.read_stream(STREAM)
    # three records an attempt: 30,000 uncollapsed; here about two windows per doubling
    assert len(records) <= 4 * 3 * 15
    failures = _failures(records, KEY)
    assert [_repeated(r)["count"] for r in failures[1:]] == [2**n for n in range(1, 14)]
    newest = failures[-1]
    assert newest.data["attempt"] == 8192
    assert _repeated(newest)["skipped"] == 4096 - 1  # 4,097 … 8,191 not journaled
    assert (await writer.current(STREAM)).effect(KEY).attempts == 10_000  # type: ignore[union-attr]

    async def ok(_: str) -> str:
        return "registered"

    assert await runner.run(STREAM, KEY, PROVISION, ok) == "registered"
    records = await journal.read_stream(STREAM)
    # the run ended: its newest repeat is journaled with its count, then the success
    assert [r.type for r in records[-5:]] == [
        ev.EFFECT_STARTED,
        ev.EFFECT_FAILED,
        ev.RETRY_SCHEDULED,
        ev.EFFECT_STARTED,
        ev.EFFECT_SUCCEEDED,
    ]
    assert _repeated(records[-4])["count"] == 10_000
    assert records[-1].data["attempt"] == 10_001
    assert fold(records) == await writer.current(STREAM)  # the journal alone says the same


async def _turns(loop: MemoryLoop, key: str, count: int) -> None:
    for _ in range(count):
        turn = await loop.reconcile(key)
        await loop.echo(key)
        # past the retry deadline (the journal's times are whole microseconds)
        loop.clock.advance((getattr(turn.outcome, "seconds", 0.0) or 0.0) + 0.001)


async def test_a_failure_that_changes_or_a_new_generation_starts_a_new_record() -> None:
    loop = MemoryLoop(gadget_operator(Target()), backoff=MANY)
    key = await loop.create("bravo", {"size": 1, "dependsOn": ["india"]})
    await _turns(loop, key, 12)  # india does not exist
    other = await loop.create("india", {"size": 1, "busy": True})
    await _turns(loop, other, 3)  # india exists, provisioning, never Ready
    await _turns(loop, key, 6)
    await loop.update_spec(key, {"size": 2, "dependsOn": ["india"]})
    await _turns(loop, key, 5)

    records = await loop.records(key)
    first = _failures(records, "uid-bravo:1:provision")
    missing = [r for r in first if "does not exist" in r.data["message"]]
    pending = [r for r in first if "does not exist" not in r.data["message"]]
    # the first run ends with its newest repeat, journaled with its count (its first
    # attempt differs from the rest: the finalizer and status writes came after it)
    assert _repeated(missing[-1])["count"] == pending[0].data["attempt"] - 2 >= 10
    assert ev.REPEATED_FIELD not in pending[0].data  # a new message: a record of its own
    assert _repeated(pending[-1])["count"] >= 4
    second = _failures(records, "uid-bravo:2:provision")
    assert ev.REPEATED_FIELD not in second[0].data  # a new generation: a new key
    assert len(first) < pending[-1].data["attempt"] - 6  # fewer failures journaled than made
    report = await replay(loop, backoff=MANY)
    assert report.divergence is None, report.divergence


def _child_waiting_operator() -> Operator:
    """Provision applies a ConfigMap and waits for it with a check it never passes."""

    async def provision(ctx: Context) -> None:
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{ctx.name}-config"},
            "data": {"size": str(ctx.spec.get("size"))},
        }
        await ctx.apply_child(manifest)
        await ctx.wait_for_child(manifest, lambda live: "not filled in yet")

    return Operator(resource=GADGET, provision=provision, children=(CONFIG_MAPS,))


async def test_a_long_wait_for_a_child_stays_bounded_and_replays() -> None:
    loop = MemoryLoop(_child_waiting_operator())
    key = await loop.create("charlie", {"size": 1})
    await loop.relist()  # the child watch sees the applied ConfigMap
    await _turns(loop, key, 70)  # 70 polls, 2 s apart

    records = await loop.records(key)
    polls = [r for r in records if r.type == ev.EFFECT_FAILED and r.data["name"] == PROVISION]
    assert len(records) < 80  # about 500 uncollapsed (seven records a poll)
    assert polls[-1].data["waiting"] is True
    assert _repeated(polls[-1])["count"] >= 32
    state = await loop.state(key)
    assert state.effect("uid-charlie:1:provision").attempts == 70  # type: ignore[union-attr]
    journal = await journal_of(loop)
    report = await replay_through_loop(journal, _child_waiting_operator())
    assert report.divergence is None, report.divergence
    compared = [r for r in journal if not is_external(r)]
    assert report.compared == len(compared)


def _register_then_busy(target: Target, mode: dict[str, bool]) -> Operator:
    """Provision: step `register` (done once), then fail retryably while `mode["busy"]`
    (and first hang while `mode["hang"]`: a kill mid-attempt)."""
    entered = target.entered

    async def provision(ctx: Context) -> None:
        await ctx.effect(REGISTER, target.step(REGISTER, ctx.spec))
        if mode["hang"]:
            entered.set()
            await asyncio.Event().wait()
        if mode["busy"]:
            raise RetryableError("the registry is busy")

    return Operator(resource=GADGET, provision=provision, children=(CONFIG_MAPS,))


async def test_an_attempt_cut_off_in_a_collapsed_run_is_found_and_no_done_effect_repeats(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path, clock=clock)
    target = Target()
    mode = {"busy": True, "hang": False}
    operator = _register_then_busy(target, mode)
    try:
        loop = MemoryLoop(operator, journal=journal, clock=clock, backoff=MANY)
        key = await loop.create("delta", {"size": 1})
        await _turns(loop, key, 40)
        assert len(await loop.records(key)) < 45  # 40 attempts, four records each, uncollapsed
        mode["hang"] = True  # attempt 41 journals nothing of its own: a kill -9 inside it
        turn = asyncio.get_running_loop().create_task(loop.reconcile(key))
        await target.entered.wait()
        turn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await turn
        with OfflineReader.open(path) as reader:  # the window's intent is still open
            assert reader.open_runs((PROVISION, FINALIZE)) == [loop.stream(key)]
        result = CliRunner().invoke(cli, ["why", "default/delta", str(path)])
        assert result.exit_code == 0, result.output
        assert "in flight" in result.output
        assert "failed the same way 32 times in a row since" in result.output

        mode.update(busy=False, hang=False)
        restarted = loop.restart()
        await restarted.relist()
        await restarted.settle(key)
        assert (await restarted.state(key)).state == "Ready"
        assert target.calls == ["uid-delta:1:register"]  # done once, never again
    finally:
        await journal.close()

    result = CliRunner().invoke(cli, ["replay", str(path), "--format", "table"])
    assert result.exit_code == 0, result.output
    assert "failed \u00d732" in result.output  # the timeline's row of the collapsed run


async def test_giving_up_counts_the_collapsed_attempts() -> None:
    backoff = BackoffPolicy(max_attempts=20, cap=1.0)
    loop = MemoryLoop(gadget_operator(Target()), backoff=backoff)
    key = await loop.create("echo", {"size": 1, "busy": True})
    await _turns(loop, key, 60)

    records = await loop.records(key)
    failures = _failures(records, "uid-echo:1:provision")
    assert failures[-1].data["attempt"] == 20
    assert failures[-1].data["gave_up"] is True
    assert _repeated(failures[-2])["count"] == 18  # attempts 2 … 19 repeated the 2nd
    assert (await loop.state(key)).state == "Failed"
    assert len(records) < 20 * 4  # four records an attempt, uncollapsed
    report = await replay(loop, backoff=backoff)
    assert report.divergence is None, report.divergence
