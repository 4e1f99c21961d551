"""A whole lifecycle driven through decide and the effect runner, live and then in replay.

The driver below is a minimal reconciler for the test (the real one lives in
engine/runtime): it folds, decides, journals the transition and runs the effects,
against an in-memory object that stands in for the API server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.effects import (
    BackoffPolicy,
    EffectFailedPermanently,
    EffectRetryScheduled,
    EffectRunner,
    Mode,
    RetryableError,
    RunnerDeps,
    effect_key,
)
from engine.fsm import (
    FINALIZE,
    PROVISION,
    AddFinalizer,
    Observation,
    PatchStatus,
    RemoveFinalizer,
    RunFinalize,
    RunProvision,
    decide,
    fold,
    next_state,
)
from engine.fsm import events as ev
from engine.journal.memory import MemoryJournal

STREAM = "example.com/Bucket/default/b1#u1"
Step = Callable[[str], Awaitable[Any]]


@dataclass
class FakeObject:
    """The custom resource as the API server holds it."""

    uid: str = "u1"
    generation: int = 1
    exists: bool = True
    deletion: bool = False
    finalizer: bool = False
    drift: bool = False
    status: tuple[str | None, int | None, str | None] = (None, None, None)
    resource_version: int = 1

    def observation(self) -> Observation:
        return Observation(
            uid=self.uid,
            generation=self.generation,
            resource_version=str(self.resource_version),
            spec_digest=f"digest-{self.generation}",
            exists=self.exists,
            deletion_requested=self.deletion,
            has_finalizer=self.finalizer,
            child_drift=self.drift,
            status_phase=self.status[0],
            status_observed_generation=self.status[1],
            status_reason=self.status[2],
        )


@dataclass
class Driver:
    journal: MemoryJournal
    runner: EffectRunner
    clock: FakeClock
    obj: FakeObject
    step: Callable[[str], Step]
    states: list[str] = field(default_factory=list)
    last_seen: Observation | None = None

    async def observe(self) -> None:
        """The watcher: journal the object whenever it changed."""
        self.obj.resource_version += 1
        seen = self.obj.observation()
        if seen != self.last_seen:
            await self.journal.append(STREAM, [ev.observed(seen, watch_event="MODIFIED", spec={})])
            self.last_seen = seen

    async def provision(self, key: str) -> Any:
        obj = self.obj
        for name in ("create-bucket", "create-user"):
            step_key = effect_key(obj.uid, obj.generation, name, _round_of(key))
            await self.runner.run(STREAM, step_key, name, self.step(name))
        return {"provisioned": key}

    async def finalize(self, key: str) -> Any:
        step_key = effect_key(self.obj.uid, self.obj.generation, "delete-bucket")
        await self.runner.run(STREAM, step_key, "delete-bucket", self.step("delete-bucket"))
        return {"finalized": key}

    async def reconcile(self) -> None:
        for _ in range(60):
            state = fold(await self.journal.read_stream(STREAM))
            decision = decide(state, self.obj.observation(), self.clock.now())
            if decision.idle:
                if decision.requeue_after is not None and state.state != "Ready":
                    self.clock.advance(decision.requeue_after)
                    continue
                return
            if decision.trigger is not None:
                dest = next_state(state.state, decision.trigger)
                taken = ev.transition_taken(
                    source=state.state,
                    dest=dest,
                    trigger=decision.trigger,
                    generation=self.obj.generation,
                    effect_key=decision.effect_key,
                    attempt=decision.attempt,
                )
                await self.journal.append(STREAM, [taken])
                self.states.append(dest)
            await self.run_effects(decision.effects)
        raise AssertionError("the lifecycle did not settle in 60 passes")

    async def run_effects(self, effects: tuple[object, ...]) -> None:
        for effect in effects:
            try:
                await self.run_effect(effect)
            except (EffectRetryScheduled, EffectFailedPermanently):
                return

    async def run_effect(self, effect: object) -> None:
        obj = self.obj
        match effect:
            case AddFinalizer():
                obj.finalizer = True
            case RemoveFinalizer():
                obj.finalizer = False
                obj.exists = not obj.deletion
            case PatchStatus(phase=phase, observed_generation=gen, reason=reason):
                obj.status = (phase, gen, reason)
                written = ev.status_written(phase=phase, observed_generation=gen, reason=reason)
                await self.journal.append(STREAM, [written])
            case RunProvision(key=key):
                await self.runner.run(STREAM, key, PROVISION, self.provision)
                obj.drift = False  # the children were applied again
            case RunFinalize(key=key):
                await self.runner.run(STREAM, key, FINALIZE, self.finalize)
        await self.observe()


def _round_of(key: str) -> int:
    parts = key.split(":")
    return int(parts[3]) if len(parts) == 4 else 0


@dataclass
class EffectTarget:
    """The external service: counts calls per key; fails some keys retryably at first."""

    failures: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def step(self, name: str) -> Step:
        async def call(key: str) -> Any:
            self.calls[key] = self.calls.get(key, 0) + 1
            if self.failures.get(name, 0) > 0:
                self.failures[name] -= 1
                raise RetryableError(f"{name} is busy")
            return {"step": name, "key": key}

        return call


def forbidden(name: str) -> Step:
    async def call(key: str) -> Any:
        pytest.fail(f"replay called the effect {name} ({key})")

    return call


async def lifecycle(driver: Driver) -> None:
    """Create, change the spec, drift, delete."""
    await driver.observe()
    await driver.reconcile()
    driver.obj.generation = 2
    await driver.observe()
    await driver.reconcile()
    driver.obj.drift = True
    await driver.observe()
    await driver.reconcile()
    driver.obj.deletion = True
    await driver.observe()
    await driver.reconcile()


def make_driver(step: Callable[[str], Step], **deps: Any) -> Driver:
    clock = FakeClock()
    journal = MemoryJournal(clock=clock)
    policy = BackoffPolicy(base=0.5)
    runner = EffectRunner(RunnerDeps(journal=journal, clock=clock, backoff=policy, **deps))
    return Driver(journal, runner, clock, FakeObject(), step)


async def test_lifecycle_reaches_each_state_and_runs_each_step_once_per_key() -> None:
    target = EffectTarget(failures={"create-user": 2})
    driver = make_driver(target.step)
    journal = driver.journal
    await lifecycle(driver)
    assert driver.states == [
        "Provisioning",
        "Provisioning",  # effect_failed: create-user is busy
        "Provisioning",  # effect_failed again
        "Ready",
        "Provisioning",  # spec_changed
        "Ready",
        "Provisioning",  # drift_detected: round 1
        "Ready",
        "Finalizing",
        "Deleted",
    ]
    assert target.calls == {
        "u1:1:create-bucket": 1,
        "u1:1:create-user": 3,
        "u1:2:create-bucket": 1,
        "u1:2:create-user": 1,
        "u1:2:create-bucket:1": 1,
        "u1:2:create-user:1": 1,
        "u1:2:delete-bucket": 1,
    }
    records = await journal.read_stream(STREAM)
    successes = [r.idempotency_key for r in records if r.type == ev.EFFECT_SUCCEEDED]
    assert len(successes) == len(set(successes))
    assert driver.obj.exists is False


async def test_replay_calls_no_effect_and_rebuilds_the_same_states_and_timeline() -> None:
    live = make_driver(EffectTarget(failures={"create-bucket": 1}).step)
    live_journal = live.journal
    await lifecycle(live)

    replay = make_driver(forbidden, mode=Mode.REPLAY, recorded=live_journal)
    replay_journal = replay.journal
    await lifecycle(replay)

    assert replay.states == live.states
    recorded = await live_journal.read_stream(STREAM)
    replayed = await replay_journal.read_stream(STREAM)
    assert [(r.type, dict(r.data), r.at) for r in replayed] == [
        (r.type, dict(r.data), r.at) for r in recorded
    ]
