"""Replay a journal through the live reconcile loop: the engine's own `Reconciler`, built
over the replay journal (in memory), an in-memory cluster writer and an effect runner
whose steps answer from the recording, fed the recorded observations in order.

The driver walks the recording's head: an observation the watch journaled is fed in as
the watcher would; a stuck report is left as the watchdog's note; any other record is
something a reconcile wrote, so the key's reconcile is run (once per turn, as the queue
runs it) and its appends are held to the recording by the gate. A relist after a restart
(an ADDED for an object this run already knows) rebuilds the in-memory parts, as a new
process would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import FakeClock
from engine.effects import EffectCall, EffectRunner, Mode, RetryableError, RunnerDeps
from engine.effects.backoff import DEFAULT_BACKOFF, BackoffPolicy
from engine.effects.errors import DependencyNotReady, PermanentError
from engine.fsm import events as ev
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy
from engine.identity import Kind, StreamId
from engine.journal.codec import encode_at
from engine.journal.memory import MemoryJournal
from engine.journal.record import NewEvent, Record
from engine.replay.recorded_patches import RecordedPatches
from engine.replay.recording import (
    HANDLER_EFFECTS,
    Diverged,
    Divergence,
    Recording,
    RecordingGate,
    is_external,
    move_clock,
)
from engine.runtime.queue.worker import RequeueAfter
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD
from engine.runtime.reconcile.conditions import STUCK, SupervisorConditions
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.inbox import Inbox, Note
from engine.runtime.reconcile.memory_cluster import MemoryCluster
from engine.runtime.reconcile.objects import PrimaryView, resource_version
from engine.runtime.reconcile.observations import ObservationLog
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.progress_views import ResourceViews
from engine.runtime.reconcile.reconciler import Reconciler
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.reconcile.waits import DependencyWaits
from engine.supervisor.waits_for import DeadlockPolicy

STALL_SECONDS = 10.0
"""How long the replayed loop may make no progress before the replay says where it stopped
(the loop is pure computation over memory: a real stall is a divergence)."""
_NEVER = 1e9  # a handler's timeout in replay: its steps answer at once


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    """The live engine's settings that shape what it journals (retry delays, attempts,
    dependency polling, deadlock policy, resync); replay must use the same ones."""

    backoff: BackoffPolicy = DEFAULT_BACKOFF
    dependency_poll_seconds: float = 5.0
    deadlock_policy: DeadlockPolicy = DeadlockPolicy.REPORT_AND_HOLD
    decide: DecidePolicy = DEFAULT_POLICY


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What a replay through the live loop did: records read, streams, reconciles run,
    records compared, and the first divergence (None: the code reproduces the journal)."""

    records: int
    streams: int
    reconciles: int
    compared: int
    divergence: Divergence | None
    code_version: str = ""
    """The handler code version replayed (the operator's)."""
    versions: tuple[tuple[str, int], ...] = ()
    """(code version, records) for every version that wrote records of the journal
    ("" for records written before records carried one), most records first."""
    diverging_version: str | None = None
    """The code version that wrote the journal's record at the divergence."""


class _RecordedDrift(ChildLedger):
    """The child ledger, with drift answered from the recording (children's watch events
    are not journaled; each observation journals whether they had drifted), for the
    owner as `objects` holds it."""

    def __init__(self, recording: Recording, objects: PrimaryView) -> None:
        super().__init__()
        self._recording = recording
        self._objects = objects

    def drift(self, owner_uid: str) -> bool:
        key = self._objects.key_of_uid(owner_uid)
        entry = self._objects.get(key) if key is not None else None
        version = resource_version(entry.obj) if entry is not None else None
        return self._recording.drift(owner_uid, version)


