"""One reconcile of one key: read the object from the view (never the event payload),
fold its stream, then loop decide → journal the transition → run the effects, until a
decision is idle; map what happened to one queue `Outcome`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from opentelemetry import trace

from engine.clock import Clock
from engine.effects.errors import (
    EffectFailedPermanently,
    EffectRetryScheduled,
    NotLeading,
)
from engine.fsm import events as ev
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy, decide
from engine.fsm.decision import (
    Decision,
    Effect,
    PatchStatus,
    RunFinalize,
    RunProvision,
)
from engine.fsm.errors import IllegalTransition
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.machine import next_state
from engine.fsm.state import SUCCEEDED, ResourceState
from engine.fsm.table import (
    DELETED,
    EFFECT_FAILED,
    FAILED,
    GAVE_UP,
    PERMANENT_ERROR,
    PROVISIONING,
)
from engine.identity import Kind
from engine.runtime.queue.worker import (
    Outcome,
    RequeueAfter,
    RetryableFailure,
    Succeeded,
    TerminalFailure,
)
from engine.runtime.reconcile.actions import EffectActions, ReconcileStopped
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.conditions import SupervisorConditions, patch_conditions
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.inbox import Inbox, Note
from engine.runtime.reconcile.objects import Entry, PrimaryView
from engine.runtime.reconcile.observations import ObservationLog, observation_of, stream_of
from engine.runtime.reconcile.operator import Operator
from engine.runtime.reconcile.patches import LivePatches, PatchAnswers
from engine.runtime.reconcile.ports import ClusterWriter, EffectRunning
from engine.runtime.reconcile.progress_views import ResourceViews
from engine.runtime.reconcile.streams import StreamWriter
from engine.runtime.reconcile.waits import DependencyWaits
from engine.telemetry.ids_tracer import records_nothing
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.redaction import NO_SECRETS, Redactor
from engine.telemetry.spans import ReconcileSpan, ResourceRef, SpanIds, reconcile_span

log = logging.getLogger(__name__)

_WARNING_TRIGGERS = frozenset({EFFECT_FAILED, PERMANENT_ERROR, GAVE_UP})


@dataclass(frozen=True, slots=True)
class _Told:
    """One transition a reconcile took, for its Event."""

    position: int
    reason: str
    message: str
    warning: bool


class Reconciler:
    """`await reconcile(key)` → `Outcome`: level-based, one key at a time (R5, R6).

    Guarantees: every decision acts on an observation journaled first; every journal
    append carries the reconcile span's ids; after each of the engine's own writes the
    view holds the object the API server returned, so no write is repeated and no GET
    precedes a PATCH. Retryable effect failures end as `RequeueAfter` the journaled
    retry delay; permanent ones move the resource to Failed (decide fires the trigger).

    Requests: the finalizer is added only when the operator `holds_finalizer`; the
    Provisioning status a provision decision asks for is left to the pass after the run
    (a provision that succeeds at once costs one status write: Ready); the transitions of
    one reconcile are told in one Event (named after the first one's journal position,
    with the reason of the first one, or of the last warning one, and every message).
    """

    def __init__(
        self,
        *,
        operator: Operator,
        streams: StreamWriter,
        cluster: ClusterWriter,
        runner: EffectRunning,
        objects: PrimaryView,
        ledger: ChildLedger,
        observations: ObservationLog,
        inbox: Inbox,
        events: EventRecorder,
        conditions: SupervisorConditions,
        views: ResourceViews,
        clock: Clock,
        waits: DependencyWaits | None = None,
        tracer: trace.Tracer | None = None,
        metrics: EngineMetrics | None = None,
        policy: DecidePolicy = DEFAULT_POLICY,
        may_act: Callable[[], bool] = lambda: True,
        max_passes: int = 16,
        spec_digests: Callable[[Mapping[str, Any]], str | None] = lambda obj: None,
        patches: PatchAnswers | None = None,
    ) -> None:
        """Build the reconcile of `operator`'s resources over these ports.

        `streams` is the one door into the journal; `cluster` the writes to the API server;
        `runner` runs handlers and their steps (live, or answering from a recording);
        `objects` is the newest state of each primary object; `inbox` holds the
        supervisors' notes, acted on at the start of a key's turn; `may_act` is asked
        before each write (False: stop and requeue); `max_passes` bounds decide → act
        loops per reconcile; `spec_digests` names an object's spec digest when it is
        known without computing it (replay: the journaled one); `patches` answers the
        handlers' `ctx.patched` (default: journaled markers, `LivePatches`)."""
        resource = operator.resource
        self._operator = operator
        self._kind = resource.kind_ref
        self._streams = streams
        self._cluster = cluster
        self._runner = runner
        self._objects = objects
        self._ledger = ledger
        self._observations = observations
        self._inbox = inbox
        self._events = events
        self._conditions = conditions
        self._views = views
        self._clock = clock
        self._tracer = tracer or trace.NoOpTracer()
        self._metrics = metrics
        self._policy = replace(policy, hold_finalizer=operator.holds_finalizer)
        self._max_passes = max_passes
        self._spec_digests = spec_digests
        self._follows: dict[str, SpanIds] = {}
        self._effects = EffectActions(
            operator=operator,
            kind=self._kind,
            streams=streams,
            cluster=cluster,
            runner=runner,
            objects=objects,
            ledger=ledger,
            events=events,
            conditions=conditions,
            views=views,
            clock=clock,
            waits=waits,
            may_act=may_act,
            patches=patches
            or LivePatches(
                reader=streams.journal, writer=streams, code_version=operator.handler_version
            ),
        )

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def streams(self) -> StreamWriter:
        """The folded states of the streams (for the start-up scan of in-flight work)."""
        return self._streams

    async def reconcile(self, key: str) -> Outcome:
        """One turn of `key`: act on the supervisors' notes left for it, then reconcile
        the object as the view holds it. Never raises for a reconcile that failed: the
        `Outcome` says what the queue should do."""
        await self._act_on_notes(key)
        entry = self._objects.get(key)
        if entry is None or not entry.uid:
            return Succeeded()
        stream = stream_of(self._operator, entry.obj)
        metadata = entry.obj.get("metadata", {})
        ref = ResourceRef(
            namespace=str(metadata.get("namespace") or ""),
            kind=self._operator.resource.kind,
            name=str(metadata.get("name") or ""),
            uid=entry.uid,
            generation=int(metadata.get("generation") or 0),
            group=self._operator.resource.group,
        )
        redactor = (
            NO_SECRETS  # nothing is recorded: skip walking the object
            if records_nothing(self._tracer)
            else Redactor.from_object(entry.obj, self._operator.secret_fields)
        )
        # the previous reconcile in this process, else the newest one the journal holds
        link = self._follows.get(stream) or await self._streams.journaled_link(stream)
        follows = (link,) if link is not None else ()
        began = self._clock.monotonic()
        with reconcile_span(self._tracer, ref, follows=follows, redactor=redactor) as span:
            if span.ids is not None:
                self._follows[stream] = span.ids
            told: list[_Told] = []
            try:
                outcome = await self._passes(key, stream, entry.uid, span, told)
            except ReconcileStopped as stop:
                outcome = stop.outcome
            except NotLeading:
                outcome = RetryableFailure("not the leader: stopped before acting")
            await self._tell(key, entry, told)
            span.set_outcome(_label(outcome))
        if self._metrics is not None:
            seconds = self._clock.monotonic() - began
            self._metrics.observe_reconcile(ref.kind, _label(outcome), seconds)
        return outcome

    async def _act_on_notes(self, key: str) -> None:
        """Journal, hold, write and post what the supervisors noted for `key` (its turn)."""
        for note in self._inbox.take(key):
            entry = self._objects.get(key) or note.fallback
            positions = await self._streams.append(note.stream, note.records)
            if note.give_up is not None:
                given_up = str(note.give_up.data.get("key"))
                state = await self._streams.current(note.stream)
                if not any(e.key == given_up and e.outcome == SUCCEEDED for e in state.effects):
                    await self._streams.append(note.stream, [note.give_up])
            now = self._clock.now()
            if note.condition is not None:
                self._conditions.set(key, note.condition, now=now)
                await patch_conditions(
                    self._cluster,
                    self._kind,
                    self._objects,
                    key,
                    self._conditions,
                    fallback=note.fallback,
                )
            if note.reason and entry is not None and entry.exists and positions:
                await self._events.post(
                    entry.obj,
                    suffix=f"{positions[0]:x}",
                    reason=note.reason,
                    message=note.message,
                    warning=True,
                    now=now,
                )

    def leave_note(self, key: str, note: Note) -> None:
        """Keep `note` for `key`'s next turn (the caller enqueues the key)."""
        self._inbox.leave(key, note)

    async def _tell(self, key: str, first: Entry, told: list[_Told]) -> None:
        """Post one Event for the transitions `told` (none: nothing to post)."""
        if not told:
            return
        entry = self._objects.get(key)
        obj = entry.obj if entry is not None and entry.uid == first.uid else first.obj
        warnings = [t for t in told if t.warning]
        await self._events.post(
            obj,
            suffix=f"{told[0].position:x}",
            reason=warnings[-1].reason if warnings else told[0].reason,
            message="; ".join(t.message for t in told),
            warning=bool(warnings),
            now=self._clock.now(),
        )

    async def _passes(
        self, key: str, stream: str, uid: str, span: ReconcileSpan, told: list[_Told]
    ) -> Outcome:
        retry_pending = False
        retried = False  # an attempt failed (not a wait): its retry is spaced by the bucket
        for _ in range(self._max_passes):
            entry = self._objects.get(key)
            if entry is None or entry.uid != uid:
                return Succeeded()
            observation = observation_of(
                entry,
                finalizer=self._operator.finalizer_name,
                child_drift=self._ledger.drift(uid),
                spec_digest=self._spec_digests(entry.obj),
            )
            state = await self._streams.current(stream)
            if await self._observations.record(
                stream, observation, spec=entry.obj.get("spec") or {}, watch_event="reconcile"
            ):
                state = await self._streams.current(stream)
            decision = decide(state, observation, self._clock.now(), policy=self._policy)
            if decision.idle:
                settled = await self._settle(key, stream, entry, state, decision)
                if retried and isinstance(settled, RequeueAfter):
                    return RequeueAfter(settled.seconds, retry=True)
                return settled
            if decision.trigger is not None and not await self._transition(
                key, stream, entry, state, decision, span, told
            ):
                return TerminalFailure(f"illegal trigger {decision.trigger} in {state.state}")
            runs = any(isinstance(e, (RunProvision, RunFinalize)) for e in decision.effects)
            if retry_pending and runs:
                # the backoff passed already: go again via the queue (and its retry bucket)
                return RequeueAfter(0.0, retry=retried)
            for effect in _status_after_run(decision.effects):
                try:
                    await self._effects.run(key, stream, effect)
                except EffectRetryScheduled as retry:
                    span.record_retry(
                        delay_s=retry.delay, attempt=retry.attempt, error_type=retry.error_class
                    )
                    log.info(
                        "%s: %s attempt %d failed (%s), retry in %.3fs",
                        key,
                        _name(effect),
                        retry.attempt,
                        retry.error_class,
                        retry.delay,
                        extra={"resource": key, "effect": _name(effect), "delay_s": retry.delay},
                    )
                    if self._metrics is not None:
                        self._metrics.count_retry(self._operator.resource.kind, _name(effect))
                    retry_pending = True
                    retried = not retry.waiting
                    break
                except EffectFailedPermanently:
                    break  # decide fires permanent_error / gave_up on the next pass
        log.warning("reconcile of %r did not settle in %d passes", key, self._max_passes)
        return RequeueAfter(0.0)

    async def _settle(
        self, key: str, stream: str, entry: Entry, state: ResourceState, decision: Decision
    ) -> Outcome:
        await self._streams.save_snapshot_if_due(stream)
        self._views.set_state(key, state.state)
        if state.state == DELETED:
            self._objects.forget(key, entry.uid)
            self._ledger.forget(entry.uid)
            self._streams.forget(stream)
            self._observations.forget(stream)
            self._runner.forget(stream)
            self._follows.pop(stream, None)
            return Succeeded()
        if decision.requeue_after is not None:
            return RequeueAfter(decision.requeue_after)
        return Succeeded()

    async def _transition(
        self,
        key: str,
        stream: str,
        entry: Entry,
        state: ResourceState,
        decision: Decision,
        span: ReconcileSpan,
        told: list[_Told],
    ) -> bool:
        trigger = str(decision.trigger)
        generation = int(entry.obj.get("metadata", {}).get("generation") or 0)
        try:
            dest = next_state(state.state, trigger)
        except IllegalTransition as illegal:
            await self._streams.append(
                stream,
                [ev.illegal_trigger(state=state.state, trigger=trigger, message=str(illegal))],
            )
            log.error("illegal trigger %s in state %s for %r", trigger, state.state, key)
            return False
        event = ev.transition_taken(
            source=state.state,
            dest=dest,
            trigger=trigger,
            generation=generation,
            effect_key=decision.effect_key,
            attempt=decision.attempt,
        )
        position = (await self._streams.append(stream, [event]))[0]
        span.record_transition(from_state=state.state, to_state=dest, trigger=trigger)
        log.info(
            "%s: %s → %s (%s)",
            key,
            state.state,
            dest,
            trigger,
            extra={"resource": key, "from": state.state, "to": dest, "trigger": trigger},
        )
        now = self._clock.now()
        self._views.note(key, entry.obj, event=f"{state.state} → {dest}", at=now, state=dest)
        if entry.exists:
            message = f"{state.state} → {dest} ({trigger}): {decision.rule}"
            if state.last_error and (dest == FAILED or trigger in _WARNING_TRIGGERS):
                message = f"{message}: {state.last_error}"
            warning = dest == FAILED or trigger in _WARNING_TRIGGERS
            told.append(_Told(position, _camel(trigger), message, warning))
        return True


def _status_after_run(effects: tuple[Effect, ...]) -> tuple[Effect, ...]:
    """`effects` without the Provisioning status write that announces a provision run in
    the same decision: the next pass asks for the status the run's outcome calls for
    (Ready when it succeeded; Provisioning with the error, or Failed, when it did not),
    so a provision that succeeds at once costs one status write instead of two."""
    if not any(isinstance(e, RunProvision) for e in effects):
        return effects
    return tuple(e for e in effects if not (isinstance(e, PatchStatus) and e.phase == PROVISIONING))


def _camel(trigger: str) -> str:
    return "".join(part.capitalize() for part in trigger.split("_"))


def _name(effect: Effect) -> str:
    return PROVISION if isinstance(effect, RunProvision) else FINALIZE


def _label(outcome: Outcome) -> str:
    match outcome:
        case Succeeded():
            return "converged"
        case RequeueAfter():
            return "requeued"
        case RetryableFailure():
            return "retry"
        case TerminalFailure():
            return "failed"
