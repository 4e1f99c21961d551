"""The live reconcile loop over in-memory parts, for tests, golden journals and the test
kit: the engine's own `Reconciler`, `StreamWriter`, `ObservationLog`, `Observer`,
`DependencyWaits` and `EffectRunner`, on a journal (memory by default), a `MemoryCluster`
standing in for the API server and a `FakeClock`. Nothing here re-implements the loop:
it only plays the watch (feeding the cluster's objects to the observer) and the queue
(running a key's turns, moving the clock over requeue delays).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from engine.clock import FakeClock
from engine.effects import BackoffPolicy, EffectRunner, RunnerDeps
from engine.effects.backoff import DEFAULT_BACKOFF
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy
from engine.fsm.state import ResourceState
from engine.identity import Kind, ObjectRef, StreamId
from engine.journal.codec import encode_at
from engine.journal.memory import MemoryJournal
from engine.journal.store import Journal
from engine.runtime.queue.worker import Outcome, RequeueAfter, RetryableFailure
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.conditions import SupervisorConditions
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.history_warning import HistoryMetrics, HistoryWarnings
from engine.runtime.reconcile.inbox import Inbox, Note
from engine.runtime.reconcile.memory_cluster import MemoryCluster
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import ObservationLog, Observer, ObserverDeps
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.progress_views import ResourceViews
from engine.runtime.reconcile.reconciler import Reconciler
from engine.runtime.reconcile.steps import SpanTracer
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.reconcile.waits import DependencyWaits
from engine.watchers import Change, ChangeOrigin, ChangeType


@dataclass(frozen=True, slots=True)
class Turn:
    """One reconcile turn of a key and what the queue would do next."""

    key: str
    outcome: Outcome


class _Cache:
    """The watch cache the observer's `Change` carries (read-only, over the cluster)."""

    def __init__(self, cluster: MemoryCluster, kind: Kind) -> None:
        self._cluster, self._kind = cluster, kind

    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        return self._cluster.get(self._kind, namespace, name)

    def objects(self, namespace: str | None = None) -> list[Mapping[str, Any]]:
        return [o for o in self._cluster.objects() if o.get("kind") == self._kind.kind]

    def __len__(self) -> int:
        return len(self.objects())


