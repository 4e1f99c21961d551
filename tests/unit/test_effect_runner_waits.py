"""Waits for another resource (`DependencyNotReady`) cost an effect no attempts: they are
journaled as `EffectFailed` marked `waiting`, never give up, and leave the backoff and the
give-up count to the real failures; replay computes the same backoff."""

from __future__ import annotations

import pytest

from engine.clock import FakeClock
from engine.effects import (
    BackoffPolicy,
    EffectGaveUp,
    EffectRetryScheduled,
    EffectRunner,
    Mode,
    RetryableError,
    RunnerDeps,
    next_delay,
)
from engine.effects.errors import DependencyNotReady
from engine.effects.history import key_history
from engine.fsm import events as ev
from engine.journal.memory import MemoryJournal

STREAM = "g/Kind/ns/name#u1"
KEY = "u1:1:provision"
POLICY = BackoffPolicy(base=0.01, cap=10.0, max_attempts=2)


class Script:
    """A handler that waits `waits` times, then fails `failures` times, then succeeds."""

    def __init__(self, *, waits: int, failures: int) -> None:
        self.waits = waits
        self.failures = failures
        self.calls = 0

    async def __call__(self, key: str) -> str:
        self.calls += 1
        if self.calls <= self.waits:
            raise DependencyNotReady("ns/b", delay=0.2)
        if self.calls <= self.waits + self.failures:
            raise RetryableError("registry unavailable")
        return "done"


async def drive(runner: EffectRunner, script: Script, *, limit: int = 20) -> list[str]:
    """Run the key until it succeeds or gives up; the outcome of each run."""
    outcomes: list[str] = []
    for _ in range(limit):
        try:
            await runner.run(STREAM, KEY, "provision", script)
        except EffectRetryScheduled as retry:
            outcomes.append(f"retry:{retry.error_class}")
            continue
        except EffectGaveUp:
            outcomes.append("gave-up")
            return outcomes
        outcomes.append("ok")
        return outcomes
    return outcomes


@pytest.fixture
def journal() -> MemoryJournal:
    return MemoryJournal(clock=FakeClock())


def runner_on(journal: MemoryJournal, *, mode: Mode = Mode.LIVE) -> EffectRunner:
    return EffectRunner(RunnerDeps(journal=journal, clock=FakeClock(), backoff=POLICY, mode=mode))


async def test_five_waits_then_one_real_failure_still_gets_its_second_attempt(
    journal: MemoryJournal,
) -> None:
    outcomes = await drive(runner_on(journal), Script(waits=5, failures=1))
    assert outcomes == ["retry:DependencyNotReady"] * 5 + ["retry:RetryableError", "ok"]
    records = await journal.read_stream(STREAM)
    failed = [r for r in records if r.type == ev.EFFECT_FAILED]
    assert [r.data.get("waiting", False) for r in failed] == [True] * 5 + [False]
    assert "waiting" not in failed[-1].data  # a real failure's record keeps its old form
    assert not any(r.data["gave_up"] for r in failed)
    history = key_history(records, KEY)
    assert (history.attempts, history.waits) == (7, 5)


async def test_a_real_failure_after_waits_gives_up_after_exactly_the_allowed_attempts(
    journal: MemoryJournal,
) -> None:
    script = Script(waits=5, failures=10)
    outcomes = await drive(runner_on(journal), script)
    assert outcomes == ["retry:DependencyNotReady"] * 5 + ["retry:RetryableError", "gave-up"]
    assert script.calls == 5 + 2
    failed = [r for r in await journal.read_stream(STREAM) if r.type == ev.EFFECT_FAILED]
    assert [r.data["gave_up"] for r in failed] == [False] * 6 + [True]


async def test_the_backoff_after_waits_is_that_of_the_first_real_failure(
    journal: MemoryJournal,
) -> None:
    await drive(runner_on(journal), Script(waits=3, failures=1))
    retries = [r for r in await journal.read_stream(STREAM) if r.type == ev.RETRY_SCHEDULED]
    real = retries[-1]
    assert real.data["attempt"] == 4
    assert real.data["backoff"] == next_delay(KEY, 1, POLICY)
    assert [r.data["delay"] for r in retries[:3]] == [0.2, 0.2, 0.2]  # waits poll at their pace


async def test_replay_of_waits_and_failures_answers_like_the_live_run(
    journal: MemoryJournal,
) -> None:
    live = await drive(runner_on(journal), Script(waits=4, failures=1))
    replayer = runner_on(journal, mode=Mode.REPLAY)
    never = Script(waits=0, failures=0)
    replayed = await drive(replayer, never)
    assert replayed == live
    assert never.calls == 0
