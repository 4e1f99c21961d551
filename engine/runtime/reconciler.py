"""One reconcile of one key: read the object from the view (never the event payload),
fold its stream, then loop decide → journal the transition → run the effects, until a
decision is idle; map what happened to one queue `Outcome`.
"""

from __future__ import annotations

import logging

from opentelemetry import trace

from engine.effects.errors import (
    EffectFailedPermanently,
    EffectRetryScheduled,
    NotLeading,
    PermanentError,
    RetryableError,
)
from engine.effects.kube import KindRef
from engine.fsm import events as ev
from engine.fsm.decide import decide
from engine.fsm.decision import (
    Decision,
    Effect,
    RunFinalize,
    RunProvision,
)
from engine.fsm.errors import IllegalTransition
from engine.fsm.key import FINALIZE, PROVISION
from engine.fsm.machine import next_state
from engine.fsm.state import ResourceState
from engine.fsm.table import DELETED, EFFECT_FAILED, FAILED, GAVE_UP, PERMANENT_ERROR
from engine.runtime.effect_actions import EffectActions, ReconcileStopped, append_traced
from engine.runtime.observer import observation_of, stream_of
from engine.runtime.reconciler_deps import ReconcilerDeps
from engine.runtime.states import StreamStates
from engine.runtime.view import Entry
from engine.runtime.worker import (
    Outcome,
    RequeueAfter,
    RetryableFailure,
    Succeeded,
    TerminalFailure,
)
from engine.telemetry.redaction import NO_SECRETS, Redactor
from engine.telemetry.spans import ReconcileSpan, ResourceRef, SpanIds, reconcile_span

log = logging.getLogger(__name__)

_WARNING_TRIGGERS = frozenset({EFFECT_FAILED, PERMANENT_ERROR, GAVE_UP})


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
        self._effects = EffectActions(deps, self._kind)

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
        redactor = (
            NO_SECRETS  # nothing is recorded: skip walking the object
            if isinstance(deps.tracer, trace.NoOpTracer)
            else Redactor.from_object(entry.obj, deps.operator.secret_fields)
        )
        # the previous reconcile in this process, else the newest one the journal holds
        link = self._follows.get(stream) or await deps.states.journaled_link(stream)
        follows = (link,) if link is not None else ()
        began = deps.clock.monotonic()
        with reconcile_span(deps.tracer, ref, follows=follows, redactor=redactor) as span:
            if span.ids is not None:
                self._follows[stream] = span.ids
            try:
                outcome = await self._passes(key, stream, entry.uid, span)
            except ReconcileStopped as stop:
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
            await append_traced(
                deps.journal,
                stream,
                ev.illegal_trigger(state=state.state, trigger=trigger, message=str(illegal)),
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
        position = await append_traced(deps.journal, stream, event)
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
