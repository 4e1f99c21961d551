"""Who may act: the reconcile workers run only while this replica leads.

Without leader election the workers start at once and the term stays what the journal
says. With it, a `LeaderElector` competes for the Lease; every replica watches and keeps
its caches warm, but only the leader's workers take keys. On each acquisition: the
journal's term becomes the Lease's term, `LeaderElected` is journaled, keys with an
effect in flight are enqueued first and every cached key after them (a full pass).
Losing the Lease stops the workers at once; `may_act` turns False even sooner (the
elector's renew deadline), and is checked before every effect and Kubernetes write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from engine.failpoint import afailpoint
from engine.fsm import events as ev
from engine.journal.errors import StaleTerm
from engine.journal.store import Journal
from engine.runtime.manager.settings import Settings
from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.queue.worker import Handler, run_workers
from engine.supervisor.leader import LeaderElectionConfig, LeaderElector, default_identity
from engine.telemetry.operation_spans import operation_span, stamped
from engine.telemetry.redaction import AttributeValue

log = logging.getLogger(__name__)

LEADERSHIP_STREAM = "engine/leadership"
"""The journal stream of `LeaderElected` records (not a resource)."""


@dataclass(frozen=True)
class LeadershipDeps:
    """`enqueue_in_flight`: adds (first) the keys with an effect in flight;
    `cached_keys`: every key the caches hold, for the full pass on acquisition."""

    settings: Settings
    api_client: Any
    journal: Journal
    queue: WorkQueue
    handler: Handler
    enqueue_in_flight: Callable[[], Awaitable[None]]
    cached_keys: Callable[[], Iterable[str]]
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)


class Leadership:
    """Starts and stops the reconcile workers as leadership comes and goes.

    Expected flow: `await start()` once the caches are synced; `may_act()` before acting;
    `await stop(timeout)` at shutdown: the queue drains (bounded), then the Lease is
    released, so a standby takes over only once this replica has stopped acting.
    """

    def __init__(self, deps: LeadershipDeps) -> None:
        self._deps = deps
        self._elector: LeaderElector | None = None
        self._elector_task: asyncio.Task[None] | None = None
        self._lead_task: asyncio.Task[None] | None = None
        self._workers: asyncio.Task[None] | None = None
        self.identity = default_identity()

    @property
    def elector(self) -> LeaderElector | None:
        return self._elector

    def may_act(self) -> bool:
        """True without leader election; with it, while the Lease is held and renewed."""
        return self._elector is None or self._elector.is_leader

    def leading(self) -> bool:
        """Whether the workers run (always without leader election)."""
        return self._workers is not None and not self._workers.done()

    def alive(self) -> bool:
        """False when the elector task died (liveness)."""
        task = self._elector_task
        return task is None or not task.done()

    async def start(self) -> None:
        deps = self._deps
        settings = deps.settings
        if not settings.leader_election:
            await deps.enqueue_in_flight()
            self._start_workers()
            return
        config = LeaderElectionConfig(
            name=settings.lease_name,
            namespace=settings.lease_namespace,
            identity=self.identity,
            lease_duration=settings.lease_duration_seconds,
            renew_deadline=settings.lease_renew_deadline_seconds,
            retry_period=settings.lease_retry_period_seconds,
        )
        self._elector = LeaderElector(
            deps.api_client,
            config,
            on_started_leading=self._started,
            on_stopped_leading=self._stopped,
        )
        # a Lease restored from a backup may read below a term this journal has seen
        self._elector.know_term(deps.journal.term)
        self._elector_task = asyncio.create_task(self._elector.run(), name="leader-election")

    async def stop(self, drain_seconds: float) -> None:
        """Drain the queue (bounded by `drain_seconds`), stop the workers, release the Lease."""
        queue = self._deps.queue
        try:
            async with asyncio.timeout(drain_seconds):
                await queue.shutdown(drain=True)
        except TimeoutError:
            log.warning("in-flight reconciles did not finish in %gs", drain_seconds)
        await _cancel(self._lead_task)
        await _cancel(self._workers)
        await _cancel(self._elector_task)  # releases the Lease (release_on_cancel)

    def _start_workers(self) -> None:
        deps = self._deps
        self._workers = asyncio.create_task(
            run_workers(deps.queue, deps.handler, workers=deps.settings.max_concurrent_reconciles),
            name="reconcile-workers",
        )

    def _started(self, term: int) -> None:
        self._lead_task = asyncio.create_task(self._lead(term), name="leader-start")

    def _stopped(self) -> None:
        log.warning("lost the leader Lease: reconcile workers stop")
        for task in (self._lead_task, self._workers):
            if task is not None:
                task.cancel()
        self._workers = None

    async def _lead(self, term: int) -> None:
        deps = self._deps
        await afailpoint("lease.acquired")
        try:
            deps.journal.set_term(term)
        except StaleTerm:
            log.error(
                "the Lease's term %d is below the journal's %d (was the Lease deleted and the "
                "journal kept?); not acting: delete the Lease or move the journal away",
                term,
                deps.journal.term,
            )
            return
        attributes: dict[str, AttributeValue] = {
            "leader.term": term,
            "leader.identity": self.identity,
        }
        with operation_span(deps.tracer, "leader elected", attributes):
            elected = stamped(ev.leader_elected(holder=self.identity, term=term))
            await deps.journal.append(LEADERSHIP_STREAM, [elected])
        log.info("leading with term %d", term)
        if deps.queue.is_shut_down:
            return
        await deps.enqueue_in_flight()
        for key in deps.cached_keys():
            deps.queue.add(key)
        self._start_workers()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
