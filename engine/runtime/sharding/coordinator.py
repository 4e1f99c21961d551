"""`ShardCoordinator`: which shards this replica holds, and the handoffs.

Every retry period it lists the group's Leases, computes the live members and, by
rendezvous hashing, the shards this replica should hold. For each such shard it runs a
`LeaderElector` on the shard's Lease; on acquisition it journals `ShardAcquired` under
the fence `(shard, term)` (from then on the database refuses any older owner's append),
enqueues the shard's keys with an effect in flight first, then every cached key of the
shard. For a shard it should no longer hold (a member joined, or it is stopping) it stops
taking the shard's keys, waits (bounded) for the shard's turns in flight, journals
`ShardReleased`, and releases the Lease. Losing a shard's Lease (renew deadline passed)
stops acting for it at once. The work queue admits only keys of held shards, and the
handler runs each turn in the shard's scope (its term is what records and effects carry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.journal.batch import Fence
from engine.journal.errors import FencedOut, JournalClosed, JournalError
from engine.journal.record import NewEvent
from engine.runtime.queue.work_queue import WorkQueue
from engine.runtime.queue.worker import Handler, Outcome, Succeeded, run_workers
from engine.runtime.sharding.fenced_journal import ShardFencedJournal, ShardNotHeld
from engine.runtime.sharding.keyspace import assignment, shard_names, shard_of
from engine.runtime.sharding.members import (
    MemberDirectory,
    member_lease_name,
    shard_lease_name,
)
from engine.runtime.sharding.metrics import ShardMetrics
from engine.runtime.sharding.scope import ShardScope, current_scope, enter_scope, leave_scope
from engine.supervisor.leader import LeaderElectionConfig, LeaderElector

log = logging.getLogger(__name__)

SHARD_ACQUIRED = "ShardAcquired"
SHARD_RELEASED = "ShardReleased"


def shard_stream(shard: str) -> str:
    """The journal stream of a shard's `ShardAcquired` / `ShardReleased` records."""
    return f"engine/shards/{shard}"


@dataclass(frozen=True)
class ShardingConfig:
    """`count` shards; Leases `<prefix>-member-…` and `<prefix>-shard-NN` in
    `namespace`; the elector timings; `drain_seconds` a handoff waits for turns in flight."""

    count: int
    prefix: str
    namespace: str
    identity: str
    lease_duration: float
    renew_deadline: float
    retry_period: float
    drain_seconds: float = 10.0

    def elector(self, lease: str) -> LeaderElectionConfig:
        return LeaderElectionConfig(
            name=lease,
            namespace=self.namespace,
            identity=self.identity,
            lease_duration=self.lease_duration,
            renew_deadline=self.renew_deadline,
            retry_period=self.retry_period,
        )


@dataclass(frozen=True)
class ShardRunDeps:
    """What the coordinator drives: the fenced journal, the queue and the handler;
    `enqueue_in_flight(accepts)` adds (first) the keys with an effect in flight that
    `accepts`; `cached_keys` lists every key the caches hold."""

    journal: ShardFencedJournal
    queue: WorkQueue
    handler: Handler
    workers: int
    enqueue_in_flight: Callable[[Callable[[str], bool]], Awaitable[None]]
    cached_keys: Callable[[], Iterable[str]]


@dataclass
class _Hold:
    elector: LeaderElector
    task: asyncio.Task[None] | None = None
    term: int | None = None
    releasing: bool = False
    in_flight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    acquiring: asyncio.Task[None] | None = None

    def active(self) -> bool:
        return self.term is not None and not self.releasing


