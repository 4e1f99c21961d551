"""decide: the trigger to fire and the effects to run, from folded state and observation.

Pure: no I/O, no clock of its own (`now` is an argument), the same answer for the same
inputs, so replay re-derives every decision. Each branch is labelled in `Decision.rule`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from engine.fsm.decision import (
    AddFinalizer,
    Decision,
    Effect,
    PatchStatus,
    RemoveFinalizer,
    RunFinalize,
    RunProvision,
)
from engine.fsm.fold import after_transition
from engine.fsm.key import FINALIZE, PROVISION, effect_key, parse_key
from engine.fsm.observation import Observation
from engine.fsm.state import FAILED_OUTCOME, SUCCEEDED, EffectRecord, ResourceState
from engine.fsm.table import (
    DELETED,
    DELETION_REQUESTED,
    DRIFT_DETECTED,
    EFFECT_FAILED,
    FAILED,
    FINALIZED,
    FINALIZING,
    GAVE_UP,
    HEALING,
    OBSERVED_LIVE,
    PENDING,
    PERMANENT_ERROR,
    PROVISIONED,
    PROVISIONING,
    READY,
    SPEC_CHANGED,
)


@dataclass(frozen=True, slots=True)
class DecidePolicy:
    """Tunables of decide. `resync_after`: seconds before a Ready resource is looked at
    again with nothing new observed (the periodic resync). `hold_finalizer`: whether the
    engine puts its finalizer on a resource before provisioning it (False when deleting
    one needs nothing of the engine: the garbage collector removes its owned children)."""

    resync_after: float = 600.0
    hold_finalizer: bool = True


DEFAULT_POLICY = DecidePolicy()


def decide(
    state: ResourceState,
    observation: Observation,
    now: datetime,
    *,
    policy: DecidePolicy = DEFAULT_POLICY,
) -> Decision:
    """The next step for one resource.

    Covers: first observation (Pending), engine restart (an effect in flight resumes
    before anything else), spec change (generation above observedGeneration), child
    drift, healing, periodic resync (Ready: status check and `requeue_after`), deletion
    requested (or the object gone), and effect outcomes (success, retryable failure with
    its backoff deadline, permanent failure, gave up).

    Guarantees: at most one trigger, legal in `state.state`; when a trigger is set, the
    effects are those the state after it asks for, so one decision does one step; an
    observation of an older generation than already folded is ignored (idle).
    """
    first = _rules(state, observation, now, policy)
    if first.trigger is None:
        return first
    after = after_transition(
        state,
        trigger=first.trigger,
        generation=observation.generation,
        effect_key=first.effect_key,
        attempt=first.attempt,
    )
    follow = _rules(after, observation, now, policy)
    if follow.trigger is not None:
        return first  # the next step is another transition: one trigger per decision
    return replace(first, effects=follow.effects, requeue_after=follow.requeue_after)


def _rules(state: ResourceState, obs: Observation, now: datetime, policy: DecidePolicy) -> Decision:
    if state.state == DELETED:
        return Decision("deleted: the stream is closed")
    if obs.exists and obs.generation < state.generation:
        return Decision("stale observation: an older generation than already seen")
    resume = _resume(state)
    if resume is not None:
        return resume
    if (obs.deletion_requested or not obs.exists) and state.state != FINALIZING:
        return Decision("deletion requested", trigger=DELETION_REQUESTED)
    if state.state == PENDING:
        return Decision("first observation", trigger=OBSERVED_LIVE)
    if state.state == PROVISIONING:
        return _provisioning(state, obs, now, policy)
    if state.state in (READY, FAILED):
        return _settled(state, obs, policy)
    return _finalizing(state, obs, now)


def _resume(state: ResourceState) -> Decision | None:
    """An effect of the current state started and has no outcome: run it again, same key."""
    for record in state.pending_effects:
        parts = parse_key(record.key)
        if parts is None:
            continue
        if state.state == PROVISIONING and record.name == PROVISION:
            run: Effect = RunProvision(record.key, parts.generation, parts.n, resume=True)
            return Decision("resume the in-flight provision", effects=(run,))
        if state.state == FINALIZING and record.name == FINALIZE:
            run = RunFinalize(record.key, parts.generation, parts.n, resume=True)
            return Decision("resume the in-flight finalize", effects=(run,))
    return None


def _round(state: ResourceState, obs: Observation) -> int:
    return state.round if obs.generation == state.generation else state.round_floor


def _status(
    obs: Observation, phase: str, generation: int, reason: str | None
) -> tuple[Effect, ...]:
    if not obs.exists:
        return ()
    seen = (obs.status_phase, obs.status_observed_generation, obs.status_reason)
    if seen == (phase, generation, reason):
        return ()
    return (PatchStatus(phase, generation, reason),)


def _waiting(record: EffectRecord, now: datetime) -> float | None:
    """Seconds until `record` may be retried, or None when it may be retried now."""
    if record.retry_at is None:
        return None
    left = record.retry_at - now.timestamp()
    return left if left > 0 else None


def _provisioning(
    state: ResourceState, obs: Observation, now: datetime, policy: DecidePolicy
) -> Decision:
    n = _round(state, obs)
    key = effect_key(obs.uid, obs.generation, PROVISION, n)
    record = state.effect(key)
    needed = policy.hold_finalizer and not obs.has_finalizer
    finalizer: tuple[Effect, ...] = (AddFinalizer(),) if needed else ()
    run = RunProvision(key, obs.generation, n)
    if record is None:
        status = _status(obs, PROVISIONING, obs.generation, None)
        return Decision("provision", effects=(*finalizer, *status, run))
    if record.outcome == SUCCEEDED:
        return Decision("provision succeeded", trigger=PROVISIONED)
    if record.is_permanent_failure:
        trigger = GAVE_UP if record.gave_up else PERMANENT_ERROR
        return Decision("provision failed for good", trigger=trigger)
    # a retryable failure
    status = _status(obs, PROVISIONING, obs.generation, record.last_error)
    wait = _waiting(record, now)
    if wait is None:
        return Decision("retry provision", effects=(*finalizer, *status, run))
    if state.acknowledged_failure != f"{key}#{record.attempts}":
        return Decision(
            "provision failed, retry after backoff",
            trigger=EFFECT_FAILED,
            effect_key=key,
            attempt=record.attempts,
        )
    return Decision("wait for the retry deadline", effects=status, requeue_after=wait)


def _settled(state: ResourceState, obs: Observation, policy: DecidePolicy) -> Decision:
    if state.healing_requested:
        return Decision("healing requested", trigger=HEALING)
    if obs.generation > state.observed_generation:
        return Decision("spec changed", trigger=SPEC_CHANGED)
    if state.state == READY:
        if obs.child_drift:
            return Decision("child drift", trigger=DRIFT_DETECTED)
        status = _status(obs, READY, state.observed_generation, None)
        return Decision("resync: in sync", effects=status, requeue_after=policy.resync_after)
    status = _status(obs, FAILED, state.observed_generation, state.last_error)
    return Decision("failed: waits for a spec change or healing", effects=status)


def _finalizing(state: ResourceState, obs: Observation, now: datetime) -> Decision:
    generation = state.observed_generation
    key = effect_key(obs.uid, generation, FINALIZE, state.round_floor)
    record = state.effect(key)
    # Cleanup is needed when this journal saw provisioning start, or when the object
    # carries the engine's finalizer: it is added before the first effect (R9), so its
    # presence is cluster state that a new leader or a fresh journal can rely on.
    needs_cleanup = state.cleanup_needed or (obs.exists and obs.has_finalizer)
    if needs_cleanup and (record is None or record.outcome != SUCCEEDED):
        run = RunFinalize(key, generation, state.round_floor)
        if record is None:
            return Decision("finalize", effects=(*_status(obs, FINALIZING, generation, None), run))
        status = _status(obs, FINALIZING, generation, record.last_error)
        if record.outcome == FAILED_OUTCOME and record.is_permanent_failure:
            return Decision("finalize failed for good: needs attention", effects=status)
        wait = _waiting(record, now)
        if wait is None:
            return Decision("retry finalize", effects=(*status, run))
        return Decision("wait to retry finalize", effects=status, requeue_after=wait)
    if obs.exists and obs.has_finalizer:
        return Decision("cleanup done: remove the finalizer", effects=(RemoveFinalizer(),))
    return Decision("finalizer gone", trigger=FINALIZED)
