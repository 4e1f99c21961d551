"""The stuck-resource watchdog and the per-key reconcile guard it heals through.

Every `period` the watchdog looks at the resources in a state with a deadline; one past
it gets `StuckDetected` in its journal, a `Stuck` condition and a Warning Event, and
the healing policy's action: re-drive (cancel its running reconcile, requeue), fail
(the overdue provision recorded as given up, so decide moves it to Failed), or report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry import trace

from engine.clock import Clock
from engine.effects.errors import PermanentError, RetryableError
from engine.effects.kube import KindRef, KubeWriter
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.key import PROVISION
from engine.fsm.state import SUCCEEDED, EffectRecord, ResourceState
from engine.fsm.table import READY
from engine.journal.record import Record
from engine.journal.store import Journal
from engine.runtime.conditions import STUCK, SupervisorConditions, patch_conditions
from engine.runtime.observer import resource_ref_of, stream_of
from engine.runtime.operator import Operator
from engine.runtime.states import StreamStates
from engine.runtime.view import PrimaryView
from engine.runtime.worker import Outcome, RequeueAfter, RetryableFailure
from engine.supervisor.stuck import (
    DEFAULT_HEALING,
    HealingAction,
    HealingPolicy,
    ResourceInState,
    StuckReport,
    decide_healing,
    detect_stuck,
    entered_state_at,
    heals_without_progress,
    stuck_condition,
    stuck_event,
)
from engine.telemetry.operation_spans import operation_span, resource_attributes, stamped

log = logging.getLogger(__name__)


class RunningReconciles:
    """The deadline of each running reconcile, by key, so the watchdog can end one early.

    `guard(key, timeout)` bounds a reconcile like `asyncio.timeout`; `cancel(key)` makes
    that deadline now (the reconcile and its effect are cancelled at their next await;
    the effect stays in flight in the journal and is resumed under the same key).
    """

    def __init__(self) -> None:
        self._deadlines: dict[str, asyncio.Timeout] = {}
        self._healed: set[str] = set()

    @contextlib.asynccontextmanager
    async def guard(self, key: str, seconds: float) -> AsyncIterator[None]:
        """Run the body under `seconds`. Errors: `TimeoutError` past it or when
        cancelled through `cancel(key)`."""
        async with asyncio.timeout(seconds) as deadline:
            self._deadlines[key] = deadline
            try:
                yield
            finally:
                self._deadlines.pop(key, None)

    def cancel(self, key: str) -> bool:
        """End `key`'s running reconcile now; False when none runs."""
        deadline = self._deadlines.get(key)
        if deadline is None:
            return False
        self._healed.add(key)
        deadline.reschedule(asyncio.get_running_loop().time())
        return True

    def outcome_after_timeout(self, key: str, timeout: float) -> Outcome:
        """The queue outcome of a reconcile that ended by its deadline or by `cancel`."""
        if key in self._healed:
            self._healed.discard(key)
            return RequeueAfter(0.0)
        log.warning("reconcile of %r took over %gs; retrying", key, timeout)
        return RetryableFailure(f"reconcile took over {timeout:g}s")

    def running(self, key: str) -> bool:
        return key in self._deadlines


@dataclass(frozen=True)
class WatchdogDeps:
    """What the watchdog needs; `may_act` gates it (only the leader heals)."""

    operator: Operator
    journal: Journal
    writer: KubeWriter
    kind: KindRef
    view: PrimaryView
    states: StreamStates
    conditions: SupervisorConditions
    running: RunningReconciles
    enqueue: Callable[[str], None]
    clock: Clock
    deadlines: Mapping[str, float]
    policy: HealingPolicy = DEFAULT_HEALING
    may_act: Callable[[], bool] = lambda: True
    record_events: bool = True
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)


def watchdog_period(deadlines: Mapping[str, float]) -> float:
    """A quarter of the smallest deadline, between 0.05 s and 30 s."""
    smallest = min(deadlines.values(), default=600.0)
    return min(30.0, max(0.05, smallest / 4))


@dataclass(frozen=True, slots=True)
class _Candidate:
    key: str
    stream: str
    obj: Mapping[str, Any]
    item: ResourceInState
    heals: int
    last_report: datetime | None