class ShardCoordinator:
    """Holds this replica's shards. Expected flow: build it, pass `owns_key` to the work
    queue and `fence_of` / `shard_of` to the fenced journal; `await start(deps)` once the
    caches are synced; `may_act()` before each effect; `await stop()` at shutdown."""

    def __init__(
        self, config: ShardingConfig, *, api_client: Any, metrics: ShardMetrics | None = None
    ) -> None:
        self.config = config
        self._api = api_client
        self._metrics = metrics
        self._shards = shard_names(config.count)
        self._directory = MemberDirectory(
            api_client,
            namespace=config.namespace,
            prefix=config.prefix,
            lease_duration=config.lease_duration,
        )
        self._member = LeaderElector(
            api_client, config.elector(member_lease_name(config.prefix, config.identity))
        )
        self._holds: dict[str, _Hold] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._member_task: asyncio.Task[None] | None = None
        self._workers_task: asyncio.Task[None] | None = None
        self._rebalance_task: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()
        self._deps: ShardRunDeps | None = None
        self._stopping = False
        self.members: tuple[str, ...] = ()

    # -- what the other parts ask -----------------------------------------------------------

    @property
    def identity(self) -> str:
        return self.config.identity

    def shard_of(self, key: str) -> str:
        return shard_of(key, self.config.count)

    def fence_of(self, shard: str) -> Fence | None:
        """The fence this replica holds `shard` with, or None (not held, or lost). A late
        renewal does not take it away (the database refuses it once a successor wrote);
        effects also ask `may_act`, which follows the renew deadline."""
        hold = self._holds.get(shard)
        if hold is None or hold.term is None:
            return None
        return Fence(shard, hold.term)

    def owns_key(self, key: str) -> bool:
        """Whether this replica takes `key` (its shard is held and not being handed off)."""
        hold = self._holds.get(self.shard_of(key))
        return hold is not None and hold.active()

    def may_act(self) -> bool:
        """In a key's turn: the shard is still held under the turn's term and renewed."""
        scope = current_scope()
        if scope is None:
            return not self._stopping
        hold = self._holds.get(scope.shard)
        return hold is not None and hold.term == scope.term and hold.elector.is_leader

    def held(self) -> dict[str, int]:
        """shard → term, for every shard this replica holds now."""
        return {s: h.term for s, h in self._holds.items() if h.term is not None}

    def alive(self) -> bool:
        return all(not task.done() for task in self._tasks)

    def wrap(self, handler: Handler) -> Handler:
        """`handler` run in the key's shard scope; a key of a shard not held is dropped."""

        async def handle(key: str) -> Outcome:
            shard = self.shard_of(key)
            hold = self._holds.get(shard)
            if hold is None or not hold.active() or hold.term is None:
                return Succeeded()  # not ours (any more): its owner reconciles it
            hold.in_flight += 1
            hold.idle.clear()
            token = enter_scope(ShardScope(shard, hold.term))
            try:
                return await handler(key)
            except (ShardNotHeld, FencedOut) as refused:
                log.info("%s: %s", key, refused)  # handed off mid-turn: the owner goes on
                return Succeeded()
            finally:
                leave_scope(token)
                hold.in_flight -= 1
                if hold.in_flight == 0:
                    hold.idle.set()

        return handle

    # -- running --------------------------------------------------------------------------

    async def start(self, deps: ShardRunDeps) -> None:
        """Join the group (member Lease), start the workers and the rebalancing loop."""
        self._deps = deps
        self._member_task = asyncio.create_task(self._member.run(), name="shard-member")
        self._workers_task = asyncio.create_task(
            run_workers(deps.queue, self.wrap(deps.handler), workers=deps.workers),
            name="reconcile-workers",
        )
        self._rebalance_task = asyncio.create_task(
            self._rebalance_forever(), name="shard-rebalance"
        )
        self._tasks = [self._member_task, self._workers_task, self._rebalance_task]

    async def stop(self, drain_seconds: float) -> None:
        """Stop taking keys, drain the queue (bounded), journal every release, release the
        shard Leases and then the member Lease."""
        self._stopping = True
        await _cancel(self._rebalance_task)
        for hold in self._holds.values():
            hold.releasing = True
        deps = self._deps
        if deps is not None:
            try:
                async with asyncio.timeout(drain_seconds):
                    await deps.queue.shutdown(drain=True)
            except TimeoutError:
                log.warning("in-flight reconciles did not finish in %gs", drain_seconds)
        await _cancel(self._workers_task)
        await _cancel(self._member_task)  # leave the group first: the others rebalance
        for task in list(self._releases):
            await _cancel(task)
        await asyncio.gather(*(self._release(s) for s in list(self._holds)), return_exceptions=True)

    async def _rebalance_forever(self) -> None:
        while True:
            try:
                await self.rebalance()
            except Exception as failed:  # the API server may be away: try again next period
                log.warning("shard rebalance failed: %s", type(failed).__name__)
            await asyncio.sleep(self.config.retry_period)

    async def rebalance(self) -> None:
        """One pass: read the members, hold the shards this replica should hold, hand off
        the others."""
        live = await self._directory.live()
        me = self.identity
        members = {m for m in live if m != me}
        if not self._stopping:
            # this replica counts itself in while it runs, even when a renewal of its member
            # Lease is late: the shard Leases arbitrate, so a late renewal only delays the
            # others' view of it, and dropping itself would hand off every shard and back
            members.add(me)
        self.members = tuple(sorted(members))
        wanted = {s for s, owner in assignment(self.config.count, members).items() if owner == me}
        for shard in sorted(wanted - set(self._holds)):
            self._hold(shard)
        for shard, hold in list(self._holds.items()):
            if shard not in wanted and not hold.releasing:
                task = asyncio.create_task(self._release(shard), name=f"release-{shard}")
                self._releases.add(task)
                task.add_done_callback(self._releases.discard)
        self._update_metrics()

    def _hold(self, shard: str) -> None:
        lease = shard_lease_name(self.config.prefix, shard)
        elector = LeaderElector(
            self._api,
            self.config.elector(lease),
            on_started_leading=lambda term: self._started(shard, term),
            on_stopped_leading=lambda: self._stopped(shard),
        )
        seen = self._directory.last_change(lease)
        if seen is not None:
            view, at = seen
            elector.seed(
                resource_version=view.resource_version,
                holder=view.holder,
                transitions=view.term,
                at=at,
            )
        hold = self._holds[shard] = _Hold(elector=elector)
        hold.idle.set()
        hold.task = asyncio.create_task(elector.run(), name=f"shard-lease-{shard}")

    def _started(self, shard: str, term: int) -> None:
        hold = self._holds.get(shard)
        if hold is not None:
            hold.acquiring = asyncio.create_task(
                self._acquire(shard, term), name=f"acquire-{shard}"
            )

    def _stopped(self, shard: str) -> None:
        hold = self._holds.get(shard)
        if hold is None:
            return
        if hold.term is not None and not hold.releasing:
            log.warning("lost the Lease of %s (term %d): its keys stop here", shard, hold.term)
            self._count(shard, "lost")
        hold.term = None
        self._forget(shard)
        if hold.acquiring is not None:
            hold.acquiring.cancel()

    async def _acquire(self, shard: str, term: int) -> None:
        deps, hold = self._deps, self._holds.get(shard)
        if deps is None or hold is None:
            return
        record = NewEvent(
            type=SHARD_ACQUIRED, data={"shard": shard, "holder": self.identity, "term": term}
        )
        delay = self.config.retry_period
        while True:
            try:
                await deps.journal.append_fenced(shard_stream(shard), [record], Fence(shard, term))
                break
            except (FencedOut, JournalClosed) as refused:
                log.error("not acting for %s under term %d: %s", shard, term, refused)
                return
            except JournalError as failed:  # the database is away: the Lease is kept meanwhile
                log.warning(
                    "could not journal the acquisition of %s (%s); trying again in %gs",
                    shard,
                    failed,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.lease_duration)
        deps.journal.forget_shard(shard)  # whatever an older owner wrote is read afresh
        hold.term = term
        self._count(shard, "acquired")
        log.info("holding %s with term %d", shard, term)

        def ours(key: str) -> bool:
            return self.shard_of(key) == shard

        try:
            await deps.enqueue_in_flight(ours)
        except Exception as failed:  # the cached keys below are enqueued all the same
            log.warning("could not list the in-flight effects of %s: %s", shard, failed)
        keys = [key for key in deps.cached_keys() if ours(key)]
        for key in keys:
            deps.queue.add(key)
        log.info("enqueued the %d cached keys of %s", len(keys), shard)

    async def _release(self, shard: str) -> None:
        hold = self._holds.get(shard)
        if hold is None:
            return
        hold.releasing = True
        try:
            async with asyncio.timeout(self.config.drain_seconds):
                await hold.idle.wait()
        except TimeoutError:
            log.warning("turns of %s still running after %gs", shard, self.config.drain_seconds)
        await _cancel(hold.acquiring)
        term, deps = hold.term, self._deps
        if term is not None and deps is not None and hold.elector.is_leader:
            record = NewEvent(
                type=SHARD_RELEASED, data={"shard": shard, "holder": self.identity, "term": term}
            )
            with contextlib.suppress(JournalError):
                await deps.journal.append_fenced(shard_stream(shard), [record], Fence(shard, term))
            self._count(shard, "released")
        hold.term = None
        self._forget(shard)
        await _cancel(hold.task)  # the elector releases the Lease
        self._holds.pop(shard, None)
        log.info("released %s", shard)

    def _forget(self, shard: str) -> None:
        if self._deps is not None:
            self._deps.journal.forget_shard(shard)

    def _count(self, shard: str, direction: str) -> None:
        if self._metrics is not None:
            self._metrics.count_handoff(shard, direction)

    def _update_metrics(self) -> None:
        metrics, deps = self._metrics, self._deps
        if metrics is None:
            return
        metrics.set_owned(self.held(), self._shards)
        if deps is not None:
            counts: dict[str, int] = {}
            for key in deps.cached_keys():
                shard = self.shard_of(key)
                if shard in self._holds:
                    counts[shard] = counts.get(shard, 0) + 1
            metrics.set_keys(counts, self._shards)


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