class MemoryLoop:
    """`operator`'s reconcile loop with no server: create, change and delete objects,
    run turns, read the journal, the cluster's objects and the Events posted.

    Expected flow: `key = await loop.create("name", spec)`; `await loop.settle(key)`;
    assert on `await loop.state(key)`, `loop.cluster`, `await loop.records(key)`.
    """

    def __init__(
        self,
        operator: Operator,
        *,
        journal: Journal | None = None,
        clock: FakeClock | None = None,
        tracer: trace.Tracer | None = None,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        policy: DecidePolicy = DEFAULT_POLICY,
        dependency_poll_seconds: float = 5.0,
        effect_timeout: float = 30.0,
        cluster: MemoryCluster | None = None,
        history_warn_records: int = 0,
        metrics: HistoryMetrics | None = None,
    ) -> None:
        self.operator = operator
        self.clock = clock or FakeClock()
        self.journal = journal or MemoryJournal(clock=self.clock, redact=operator.secret_fields)
        self.kind = operator.resource.kind_ref
        self.cluster = cluster or MemoryCluster(clock=self.clock)
        self._settings = (tracer, backoff, policy, dependency_poll_seconds, effect_timeout)
        self.objects = PrimaryView()
        self.inbox = Inbox()
        self.conditions = SupervisorConditions()
        tracer = tracer or trace.NoOpTracer()
        ledger = ChildLedger()
        events = EventRecorder(self.cluster)
        history = HistoryWarnings(
            limit=history_warn_records, objects=self.objects, events=events,
            clock=self.clock, metrics=metrics,
        )  # fmt: skip
        self.streams = StreamWriter(
            self.journal,
            ledger=ledger,
            code_version=operator.handler_version,
            history=history,
            clock=self.clock,
        )
        observations = ObservationLog(self.streams)
        self.queued: list[str] = []
        self.waits = DependencyWaits(
            operator=operator,
            objects=self.objects,
            conditions=self.conditions,
            inbox=self.inbox,
            enqueue=self._enqueue,
            poll_seconds=dependency_poll_seconds,
        )
        runner = EffectRunner(
            RunnerDeps(
                journal=self.journal,
                streams=self.streams,
                clock=self.clock,
                backoff=backoff,
                timeout=effect_timeout,
                term=lambda: self.journal.term,
                tracer=SpanTracer(tracer),
            )
        )
        self.reconciler = Reconciler(
            operator=operator,
            streams=self.streams,
            cluster=self.cluster,
            runner=runner,
            objects=self.objects,
            ledger=ledger,
            observations=observations,
            inbox=self.inbox,
            events=events,
            conditions=self.conditions,
            views=ResourceViews(),
            clock=self.clock,
            waits=self.waits,
            tracer=tracer,
            policy=policy,
        )
        self.observer = Observer(
            ObserverDeps(
                operator=operator,
                view=self.objects,
                ledger=ledger,
                log=observations,
                enqueue=self.waits.notify,
                tracer=tracer,
            )
        )
        self._policy = policy
        self._seen: dict[str, str] = {}  # key → resourceVersion last fed to the watch
        self._stream_of: dict[str, str] = {}  # key → the stream of its newest object
        self._uids = 0

    def restart(self, operator: Operator | None = None) -> MemoryLoop:
        """A new engine process on the same journal, clock and API server (a kill -9 and a
        restart): every in-memory part starts afresh. Call `relist()` on it next."""
        tracer, backoff, policy, poll, timeout = self._settings
        return MemoryLoop(
            operator or self.operator,
            journal=self.journal,
            clock=self.clock,
            tracer=tracer,
            backoff=backoff,
            policy=policy,
            dependency_poll_seconds=poll,
            effect_timeout=timeout,
            cluster=self.cluster,
        )

    async def relist(self) -> None:
        """The watches' first lists: every child object of a declared kind, then every
        primary object, ADDED (without the children's list, the ledger a new process
        loads from the journal would take every child it applied for gone: drift)."""
        for obj in self.cluster.objects():
            child = self.operator.child_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
            if child is not None:
                await self.observer.child(
                    Change(
                        type=ChangeType.ADDED,
                        origin=ChangeOrigin.WATCH,
                        resource=child.kind_ref,
                        obj=obj,
                        previous=None,
                        cache=_Cache(self.cluster, child.kind_ref),
                    )
                )
        for obj in self.cluster.objects():
            if obj.get("kind") == self.kind.kind and obj.get("apiVersion") == self.kind.api_version:
                await self.watch(ObjectRef.of(obj).key, ChangeType.ADDED, obj)

    # -- the API server, as a client uses it --------------------------------------------

    async def create(
        self, name: str, spec: Mapping[str, Any], *, namespace: str = "default"
    ) -> str:
        """Create a primary object and let the watch see it; its queue key."""
        # the same name again is a new object with a new uid: look in the journal too, as
        # a restarted loop has not seen the streams of objects deleted before it began
        taken = set(self._stream_of.values()) | set(await self.journal.streams())
        uid = f"uid-{name}"
        while any(s.endswith(f"#{uid}") for s in taken):
            self._uids += 1
            uid = f"uid-{name}-{self._uids}"
        metadata: dict[str, Any] = {
            "name": name,
            "uid": uid,
            "generation": 1,
            "creationTimestamp": encode_at(self.clock.now()),
        }
        if self.kind.namespaced:
            metadata["namespace"] = namespace
        obj = {
            "apiVersion": self.kind.api_version,
            "kind": self.kind.kind,
            "metadata": metadata,
            "spec": copy.deepcopy(dict(spec)),
        }
        self.cluster.put(self.kind, obj)
        key = ObjectRef.of(obj).key
        await self.watch(key, ChangeType.ADDED)
        return key

    async def update_spec(self, key: str, spec: Mapping[str, Any]) -> None:
        """Replace the object's spec (generation + 1) and let the watch see it."""
        obj = self._live(key)
        obj["spec"] = copy.deepcopy(dict(spec))
        obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 0) + 1
        self.cluster.put(self.kind, obj)
        await self.watch(key)

    async def delete(self, key: str) -> None:
        """Delete the object as the API server does: at once when it has no finalizers,
        else it gets a `deletionTimestamp` (generation + 1) and waits for them."""
        obj = self._live(key)
        if not obj["metadata"].get("finalizers"):
            self.cluster.remove(self.kind, obj)
            await self.watch(key, ChangeType.DELETED, obj)
            return
        if not obj["metadata"].get("deletionTimestamp"):
            obj["metadata"]["deletionTimestamp"] = encode_at(self.clock.now())
            obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 0) + 1
            self.cluster.put(self.kind, obj)
        await self.watch(key)

    # -- the watch and the queue ---------------------------------------------------------

    async def watch(
        self,
        key: str,
        change: ChangeType = ChangeType.MODIFIED,
        obj: Mapping[str, Any] | None = None,
    ) -> None:
        """Hand the object's current state to the observer, as the watch would."""
        ref = ObjectRef.parse(key)
        current = obj or self.cluster.get(self.kind, ref.namespace, ref.name)
        if current is None:
            return
        self._seen[key] = str(current["metadata"].get("resourceVersion") or "")
        self._stream_of[key] = str(StreamId.of(self.kind, current))
        await self.observer.primary(
            Change(
                type=change,
                origin=ChangeOrigin.WATCH,
                resource=self.kind,
                obj=current,
                previous=None,
                cache=_Cache(self.cluster, self.kind),
            )
        )

    async def echo(self, key: str) -> None:
        """The watch event of the engine's own last write to `key`, if it made one; a
        deletion when the object is gone."""
        ref = ObjectRef.parse(key)
        current = self.cluster.get(self.kind, ref.namespace, ref.name)
        if current is None:
            entry = self.objects.get(key)
            if entry is not None and entry.exists:
                await self.watch(key, ChangeType.DELETED, entry.obj)
            return
        if str(current["metadata"].get("resourceVersion") or "") != self._seen.get(key):
            await self.watch(key)

    async def reconcile(self, key: str) -> Turn:
        """One turn of `key`, as a worker runs it."""
        return Turn(key, await self.reconciler.reconcile(key))

    async def settle(self, key: str, *, max_turns: int = 50) -> list[Turn]:
        """Run `key`'s turns until it settles: after each turn the watch echoes the
        engine's writes; a requeue moves the clock by its delay first. Returns the turns."""
        turns: list[Turn] = []
        for _ in range(max_turns):
            turn = await self.reconcile(key)
            turns.append(turn)
            await self.echo(key)
            match turn.outcome:
                case RequeueAfter(seconds=delay) if delay >= self._policy.resync_after:
                    return turns  # settled: only the periodic resync would look again
                case RequeueAfter(seconds=delay):
                    self.clock.advance(delay)
                case RetryableFailure(retry_after=after):
                    self.clock.advance(after or 0.01)
                case _:
                    if not self.inbox.pending(key) and key not in self.queued:
                        return turns
            if key in self.queued:
                self.queued.remove(key)
        return turns

    def leave_note(self, key: str, note: Note) -> None:
        """A supervisor's note for `key`'s next turn."""
        self.inbox.leave(key, note)

    # -- reads ----------------------------------------------------------------------------

    def stream(self, key: str) -> str:
        """The journal stream of the newest object named `key` the watch saw."""
        stream = self._stream_of.get(key)
        if stream is None:
            raise KeyError(f"{key} is not known to the loop")
        return stream

    async def state(self, key: str) -> ResourceState:
        return await self.streams.current(self.stream(key))

    async def records(self, key: str) -> list[Any]:
        return await self.journal.read_stream(self.stream(key))

    def _live(self, key: str) -> dict[str, Any]:
        ref = ObjectRef.parse(key)
        obj = self.cluster.get(self.kind, ref.namespace, ref.name)
        if obj is None:
            raise KeyError(f"{key} does not exist")
        return obj

    def _enqueue(self, key: str) -> None:
        if key not in self.queued:
            self.queued.append(key)
