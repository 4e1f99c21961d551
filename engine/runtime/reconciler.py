"""One reconcile of one key: read the object from the view (never the event payload),
fold its stream, then loop decide → journal the transition → run the effects, until a
decision is idle; map what happened to one queue `Outcome`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from opentelemetry import trace

from engine.clock import Clock
from engine.effects import EffectRunner
from engine.effects.errors import (
    EffectFailedPermanently,
    EffectRetryScheduled,
    NotLeading,
    PermanentError,
    RetryableError,
)
from engine.effects.kube import KindRef, KubeWriter
from engine.failpoint import afailpoint
from engine.fsm import events as ev
from engine.fsm.decide import DEFAULT_POLICY, DecidePolicy, decide
from engine.fsm.decision import (
    AddFinalizer,
    Decision,
    Effect,
    PatchStatus,
    RemoveFinalizer,
    RunFinalize,
    RunProvision,
)
from engine.fsm.errors import IllegalTransition
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.machine import next_state
from engine.fsm.state import ResourceState
from engine.fsm.table import DELETED, EFFECT_FAILED, FAILED, GAVE_UP, PERMANENT_ERROR
from engine.journal.record import NewEvent
from engine.journal.store import Journal
from engine.runtime.children import ChildLedger
from engine.runtime.conditions import SupervisorConditions
from engine.runtime.context import Context
from engine.runtime.handler_backend import StepBackend
from engine.runtime.observer import ObservationLog, observation_of, stream_of
from engine.runtime.operator import Operator
from engine.runtime.recorded_spec import restore_secrets, spec_at_generation
from engine.runtime.resource_view import ResourceViews
from engine.runtime.secret_scrub import scrubbed
from engine.runtime.states import StreamStates
from engine.runtime.status import status_body
from engine.runtime.view import Entry, PrimaryView
from engine.runtime.waits import DependencyWaits
from engine.runtime.worker import (
    Outcome,
    RequeueAfter,
    RetryableFailure,
    Succeeded,
    TerminalFailure,
)
from engine.telemetry.metrics import EngineMetrics
from engine.telemetry.redaction import Redactor
from engine.telemetry.spans import ReconcileSpan, ResourceRef, SpanIds, current_ids, reconcile_span

log = logging.getLogger(__name__)

_WARNING_TRIGGERS = frozenset({EFFECT_FAILED, PERMANENT_ERROR, GAVE_UP})


@dataclass(frozen=True)
class ReconcilerDeps:
    """Everything a reconcile needs. `max_passes` bounds decide→act loops per reconcile;
    `record_events` turns the Kubernetes Event per transition on or off. Supervision:
    `may_act` is asked before each Kubernetes write (False: stop and requeue);
    `waits` backs `Context.wait_until_ready`; `conditions` are the supervisor's extra
    status conditions, kept on every status patch."""

    operator: Operator
    journal: Journal
    runner: EffectRunner
    writer: KubeWriter
    view: PrimaryView
    ledger: ChildLedger
    log: ObservationLog
    states: StreamStates
    views: ResourceViews
    clock: Clock
    tracer: trace.Tracer
    metrics: EngineMetrics | None = None
    policy: DecidePolicy = DEFAULT_POLICY
    term: Callable[[], int] | None = None
    max_passes: int = 16
    record_events: bool = True
    may_act: Callable[[], bool] | None = None
    waits: DependencyWaits | None = None
    conditions: SupervisorConditions | None = None


class _Stop(Exception):
    """Ends the reconcile with `outcome` (a write the engine could not make)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class Reconciler:
    """`await reconcile(key)` → `Outcome`: level-based, one key at a time (R5, R6).

    Guarantees: every decision acts on an observation journaled first; every journal
    append carries the reconcile span's ids; after each of the engine's own writes the
    view holds the object the API server returned, so no write is repeated and no GET
    precedes a PATCH. Retryable effect failures end as `RequeueAfter` the journaled
    retry delay; permanent ones move the resource to Failed (decide fires the trigger).
    """

    def __init__(self, deps: ReconcilerDeps) -> None:
        self._deps = deps
        resource = deps.operator.resource
        self._kind = KindRef(
            resource.group, resource.version, resource.plural, resource.kind, resource.namespaced
        )
        self._follows: dict[str, SpanIds] = {}
        self._logger = logging.getLogger(f"engine.operator.{resource.kind.lower()}")

    @property
    def kind(self) -> KindRef:
        return self._kind

    @property
    def states(self) -> StreamStates:
        """The folded states of the streams (for the start-up scan of in-flight work)."""
        return self._deps.states

    async def reconcile(self, key: str) -> Outcome:
        deps = self._deps
        entry = deps.view.get(key)
        if entry is None or not entry.uid:
            return Succeeded()
        stream = stream_of(deps.operator, entry.obj)
        metadata = entry.obj.get("metadata", {})
        ref = ResourceRef(
            namespace=str(metadata.get("namespace") or ""),
            kind=deps.operator.resource.kind,
            name=str(metadata.get("name") or ""),
            uid=entry.uid,
            generation=int(metadata.get("generation") or 0),
            group=deps.operator.resource.group,
        )
        redactor = Redactor.from_object(entry.obj, deps.operator.secret_fields)
        # the previous reconcile in this process, else the newest one the journal holds
        link = self._follows.get(stream) or await deps.states.journaled_link(stream)
        follows = (link,) if link is not None else ()
        began = deps.clock.monotonic()
        with reconcile_span(deps.tracer, ref, follows=follows, redactor=redactor) as span:
            if span.ids is not None:
                self._follows[stream] = span.ids
            try:
                outcome = await self._passes(key, stream, entry.uid, span)
            except _Stop as stop:
                outcome = stop.outcome
            except NotLeading:
                outcome = RetryableFailure("not the leader: stopped before acting")
            span.set_outcome(_label(outcome))
        if deps.metrics is not None:
            seconds = deps.clock.monotonic() - began
            deps.metrics.observe_reconcile(ref.kind, _label(outcome), seconds)
        return outcome

    async def _passes(self, key: str, stream: str, uid: str, span: ReconcileSpan) -> Outcome:
        deps = self._deps
        retry_pending = False
        for _ in range(deps.max_passes):
            entry = deps.view.get(key)
            if entry is None or entry.uid != uid:
                return Succeeded()
            observation = observation_of(
                entry,
                finalizer=deps.operator.finalizer_name,
                child_drift=deps.ledger.drift(uid),
            )
            state = await deps.states.current(stream)
            if await deps.log.record(
                stream, observation, spec=entry.obj.get("spec") or {}, watch_event="reconcile"
            ):
                state = await deps.states.current(stream)
            decision = decide(state, observation, deps.clock.now(), policy=deps.policy)
            if decision.idle:
                return await self._settle(key, stream, entry, state, decision)
            if decision.trigger is not None and not await self._transition(
                key, stream, entry, state, decision, span
            ):
                return TerminalFailure(f"illegal trigger {decision.trigger} in {state.state}")
            runs = any(isinstance(e, (RunProvision, RunFinalize)) for e in decision.effects)
            if retry_pending and runs:
                return RequeueAfter(0.0)  # the backoff passed already: go again via the queue
            for effect in decision.effects:
                try:
                    await self._run(key, stream, effect)
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
                    if deps.metrics is not None:
                        deps.metrics.count_retry(deps.operator.resource.kind, _name(effect))
                    retry_pending = True
                    break
                except EffectFailedPermanently:
                    break  # decide fires permanent_error / gave_up on the next pass
        log.warning("reconcile of %r did not settle in %d passes", key, deps.max_passes)
        return RequeueAfter(0.0)

    async def _settle(
        self, key: str, stream: str, entry: Entry, state: ResourceState, decision: Decision
    ) -> Outcome:
        deps = self._deps
        await deps.states.save_snapshot_if_due(stream)
        deps.views.set_state(key, state.state)
        if state.state == DELETED:
            deps.view.forget(key, entry.uid)
            deps.ledger.forget(entry.uid)
            deps.states.forget(stream)
            deps.log.forget(stream)
            deps.runner.forget(stream)
            self._follows.pop(stream, None)
            return Succeeded()
        if decision.requeue_after is not None:
            return RequeueAfter(decision.requeue_after)
        return Succeeded()

    async def _append(self, stream: str, event: NewEvent) -> int:
        ids = current_ids()
        if ids is not None:
            event = replace(event, trace_id=ids.trace_id, span_id=ids.span_id)
        positions = await self._deps.journal.append(stream, [event])
        return positions[0]

    async def _transition(
        self,
        key: str,
        stream: str,
        entry: Entry,
        state: ResourceState,
        decision: Decision,
        span: ReconcileSpan,
    ) -> bool:
        deps = self._deps
        trigger = str(decision.trigger)
        generation = int(entry.obj.get("metadata", {}).get("generation") or 0)
        try:
            dest = next_state(state.state, trigger)
        except IllegalTransition as illegal:
            await self._append(
                stream, ev.illegal_trigger(state=state.state, trigger=trigger, message=str(illegal))
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
        position = await self._append(stream, event)
        span.record_transition(from_state=state.state, to_state=dest, trigger=trigger)
        log.info(
            "%s: %s → %s (%s)",
            key,
            state.state,
            dest,
            trigger,
            extra={"resource": key, "from": state.state, "to": dest, "trigger": trigger},
        )
        now = deps.clock.now()
        deps.views.note(key, entry.obj, event=f"{state.state} → {dest}", at=now, state=dest)
        if deps.record_events and entry.exists:
            message = f"{state.state} → {dest} ({trigger}): {decision.rule}"
            if state.last_error and (dest == FAILED or trigger in _WARNING_TRIGGERS):
                message = f"{message}: {state.last_error}"
            name = f"{entry.obj['metadata']['name']}.{entry.uid[:8]}.{position:x}"
            try:
                await deps.writer.record_event(
                    entry.obj,
                    name=name,
                    reason=_camel(trigger),
                    message=message,
                    warning=dest == FAILED or trigger in _WARNING_TRIGGERS,
                    now=now,
                )
            except (RetryableError, PermanentError) as error:
                log.warning("could not record the event of %r: %s", key, type(error).__name__)
        return True

    async def _run(self, key: str, stream: str, effect: Effect) -> None:
        deps = self._deps
        entry = deps.view.get(key)
        if entry is None:
            return
        if deps.may_act is not None and not deps.may_act():
            raise NotLeading(f"not the leader: {key} not acted on")
        finalizer = deps.operator.finalizer_name
        match effect:
            case AddFinalizer():
                updated = await self._write(key, entry, deps.writer.add_finalizer, finalizer)
                if updated is not None:
                    deps.view.update(updated)
            case RemoveFinalizer():
                await afailpoint("finalizer.before_remove")
                updated = await self._write(key, entry, deps.writer.remove_finalizer, finalizer)
                await afailpoint("finalizer.after_remove")
                if updated is None or not updated.get("metadata", {}).get("finalizers"):
                    gone = updated if updated is not None else entry.obj
                    deps.view.update(gone, exists=updated is not None and not _deleting(updated))
                else:
                    deps.view.update(updated)
            case RunProvision() | RunFinalize():
                await self._run_handler(stream, entry, effect)
                await afailpoint("effect.after_record")
            case PatchStatus():
                await self._patch_status(key, stream, entry, effect)

    async def _write(
        self, key: str, entry: Entry, write: Callable[..., Any], finalizer: str
    ) -> Mapping[str, Any] | None:
        try:
            result: Mapping[str, Any] | None = await write(self._kind, entry.obj, finalizer)
        except RetryableError as error:
            raise _Stop(RetryableFailure(str(error), retry_after=error.delay or None)) from None
        except PermanentError as error:
            await self._refused(key, entry, error)
            raise _Stop(TerminalFailure(str(error))) from None
        return result

    async def _refused(self, key: str, entry: Entry, error: PermanentError) -> None:
        """A write the API server refuses for good: a Warning Event, no retry storm."""
        log.error("the API server refused a write for %r: %s", key, error)
        if not self._deps.record_events:
            return
        with contextlib.suppress(RetryableError, PermanentError):
            await self._deps.writer.record_event(
                entry.obj,
                name=f"{entry.obj['metadata']['name']}.{entry.uid[:8]}.refused",
                reason="WriteRefused",
                message=str(error),
                warning=True,
                now=self._deps.clock.now(),
            )

    async def _run_handler(
        self, stream: str, entry: Entry, effect: RunProvision | RunFinalize
    ) -> None:
        deps = self._deps
        handler = (
            deps.operator.provision if isinstance(effect, RunProvision) else deps.operator.finalize
        )
        metadata = entry.obj.get("metadata", {})
        redactor = Redactor.from_object(entry.obj, deps.operator.secret_fields)
        spec = await self._spec_for(stream, entry, effect.generation)
        context = Context(
            name=str(metadata.get("name") or ""),
            namespace=str(metadata.get("namespace") or ""),
            uid=entry.uid,
            generation=effect.generation,
            round=effect.round if isinstance(effect, RunProvision) else 0,
            spec=MappingProxyType(spec),
            metadata=MappingProxyType(dict(metadata)),
            term=deps.term() if deps.term is not None else deps.journal.term,
            logger=self._logger,
            waits=deps.waits,
            backend=StepBackend(
                operator=deps.operator,
                runner=deps.runner,
                writer=deps.writer,
                ledger=deps.ledger,
                stream=stream,
                owner=entry.obj,
                redactor=redactor,
            ),
        )

        async def call(_: str) -> None:
            if handler is None:
                return
            if deps.waits is None:
                await handler(context)
                return
            with deps.waits.attempt(f"{context.namespace}/{context.name}"):
                await handler(context)

        name = PROVISION if isinstance(effect, RunProvision) else FINALIZE
        await deps.runner.run(stream, effect.key, name, scrubbed(call, redactor))

    async def _spec_for(self, stream: str, entry: Entry, generation: int) -> dict[str, Any]:
        """The spec a handler run of `generation` gets: the live one, or — when an effect
        of an older generation is resumed after a crash — that generation's, so the callee
        sees the same request under the same key (R3)."""
        live = dict(entry.obj.get("spec") or {})
        if generation == int(entry.obj.get("metadata", {}).get("generation") or 0):
            return live
        recorded = spec_at_generation(await self._deps.journal.read_stream(stream), generation)
        if recorded is None:
            log.warning(
                "the spec of generation %d of %s is not in the journal in full; "
                "resuming its effect with the live spec",
                generation,
                stream,
            )
            return live
        return restore_secrets(recorded, live, self._deps.operator.secret_fields)

    async def _patch_status(self, key: str, stream: str, entry: Entry, effect: PatchStatus) -> None:
        deps = self._deps
        body = status_body(
            phase=effect.phase,
            observed_generation=effect.observed_generation,
            reason=effect.reason,
            current=entry.obj.get("status"),
            now=deps.clock.now(),
            extra=deps.conditions.of(key) if deps.conditions is not None else (),
        )
        await afailpoint("status.before_patch")
        try:
            updated = await deps.writer.patch_status(self._kind, entry.obj, body)
        except RetryableError as error:
            raise _Stop(RetryableFailure(str(error), retry_after=error.delay or None)) from None
        except PermanentError as error:
            await self._refused(key, entry, error)
            raise _Stop(TerminalFailure(str(error))) from None
        await afailpoint("status.after_patch")
        if updated is None:
            deps.view.update(entry.obj, exists=False)
            return
        deps.view.update(updated)
        await self._append(
            stream,
            ev.status_written(
                phase=effect.phase,
                observed_generation=effect.observed_generation,
                reason=effect.reason,
            ),
        )
        deps.views.note(key, updated, event=f"status {effect.phase}", at=deps.clock.now())


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


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
