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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.key import PROVISION
from engine.fsm.state import SUCCEEDED, EffectRecord, ResourceState
from engine.fsm.table import READY
from engine.journal.record import NewEvent, Record
from engine.runtime.queue.worker import Outcome, RequeueAfter, RetryableFailure
from engine.runtime.reconcile.conditions import STUCK, SupervisorConditions
from engine.runtime.reconcile.inbox import Inbox, Note
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import stream_of
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.streams import StreamWriter
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

    def __init__(
        self,
        *,
        operator: Operator,
        streams: StreamWriter,
        objects: PrimaryView,
        conditions: SupervisorConditions,
        running: RunningReconciles,
        inbox: Inbox,
        enqueue: Callable[[str], None],
        clock: Clock,
        deadlines: Mapping[str, float],
        policy: HealingPolicy = DEFAULT_HEALING,
        may_act: Callable[[], bool] = lambda: True,
    ) -> None:
        """`streams` is read (folded states, records), never written: what the watchdog
        finds is left in `inbox` for the key's next turn, which it enqueues; `may_act`
        gates it (only the leader heals)."""
        self._operator = operator
        self._streams = streams
        self._objects = objects
        self._conditions = conditions
        self._running = running
        self._inbox = inbox
        self._enqueue = enqueue
        self._clock = clock
        self._deadlines = deadlines
        self._policy = policy
        self._may_act = may_act

    async def run(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            if self._may_act():
                try:
                    await self.check()
                except Exception:  # a failed round must not end the watchdog
                    log.exception("the stuck-resource check failed")

    async def check(self) -> tuple[StuckReport, ...]:
        now = self._clock.now()
        candidates = {c.key: c for c in await self._candidates()}
        reports = detect_stuck(
            (c.item for c in candidates.values()), deadlines=self._deadlines, now=now
        )
        acted = []
        for report in reports:
            candidate = candidates[report.key]
            since = candidate.last_report
            if since is not None and (now - since).total_seconds() <= report.deadline:
                continue
            self._act(report, candidate)
            acted.append(report)
        for key in [c.key for c in candidates.values() if c.item.state.state == READY]:
            self._conditions.clear(key, STUCK)
        return tuple(acted)

    async def _candidates(self) -> list[_Candidate]:
        found = []
        for key in list(self._objects.keys()):
            entry = self._objects.get(key)
            if entry is None or not entry.uid:
                continue
            if self._inbox.pending(key):
                continue  # already noted: its turn has not come yet
            stream = stream_of(self._operator, entry.obj)
            cached = self._streams.cached(stream)
            if cached is None:
                continue
            deleting = _deletion_time(entry.obj)
            # a running reconcile may have moved the state on since it was cached
            if (
                cached.state not in self._deadlines
                and deleting is None
                and not self._running.running(key)
            ):
                if cached.state == READY:
                    self._conditions.clear(key, STUCK)
                continue
            records = await self._streams.journal.read_stream(stream)
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

    def _act(self, report: StuckReport, candidate: _Candidate) -> None:
        """Leave the finding for the key's next turn; end a hung reconcile so it comes.

        A `FAIL` gives the overdue provision up in that turn (decide then takes `gave_up`
        → Failed) unless it succeeded meanwhile: an attempt that was not hung after all
        and recorded its success before it was cancelled wins (progress)."""
        decision = decide_healing(
            report, heals_without_progress=candidate.heals, policy=self._policy
        )
        log.warning("%s %s; healing: %s", report.key, report.message, decision.action.value)
        records = [stuck_event(report)]
        if decision.action is not HealingAction.REPORT:
            records.append(ev.healing_applied(action=decision.action.value, reason=decision.reason))
        give_up = None
        if decision.action is HealingAction.FAIL:
            give_up = _given_up(candidate.item.state, decision.reason)
            if give_up is None:
                log.warning("%s: nothing to fail (no provision in flight); reported", report.key)
        condition = stuck_condition(report)
        self._inbox.leave(
            report.key,
            Note(
                stream=candidate.stream,
                records=tuple(records),
                condition=condition,
                reason="StuckDetected",
                message=condition["message"],
                give_up=give_up,
            ),
        )
        if decision.action is not HealingAction.REPORT:
            self._running.cancel(report.key)
        self._enqueue(report.key)


def _given_up(state: ResourceState, reason: str) -> NewEvent | None:
    """The overdue provision of `state` recorded as given up (None: none in flight)."""
    record = _overdue_provision(state)
    if record is None:
        return None
    return ev.effect_failed(
        key=record.key,
        name=record.name,
        attempt=max(record.attempts, 1),
        error_class="Stuck",
        retryable=True,
        message=reason.removeprefix("Stuck: "),
        gave_up=True,
        seconds=0.0,
    )


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
