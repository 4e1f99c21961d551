"""The effect runner against the in-memory journal: journaling order, error classes,
timeouts, backoff bookkeeping, and replay answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.effects import (
    BackoffPolicy,
    EffectFailedPermanently,
    EffectGaveUp,
    EffectRetryScheduled,
    EffectRunner,
    Mode,
    PermanentError,
    ReplayDivergence,
    RetryableError,
    RunnerDeps,
    next_delay,
)
from engine.effects.errors import NotLeading
from engine.fsm import events as ev
from engine.fsm import fold
from engine.journal.memory import MemoryJournal

STREAM = "g/Kind/ns/name#u1"
KEY = "u1:1:create"
POLICY = BackoffPolicy(base=0.01, cap=10.0, max_attempts=3)


def runner_on(journal: MemoryJournal, clock: FakeClock, **deps: Any) -> EffectRunner:
    return EffectRunner(RunnerDeps(journal=journal, clock=clock, backoff=POLICY, **deps))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(clock: FakeClock) -> MemoryJournal:
    return MemoryJournal(clock=clock)


async def types(journal: MemoryJournal) -> list[str]:
    return [r.type for r in await journal.read_stream(STREAM)]


async def test_intent_is_committed_before_the_call_and_the_key_is_passed(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    seen: list[tuple[str, list[str]]] = []

    async def call(key: str) -> Any:
        seen.append((key, await types(journal)))
        return {"ok": 1}

    result = await runner_on(journal, clock).run(STREAM, KEY, "create", call)
    assert result == {"ok": 1}
    assert seen == [(KEY, [ev.EFFECT_STARTED])]
    records = await journal.read_stream(STREAM)
    assert [r.type for r in records] == [ev.EFFECT_STARTED, ev.EFFECT_SUCCEEDED]
    assert records[0].idempotency_key is None
    assert records[1].idempotency_key == KEY


async def test_recorded_success_is_never_called_again(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    calls = 0

    async def call(key: str) -> Any:
        nonlocal calls
        calls += 1
        return calls

    runner = runner_on(journal, clock)
    assert await runner.run(STREAM, KEY, "create", call) == 1
    assert await runner.run(STREAM, KEY, "create", call) == 1
    assert await runner_on(journal, clock).run(STREAM, KEY, "create", call) == 1
    assert calls == 1
    assert await types(journal) == [ev.EFFECT_STARTED, ev.EFFECT_SUCCEEDED]


async def test_started_without_outcome_is_run_again_with_the_same_key(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    await journal.append(STREAM, [ev.effect_started(key=KEY, name="create", attempt=1)])
    keys: list[str] = []

    async def call(key: str) -> Any:
        keys.append(key)
        return "done"

    assert await runner_on(journal, clock).run(STREAM, KEY, "create", call) == "done"
    assert keys == [KEY]
    state = fold(await journal.read_stream(STREAM))
    record = state.effect(KEY)
    assert record is not None
    assert (record.attempts, record.outcome) == (2, "succeeded")


async def test_retryable_failure_schedules_a_seeded_delay_at_least_the_asked_one(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    async def busy(key: str) -> Any:
        raise RetryableError("busy", delay=5.0)

    async def flaky(key: str) -> Any:
        raise ConnectionError("reset by peer")

    runner = runner_on(journal, clock)
    with pytest.raises(EffectRetryScheduled) as first:
        await runner.run(STREAM, KEY, "create", busy)
    assert first.value.delay == 5.0
    with pytest.raises(EffectRetryScheduled) as second:
        await runner.run(STREAM, KEY, "create", flaky)
    assert second.value.delay == next_delay(KEY, 2, POLICY)
    records = await journal.read_stream(STREAM)
    failed = [r.data for r in records if r.type == ev.EFFECT_FAILED]
    assert [(f["attempt"], f["error_class"], f["retryable"]) for f in failed] == [
        (1, "RetryableError", True),
        (2, "ConnectionError", True),
    ]
    retries = [r.data for r in records if r.type == ev.RETRY_SCHEDULED]
    assert [r["delay"] for r in retries] == [5.0, next_delay(KEY, 2, POLICY)]


async def test_attempts_are_capped_then_gave_up(journal: MemoryJournal, clock: FakeClock) -> None:
    calls = 0

    async def failing(key: str) -> Any:
        nonlocal calls
        calls += 1
        raise RuntimeError("nope")

    runner = runner_on(journal, clock)
    for _ in range(POLICY.max_attempts - 1):
        with pytest.raises(EffectRetryScheduled):
            await runner.run(STREAM, KEY, "create", failing)
    with pytest.raises(EffectGaveUp) as gave_up:
        await runner.run(STREAM, KEY, "create", failing)
    assert gave_up.value.attempts == POLICY.max_attempts
    with pytest.raises(EffectGaveUp):
        await runner.run(STREAM, KEY, "create", failing)
    assert calls == POLICY.max_attempts
    record = fold(await journal.read_stream(STREAM)).effect(KEY)
    assert record is not None
    assert record.gave_up
    assert record.is_permanent_failure


async def test_permanent_error_is_recorded_and_not_retried(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    calls = 0

    async def invalid(key: str) -> Any:
        nonlocal calls
        calls += 1
        raise PermanentError("size must be positive")

    runner = runner_on(journal, clock)
    for _ in range(2):
        with pytest.raises(EffectFailedPermanently, match="size must be positive"):
            await runner.run(STREAM, KEY, "create", invalid)
    assert calls == 1
    failed = [r.data for r in await journal.read_stream(STREAM) if r.type == ev.EFFECT_FAILED]
    assert [(f["retryable"], f["error_class"]) for f in failed] == [(False, "PermanentError")]


async def test_hung_call_is_cancelled_and_journaled_as_a_timeout(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    cancelled = asyncio.Event()

    async def hang(key: str) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(EffectRetryScheduled):
        await runner_on(journal, clock, timeout=0.05).run(STREAM, KEY, "create", hang)
    assert cancelled.is_set()
    failed = [r.data for r in await journal.read_stream(STREAM) if r.type == ev.EFFECT_FAILED]
    assert failed[0]["error_class"] == "Timeout"
    assert failed[0]["retryable"] is True


async def test_a_cancellation_that_arrives_as_the_call_finishes_is_not_lost(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    """The run is cancelled in the same loop turn in which its call returns (a replay
    stopping, a healing cancelling the reconcile): the run ends cancelled, the attempt
    left in flight, instead of journaling the outcome and carrying on."""
    loop = asyncio.get_running_loop()

    async def call(key: str) -> Any:
        loop.call_soon(run.cancel)
        await asyncio.sleep(0)
        return {"ok": 1}

    run = asyncio.ensure_future(runner_on(journal, clock).run(STREAM, KEY, "create", call))
    with pytest.raises(asyncio.CancelledError):
        await run
    assert run.cancelled()
    assert await types(journal) == [ev.EFFECT_STARTED]


async def test_result_that_is_not_json_is_a_permanent_failure(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    async def odd(key: str) -> Any:
        return {1, 2}

    with pytest.raises(EffectFailedPermanently, match="not JSON"):
        await runner_on(journal, clock).run(STREAM, KEY, "create", odd)


async def test_replay_answers_from_the_journal_without_calling(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    outcomes = iter([RetryableError("busy"), {"id": 7}])

    async def live(key: str) -> Any:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    runner = runner_on(journal, clock)
    with pytest.raises(EffectRetryScheduled) as live_retry:
        await runner.run(STREAM, KEY, "create", live)
    assert await runner.run(STREAM, KEY, "create", live) == {"id": 7}

    async def forbidden(key: str) -> Any:
        pytest.fail("replay called an effect")

    replay = runner_on(journal, clock, mode=Mode.REPLAY)
    with pytest.raises(EffectRetryScheduled) as replay_retry:
        await replay.run(STREAM, KEY, "create", forbidden)
    assert replay_retry.value.delay == live_retry.value.delay
    assert await replay.run(STREAM, KEY, "create", forbidden) == {"id": 7}
    assert await types(journal) == [
        ev.EFFECT_STARTED, ev.EFFECT_FAILED, ev.RETRY_SCHEDULED,
        ev.EFFECT_STARTED, ev.EFFECT_SUCCEEDED,
    ]  # fmt: skip


async def test_replay_reports_the_first_differing_position(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    async def ok(key: str) -> Any:
        return key

    runner = runner_on(journal, clock)
    await runner.run(STREAM, "u1:1:a", "a", ok)
    await runner.run(STREAM, "u1:1:b", "b", ok)
    positions = [r.position for r in await journal.read_stream(STREAM)]

    replay = runner_on(journal, clock, mode=Mode.REPLAY)
    assert await replay.run(STREAM, "u1:1:a", "a", ok) == "u1:1:a"
    with pytest.raises(ReplayDivergence) as diverged:
        await replay.run(STREAM, "u1:1:c", "c", ok)
    assert diverged.value.position == positions[2]
    assert diverged.value.expected == "u1:1:b"
    assert diverged.value.got == "u1:1:c"

    ended = runner_on(journal, clock, mode=Mode.REPLAY)
    await ended.run(STREAM, "u1:1:a", "a", ok)
    await ended.run(STREAM, "u1:1:b", "b", ok)
    with pytest.raises(ReplayDivergence, match="end of the journal"):
        await ended.run(STREAM, "u1:1:d", "d", ok)


async def test_replay_with_a_different_backoff_policy_diverges(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    async def busy(key: str) -> Any:
        raise RetryableError("busy")

    with pytest.raises(EffectRetryScheduled):
        await runner_on(journal, clock).run(STREAM, KEY, "create", busy)
    other = EffectRunner(
        RunnerDeps(journal=journal, clock=clock, backoff=BackoffPolicy(base=1.0), mode=Mode.REPLAY)
    )
    with pytest.raises(ReplayDivergence, match="backoff"):
        await other.run(STREAM, KEY, "create", busy)


async def test_leadership_lost_while_the_intent_was_written_means_no_call(
    journal: MemoryJournal, clock: FakeClock
) -> None:
    answers = iter([True, False])  # leading when the attempt begins, not after the append

    async def call(key: str) -> Any:
        raise AssertionError("a deposed leader must not call the effect")

    runner = runner_on(journal, clock, may_act=lambda: next(answers))
    with pytest.raises(NotLeading):
        await runner.run(STREAM, KEY, "create", call)
    assert await types(journal) == [ev.EFFECT_STARTED]  # left in flight for the next leader