class Watchdog:
    """`await run(period)` checks forever; `await check()` once (returns the reports acted on).

    Guarantees: a resource is reported at most once per deadline (a new report needs
    another deadline's time since the last `StuckDetected`), so a re-driven resource
    gets the full deadline to make progress before it is healed again; a stuck deletion
    is reported, never failed, and its finalizer never removed here.
    """

    def __init__(self, deps: WatchdogDeps) -> None:
        self._deps = deps

    async def run(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self._deps.may_act():
                try:
                    await self.check()
                except Exception:  # a failed round must not end the watchdog
                    log.exception("the stuck-resource check failed")

    async def check(self) -> tuple[StuckReport, ...]:
        deps = self._deps
        now = deps.clock.now()
        candidates = {c.key: c for c in await self._candidates()}
        reports = detect_stuck(
            (c.item for c in candidates.values()), deadlines=deps.deadlines, now=now
        )
        acted = []
        for report in reports:
            candidate = candidates[report.key]
            since = candidate.last_report
            if since is not None and (now - since).total_seconds() <= report.deadline:
                continue
            ref = resource_ref_of(deps.operator, candidate.obj)
            with operation_span(deps.tracer, f"heal {ref.kind}", resource_attributes(ref)):
                await self._act(report, candidate, now)  # its records carry the span's ids
            acted.append(report)
        for key in [c.key for c in candidates.values() if c.item.state.state == READY]:
            deps.conditions.clear(key, STUCK)
        return tuple(acted)

    async def _candidates(self) -> list[_Candidate]:
        deps = self._deps
        found = []
        for key in list(deps.view.keys()):
            entry = deps.view.get(key)
            if entry is None or not entry.uid:
                continue
            stream = stream_of(deps.operator, entry.obj)
            cached = deps.states.cached(stream)
            if cached is None:
                continue
            deleting = _deletion_time(entry.obj)
            # a running reconcile may have moved the state on since it was cached
            if (
                cached.state not in deps.deadlines
                and deleting is None
                and not deps.running.running(key)
            ):
                if cached.state == READY:
                    deps.conditions.clear(key, STUCK)
                continue
            records = await deps.journal.read_stream(stream)
            state = fold(records)
            entered = entered_state_at(records)
            if entered is None:
                continue
            item = ResourceInState(key, state, entered, deleting)
            found.append(
                _Candidate(
                    key,
                    stream,
                    entry.obj,
                    item,
                    heals_without_progress(records),
                    _last_report(records),
                )
            )
        return found

    async def _act(self, report: StuckReport, candidate: _Candidate, now: datetime) -> None:
        deps = self._deps
        decision = decide_healing(
            report, heals_without_progress=candidate.heals, policy=deps.policy
        )
        log.warning("%s %s; healing: %s", report.key, report.message, decision.action.value)
        records = [stuck_event(report)]
        if decision.action is not HealingAction.REPORT:
            records.append(ev.healing_applied(action=decision.action.value, reason=decision.reason))
        positions = await deps.journal.append(candidate.stream, [stamped(r) for r in records])
        condition = stuck_condition(report)
        deps.conditions.set(report.key, condition, now=now)
        await patch_conditions(deps.writer, deps.kind, deps.view, report.key, deps.conditions)
        await self._event(report.key, positions[0], condition["message"], now)
        if decision.action is HealingAction.REDRIVE:
            deps.running.cancel(report.key)
            deps.enqueue(report.key)
        elif decision.action is HealingAction.FAIL:
            await self._fail(report.key, candidate, decision.reason)

    async def _fail(self, key: str, candidate: _Candidate, reason: str) -> None:
        """Record the overdue provision as given up (decide then takes `gave_up` → Failed),
        then cancel the hung reconcile. In that order: a cancelled attempt journals
        nothing more, so nothing can land between; an attempt that was not hung after
        all may still record its success, which then wins (progress)."""
        deps = self._deps
        record = _overdue_provision(candidate.item.state)
        if record is None:
            log.warning("%s: nothing to fail (no provision in flight); reported only", key)
            return
        failed = ev.effect_failed(
            key=record.key,
            name=record.name,
            attempt=max(record.attempts, 1),
            error_class="Stuck",
            retryable=True,
            message=reason.removeprefix("Stuck: "),
            gave_up=True,
            seconds=0.0,
        )
        await deps.journal.append(candidate.stream, [stamped(failed)])
        deps.running.cancel(key)
        deps.enqueue(key)

    async def _event(self, key: str, position: int, message: str, now: datetime) -> None:
        deps = self._deps
        entry = deps.view.get(key)
        if not deps.record_events or entry is None or not entry.exists:
            return
        name = f"{entry.obj['metadata']['name']}.{entry.uid[:8]}.{position:x}"
        try:
            await deps.writer.record_event(
                entry.obj, name=name, reason="StuckDetected", message=message, warning=True, now=now
            )
        except (RetryableError, PermanentError) as error:
            log.warning("could not record the stuck event of %r: %s", key, error)


def _overdue_provision(state: ResourceState) -> EffectRecord | None:
    found = [
        r
        for r in state.effects
        if r.name == PROVISION and r.outcome != SUCCEEDED and not r.is_permanent_failure
    ]
    return found[-1] if found else None


def _deletion_time(obj: Mapping[str, Any]) -> datetime | None:
    text = str(obj.get("metadata", {}).get("deletionTimestamp") or "")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _last_report(records: list[Record]) -> datetime | None:
    for record in reversed(records):
        if record.type == ev.STUCK_DETECTED:
            return record.at
    return None