class _RecordedSteps:
    """The effect runner of replay: handlers (provision, finalize) run for real, each of
    their steps goes through the live runner with its call answered by the recorded
    outcome of that attempt (a result, or the recorded error); a step whose attempt has no
    outcome (the run was cut off there) never answers."""

    def __init__(self, inner: EffectRunner, recording: Recording, journal: MemoryJournal) -> None:
        self._inner = inner
        self._recording = recording
        self._journal = journal

    @property
    def mode(self) -> Mode:
        return Mode.REPLAY

    def forget(self, stream: str) -> None:
        self._inner.forget(stream)

    async def run(self, stream: str, key: str, name: str, call: EffectCall) -> Any:
        if name in HANDLER_EFFECTS:
            return await self._inner.run(stream, key, name, call)
        return await self._inner.run(stream, key, name, self._answer(stream))

    def _answer(self, stream: str) -> EffectCall:
        async def answer(key: str) -> Any:
            attempt = await self._inner.attempts(stream, key)  # collapsed repeats included
            outcome = self._recording.outcome(stream, key, attempt)
            if outcome is None:
                await self._recording.wait_until(lambda: False)  # cut off: never answers
            assert outcome is not None
            if outcome.type == ev.EFFECT_SUCCEEDED:
                return outcome.data.get("result")
            raise _recorded_error(outcome, self._recording.retry(stream, key, attempt))

        return answer


def _recorded_error(outcome: Record, retry: Record | None) -> BaseException:
    """An exception the live runner journals as `outcome` did (class name, retryable)."""
    data = outcome.data
    error_class = str(data.get("error_class") or "Error")
    message = str(data.get("message") or "")
    if error_class == "Timeout":
        return TimeoutError(message)
    if not data.get("retryable"):
        permanent: PermanentError = type(error_class, (PermanentError,), {})(message)
        return permanent
    delay = 0.0
    if retry is not None and retry.data.get("delay") != retry.data.get("backoff"):
        delay = float(retry.data.get("delay") or 0.0)
    if data.get("waiting"):  # a wait: the runner must journal it as a wait again
        waiting: DependencyNotReady = type(error_class, (DependencyNotReady,), {})("", delay=delay)
        waiting.args = (message,)
        return waiting
    error: RetryableError = type(error_class, (RetryableError,), {})(message, delay=delay)
    return error


