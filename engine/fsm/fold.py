"""fold: the state of a resource from its journal records (pure, deterministic).

Unknown event types are skipped (forward compatibility: a newer engine may add types);
a known type with a newer schema, a malformed payload, an out-of-order record or a
transition the table refuses stops the fold with `FoldError` rather than mis-fold.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.fsm import events as ev
from engine.fsm.errors import FoldError, FsmError
from engine.fsm.key import PROVISION, parse_key
from engine.fsm.machine import next_state
from engine.fsm.state import (
    FAILED_OUTCOME,
    PENDING_OUTCOME,
    SUCCEEDED,
    EffectRecord,
    ResourceState,
    evolve_effect,
    evolve_state,
    from_snapshot,
    interned_state,
)
from engine.fsm.table import DRIFT_DETECTED, EFFECT_FAILED, FAILED, HEALING, PROVISIONED, READY
from engine.journal.record import Record, Snapshot

INITIAL = ResourceState()
_HEALABLE = (READY, FAILED)


def fold(records: Iterable[Record], *, snapshot: Snapshot | None = None) -> ResourceState:
    """The state after `records` (one stream, in version order), starting from `snapshot`.

    Records at or below the snapshot's version are skipped, so a caller may pass the
    whole stream or only its tail. Errors: `FoldError`.
    """
    state = from_snapshot(snapshot.state) if snapshot is not None else INITIAL
    for record in records:
        if record.stream_version > state.version:
            state = apply(state, record)
    return state


def apply(state: ResourceState, record: Record) -> ResourceState:
    """The state after one more record: the live engine's step, and fold's.

    Errors: `FoldError` when `record` is not the stream's next one or cannot be folded.
    """
    if record.stream_version <= state.version:
        raise FoldError(
            record.position,
            f"record version {record.stream_version} is not after the folded {state.version}",
        )
    # each branch makes one copy of the state (the fold's hot path: see evolve_state)
    version = record.stream_version
    kind = record.type
    if kind == ev.OBSERVED:
        return _observed(state, record, version)
    if kind == ev.TRANSITION_TAKEN:
        return _transition(state, record, version)
    if kind in ev.EFFECT_TYPES:
        return _effect(state, record, version)
    if kind == ev.HEALING_APPLIED:
        ev.check_schema(record)
        # only Ready and Failed take the `healing` trigger; elsewhere the supervisor heals
        # by re-driving (Provisioning, Finalizing) and the record is a note, not a request
        requested = state.healing_requested or state.state in _HEALABLE
        return evolve_state(state, {"version": version, "healing_requested": requested})
    if kind in ev.EVENT_TYPES:
        ev.check_schema(record)
    # a known type without bearing on state, or a type from a newer engine
    return evolve_state(state, {"version": version})


def _observed(state: ResourceState, record: Record, version: int) -> ResourceState:
    obs = ev.parse_observation(record)
    if state.uid and obs.uid != state.uid:
        raise FoldError(record.position, f"uid {obs.uid!r} in the stream of {state.uid!r}")
    changes: dict[str, Any] = {
        "version": version,
        "uid": obs.uid,
        "has_finalizer": obs.has_finalizer,
        "deletion_requested": obs.deletion_requested or not obs.exists,
    }
    if obs.generation < state.generation:
        # an older generation arriving late: its spec is not the newest
        return evolve_state(state, changes)
    if obs.generation > state.generation:
        changes["generation"] = obs.generation
        changes["round"] = 0
        changes["effects"] = tuple(
            r
            for r in state.effects
            if r.outcome == PENDING_OUTCOME or r.generation >= obs.generation
        )
    changes["spec_digest"] = obs.spec_digest
    changes["resource_version"] = obs.resource_version
    return evolve_state(state, changes)


def _transition(state: ResourceState, record: Record, version: int) -> ResourceState:
    facts = ev.parse_transition(record)
    if facts.source != state.state:
        raise FoldError(
            record.position, f"transition from {facts.source!r} but the state is {state.state!r}"
        )
    try:
        dest = next_state(facts.source, facts.trigger)
    except FsmError as bad:
        raise FoldError(record.position, str(bad)) from None
    if dest != facts.dest:
        raise FoldError(
            record.position, f"{facts.trigger!r} leads to {dest!r}, the journal says {facts.dest!r}"
        )
    changes = _transition_changes(
        state,
        dest=dest,
        trigger=facts.trigger,
        generation=facts.generation,
        effect_key=facts.effect_key,
        attempt=facts.attempt,
    )
    changes["version"] = version
    return evolve_state(state, changes)


def after_transition(
    state: ResourceState,
    *,
    trigger: str,
    generation: int,
    effect_key: str | None = None,
    attempt: int | None = None,
) -> ResourceState:
    """The state once `TransitionTaken(trigger, generation, ...)` is folded; decide uses it
    to look one step ahead. Errors: `IllegalTransition`, `UnknownState`."""
    dest = next_state(state.state, trigger)
    changes = _transition_changes(
        state,
        dest=dest,
        trigger=trigger,
        generation=generation,
        effect_key=effect_key,
        attempt=attempt,
    )
    return evolve_state(state, changes)


def _transition_changes(
    state: ResourceState,
    *,
    dest: str,
    trigger: str,
    generation: int,
    effect_key: str | None,
    attempt: int | None,
) -> dict[str, Any]:
    changes: dict[str, Any] = {"state": interned_state(dest), "observed_generation": generation}
    if trigger in (DRIFT_DETECTED, HEALING):
        changes["round"] = state.round + 1
    if trigger == HEALING:
        changes["healing_requested"] = False
    if trigger == PROVISIONED:
        changes["last_error"] = None
    if trigger == EFFECT_FAILED and effect_key is not None:
        changes["acknowledged_failure"] = f"{effect_key}#{attempt}"
    return changes


def _effect(state: ResourceState, record: Record, version: int) -> ResourceState:
    fact = ev.parse_effect(record)
    current = state.effect(fact.key)
    is_new = current is None
    if current is None:
        if record.type != ev.EFFECT_STARTED:
            raise FoldError(record.position, f"{record.type} for {fact.key!r} that never started")
        parts = parse_key(fact.key)
        current = EffectRecord(
            key=fact.key, name=fact.name, generation=-1 if parts is None else parts.generation
        )
    changes: dict[str, Any] = {"version": version}
    if record.type == ev.EFFECT_STARTED:
        updated = evolve_effect(
            current,
            {
                "attempts": max(current.attempts + 1, fact.attempt),
                "outcome": PENDING_OUTCOME,
                "retry_at": None,
            },
        )
        if fact.name == PROVISION:
            changes["cleanup_needed"] = True
    elif record.type == ev.EFFECT_SUCCEEDED:
        updated = evolve_effect(
            current, {"outcome": SUCCEEDED, "last_error": None, "retry_at": None}
        )
    elif record.type == ev.EFFECT_FAILED:
        error = f"{fact.error_class}: {fact.message}"
        updated = evolve_effect(
            current,
            {
                "outcome": FAILED_OUTCOME,
                "retryable": fact.retryable,
                "gave_up": fact.gave_up,
                "last_error": error,
            },
        )
        changes["last_error"] = error
    else:  # RetryScheduled
        updated = evolve_effect(current, {"retry_at": record.at.timestamp() + fact.delay})
    if is_new:
        changes["effects"] = (*state.effects, updated)
    else:
        changes["effects"] = tuple(updated if r.key == fact.key else r for r in state.effects)
    return evolve_state(state, changes)