class _RecordedWrites:
    """The in-memory cluster writer, answering when the journal says the API server did:
    a write to an object returns once every record the journal holds before that
    object's next record is reproduced (so another resource's reconcile cannot see the
    written state earlier than it could live)."""

    def __init__(self, inner: MemoryCluster, recording: Recording, kind: Kind) -> None:
        self._inner = inner
        self._recording = recording
        self._kind = kind

    async def _arrive(self, obj: Mapping[str, Any]) -> None:
        following = self._recording.next_of(str(StreamId.of(self._kind, obj)))
        if following is None:
            await self._recording.wait_until(lambda: False)  # the journal ends first
            return
        recording = self._recording
        await recording.wait_until(
            lambda: recording.head is following or recording.consumed(following)
        )

    async def add_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any]:
        answer = await self._inner.add_finalizer(kind, obj, finalizer)
        await self._arrive(obj)
        return answer

    async def remove_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any] | None:
        answer = await self._inner.remove_finalizer(kind, obj, finalizer)
        await self._arrive(obj)
        return answer

    async def patch_status(
        self, kind: Kind, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        answer = await self._inner.patch_status(kind, obj, status)
        await self._arrive(obj)
        stream = str(StreamId.of(self._kind, obj))
        if answer is not None and self._recording.answer_unjournaled(stream, status):
            # live, the answer failed or the process was killed before its record
            raise RetryableError("the journal holds no record of this status write's answer")
        return answer

    async def apply(self, kind: Kind, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        return await self._inner.apply(kind, manifest)

    async def record_event(
        self,
        involved: Mapping[str, Any],
        *,
        name: str,
        reason: str,
        message: str,
        warning: bool = False,
        now: datetime | None = None,
    ) -> None:
        await self._inner.record_event(
            involved, name=name, reason=reason, message=message, warning=warning, now=now
        )


class _Process:
    """One engine process as replay rebuilds it: the live parts over the replay journal."""

    def __init__(
        self,
        *,
        operator: Operator,
        recording: Recording,
        gate: RecordingGate,
        journal: MemoryJournal,
        clock: FakeClock,
        policy: ReplayPolicy,
    ) -> None:
        self.operator = operator
        self._recording = recording
        self._gate = gate
        kind = operator.resource.kind_ref
        self.objects = PrimaryView()
        ledger = _RecordedDrift(recording, self.objects)
        streams = StreamWriter(
            journal, ledger=ledger, gate=gate, code_version=operator.handler_version, clock=clock
        )
        self.observations = ObservationLog(streams)
        inbox, conditions = Inbox(), SupervisorConditions()
        cluster = _RecordedWrites(
            MemoryCluster(
                clock=clock, versions=lambda obj: recording.version_after_write(kind, obj)
            ),
            recording,
            kind,
        )
        runner = EffectRunner(
            RunnerDeps(
                journal=journal,
                streams=streams,
                clock=clock,
                backoff=policy.backoff,
                timeout=_NEVER,
                term=lambda: journal.term,
            )
        )
        self.waits = DependencyWaits(
            operator=operator,
            objects=self.objects,
            conditions=conditions,
            inbox=inbox,
            enqueue=lambda key: None,  # the driver runs a key when the journal says so
            policy=policy.deadlock_policy,
            poll_seconds=policy.dependency_poll_seconds,
        )
        self.reconciler = Reconciler(
            operator=operator,
            streams=streams,
            cluster=cluster,
            runner=_RecordedSteps(runner, recording, journal),
            objects=self.objects,
            ledger=ledger,
            observations=self.observations,
            inbox=inbox,
            events=EventRecorder(cluster),
            conditions=conditions,
            views=ResourceViews(),
            clock=clock,
            waits=self.waits,
            policy=policy.decide,
            spec_digests=recording.spec_digest,
            patches=RecordedPatches(recording, streams),
        )
        self._created: dict[str, str] = {}
        self._seeded: set[str] = set()
        self._listed = False
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.streams = streams
        self.clock = clock
        self.runner = runner

    def knows(self, uid: str) -> bool:
        """Whether a relist of the object with `uid` is a restart: this process has seen it
        itself, or carried it over from the process before and has finished its own first
        list (a live watch sends `added` for an object it knows only in that list: its
        later relists send `modified`), so the `added` is the next process's list."""
        if self.objects.key_of_uid(uid) is None:
            return False
        return uid not in self._seeded or self._listed

    def seed(self, before: PrimaryView) -> None:
        """Start with every object the process before knew to exist, as a new live
        process does: its first list finds them, and an object listed unchanged since its
        last journaled observation is noted in the views without a record."""
        for key in before.keys():  # noqa: SIM118 (a PrimaryView, not a dict: no __iter__)
            entry = before.get(key)
            if entry is not None and entry.exists:
                self.objects.update(entry.obj)
                self._seeded.add(entry.uid)

    async def observe(self, record: Record) -> None:
        """Feed an observation the watch journaled, as the watcher's sink does."""
        ident = StreamId.parse(record.stream)
        observation = ev.parse_observation(record)
        obj = self._object_of(record)
        self._seeded.discard(str(obj["metadata"]["uid"]))
        if record.data.get("watch_event") != "added":
            self._listed = True  # the watch delivers changes only after its first list
        self.objects.update(obj, exists=observation.exists)
        spec = record.data.get("spec") or {}
        watch_event = str(record.data.get("watch_event"))
        self._gate.driving = record
        try:
            if not await self.observations.record(
                record.stream, observation, spec=spec, watch_event=watch_event
            ):
                # equal to what this run journaled last, yet journaled live: the live
                # process had not loaded the stream yet (a fresh start); do the same
                self.observations.forget(record.stream)
                await self.observations.record(
                    record.stream, observation, spec=spec, watch_event=watch_event
                )
        finally:
            self._gate.driving = None
        self.waits.notify(ident.ref.key)

    def _object_of(self, record: Record) -> dict[str, Any]:
        data, resource = record.data, self.operator.resource
        ident = StreamId.parse(record.stream)
        uid = str(data.get("uid") or ident.uid)
        created = self._created.setdefault(uid, encode_at(record.at))
        metadata: dict[str, Any] = {
            "name": ident.name,
            "uid": uid,
            "generation": int(data.get("generation") or 0),
            "resourceVersion": str(data.get("resource_version") or ""),
            "creationTimestamp": created,
        }
        if ident.namespace:
            metadata["namespace"] = ident.namespace
        if data.get("has_finalizer"):
            metadata["finalizers"] = [self.operator.finalizer_name]
        if data.get("deletion_requested"):
            metadata["deletionTimestamp"] = encode_at(record.at)
        status = {
            field: data.get(name)
            for field, name in (
                ("phase", "status_phase"),
                ("observedGeneration", "status_observed_generation"),
                ("reason", "status_reason"),
            )
            if data.get(name) is not None
        }
        spec = data.get("spec")
        return {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": metadata,
            "spec": dict(spec) if isinstance(spec, Mapping) else {},
            "status": status,
        }

    def leave_stuck_note(self, record: Record) -> bool:
        """Leave the watchdog's note that `record` (a `StuckDetected`) opens; True when
        its healing ends the key's running reconcile."""
        stream = record.stream
        following = self._recording.ahead(stream)
        records: list[NewEvent] = [_copy(following[0])]
        give_up: NewEvent | None = None
        heals = False
        for later in following[1:3]:
            if later.type == ev.HEALING_APPLIED and len(records) == 1:
                records.append(_copy(later))
                heals = True
            elif later.type == ev.EFFECT_FAILED and later.data.get("error_class") == "Stuck":
                give_up = _copy(later)
            else:
                break
        key = StreamId.parse(stream).ref.key
        # the live turn also writes the Stuck condition (a status write whose new
        # resourceVersion later observations carry); its wording is not journaled
        condition = {"type": STUCK, "status": "True", "reason": "Stuck", "message": ""}
        note = Note(stream=stream, records=tuple(records), condition=condition, give_up=give_up)
        self.reconciler.leave_note(key, note)
        return heals

    def run(self, key: str) -> None:
        """Start `key`'s reconcile unless one runs (one worker per key)."""
        task = self.tasks.get(key)
        if task is not None and not task.done():
            return
        task = asyncio.get_running_loop().create_task(self.reconciler.reconcile(key))
        task.add_done_callback(lambda _: self._recording.notify())
        self.tasks[key] = task

    def running(self, key: str) -> bool:
        task = self.tasks.get(key)
        return task is not None and not task.done()

    async def stop(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Diverged, Exception):
                await task


def _copy(record: Record) -> NewEvent:
    return NewEvent(
        type=record.type,
        data=record.data,
        schema=record.schema,
        idempotency_key=record.idempotency_key,
    )


async def replay_through_loop(
    records: Sequence[Record], operator: Operator, *, policy: ReplayPolicy | None = None
) -> ReplayReport:
    """Re-run `operator`'s reconcile loop over `records` (a journal, in position order)
    and compare every record it writes with the journal's.

    Guarantees: no effect is called (every step answers from the journal) and nothing is
    written outside memory. Errors: `FoldError` for a record that cannot be folded.
    """
    policy = policy or ReplayPolicy()
    recording = Recording(records, kind=operator.resource.kind_ref)
    first = recording.order[0].at if recording.order else None
    clock = FakeClock(start=first) if first is not None else FakeClock()
    journal = MemoryJournal(clock=clock, redact=tuple(operator.secret_fields))
    gate = RecordingGate(recording, clock=clock, journal=journal)

    def new_process(before: _Process | None = None) -> _Process:
        started = _Process(
            operator=operator,
            recording=recording,
            gate=gate,
            journal=journal,
            clock=clock,
            policy=policy,
        )
        if before is not None:
            started.seed(before.objects)
        return started

    process = new_process()
    reconciles = 0
    try:
        for record in recording.order:
            await recording.wait_until(
                lambda r=record: recording.consumed(r) or recording.head is r  # type: ignore[misc]
            )
            if recording.consumed(record):
                continue
            key = StreamId.parse(record.stream).ref.key
            if is_external(record):
                if record.data.get("watch_event") == "added" and process.knows(
                    str(record.data.get("uid"))
                ):
                    await process.stop()  # a relist: the live process had restarted
                    process = new_process(process)
                await _drain_repeats(process, recording, record)
                move_clock(clock, record)
                await process.observe(record)
                continue
            await _drain_repeats(process, recording, record)
            ending = _ending_observation(process, recording, record)
            if ending is not None:  # the watch's observation ended a collapsed run
                move_clock(clock, ending)
                await process.observe(ending)
                continue
            move_clock(clock, record)
            if record.type == ev.STUCK_DETECTED and process.leave_stuck_note(record):
                task = process.tasks.get(key)
                if task is not None:
                    task.cancel()  # the healing cancels the running reconcile
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            reconciles += await _reproduce(process, recording, record, key)
    except Diverged:
        pass
    finally:
        await process.stop()
    divergence = recording.divergence
    at = {r.position: r for r in recording.order}
    diverging = (
        at.get(divergence.position) if divergence and divergence.position is not None else None
    )
    return ReplayReport(
        records=len(records),
        streams=len(recording.streams),
        reconciles=reconciles,
        compared=recording.compared,
        divergence=divergence,
        code_version=operator.handler_version,
        versions=tuple(sorted(recording.versions.items(), key=lambda kv: (-kv[1], kv[0]))),
        diverging_version=(
            str(diverging.data.get(CODE_VERSION_FIELD) or "") if diverging is not None else None
        ),
    )


async def _reproduce(process: _Process, recording: Recording, record: Record, key: str) -> int:
    """Run `key`'s reconcile until `record` is reproduced; the reconciles started."""
    started = 0
    # a reconcile that settles early is run once more, as a requeue; while identical
    # failures are collapsed (nothing journaled), as many more as the run's attempts,
    # each after its requeue delay, as the queue would
    runs, most = 0, 2
    while runs < most or process.streams.holding(record.stream):
        if runs >= 2:
            most = 2 + recording.highest_attempt(record.stream)
            if runs >= most:
                break
            _requeue_delay(process, key)
        runs += 1
        if not process.running(key):
            process.run(key)
            started += 1
        try:
            await asyncio.wait_for(
                recording.wait_until(
                    lambda: recording.consumed(record) or not process.running(key)
                ),
                STALL_SECONDS,
            )
        except TimeoutError:
            raise recording.diverge(
                Divergence(
                    record.stream,
                    record.position,
                    "stall",
                    f"the code stops before {_what(record)} (it waits for something the "
                    "journal does not hold)",
                )
            ) from None
        if recording.consumed(record):
            return started
        task = process.tasks.get(key)
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            if error is not None and not isinstance(error, Diverged):
                raise recording.diverge(
                    Divergence(
                        record.stream,
                        record.position,
                        "reconcile",
                        f"the reconcile raised {type(error).__name__}: {error}",
                    )
                )
    raise recording.diverge(
        Divergence(
            record.stream,
            record.position,
            "reconcile",
            f"the journal has {_what(record)} here, the code writes nothing",
        )
    )


async def _drain_repeats(process: _Process, recording: Recording, before: Record) -> None:
    """Run the attempts of collapsed runs that were due before `before`, each at its due
    time (the live queue ran them then; nothing of them is journaled but the count the
    run reaches), up to the attempt the recording journals next with its count."""
    for stream in process.streams.holding_streams():
        target = recording.next_repeated(stream)
        if target is None:
            continue
        effect, last = target
        key = StreamId.parse(stream).ref.key
        for _ in range(last + 2):
            state = process.streams.cached(stream)
            due = state.retry_at if state is not None else None
            if process.running(key) or due is None or due > before.at.timestamp():
                break
            if await process.runner.attempts(stream, effect) >= last:
                break
            ahead = due - process.clock.now().timestamp()
            if ahead > 0:
                process.clock.advance(ahead)
            process.run(key)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    recording.wait_until(lambda k=key: not process.running(k)),  # type: ignore[misc]
                    STALL_SECONDS,
                )


def _ending_observation(process: _Process, recording: Recording, record: Record) -> Record | None:
    """The watch's observation journaled right after the held events of a collapsed run
    when `record` is the first of them (the observation ended the run: its append
    journaled them first), else None."""
    held = process.streams.held_events(record.stream)
    if not held:
        return None
    ahead = recording.ahead(record.stream, count=held + 1)
    if len(ahead) <= held or ahead[0] is not record or not is_external(ahead[held]):
        return None
    if any(is_external(r) or r.at != record.at for r in ahead[1:held]):
        return None
    return ahead[held]


def _requeue_delay(process: _Process, key: str) -> None:
    """Move the clock over the requeue delay the key's last reconcile ended with."""
    task = process.tasks.get(key)
    if task is None or not task.done() or task.cancelled() or task.exception() is not None:
        return
    outcome = task.result()
    if isinstance(outcome, RequeueAfter) and outcome.seconds > 0:
        process.clock.advance(outcome.seconds)


def _what(record: Record) -> str:
    data = record.data
    if record.type == ev.TRANSITION_TAKEN:
        return f"{record.type} {data.get('from')} → {data.get('to')} ({data.get('trigger')})"
    if record.type in ev.EFFECT_TYPES:
        return f"{record.type} {data.get('key')}"
    return record.type
