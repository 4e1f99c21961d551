"""fold: the state of a resource from its journal records (pure, deterministic).

Unknown event types are skipped (forward compatibility: a newer engine may add types);
a known type with a newer schema, a malformed payload, an out-of-order record or a
transition the table refuses stops the fold with `FoldError` rather than mis-fold.

Each event type has one step (`STEPS`, keyed by the type string): it checks the payload
fields it relies on, exactly as the parsers of `engine.fsm.events` do (falling back to
them, for their error, when a field is not of the plain JSON type), and builds the new
state once. A new event type plugs in with one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from engine.fsm import events as ev
from engine.fsm.errors import FoldError, FsmError
from engine.fsm.key import PROVISION, key_generation
from engine.fsm.machine import destination, next_state
from engine.fsm.observation import Observation
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
    new_effect,
    with_version,
)
from engine.fsm.table import (
    DELETED,
    DRIFT_DETECTED,
    EFFECT_FAILED,
    FAILED,
    HEALING,
    PENDING,
    PROVISIONED,
    READY,
)
from engine.journal.record import Record, Snapshot

INITIAL = ResourceState()
_HEALABLE = (READY, FAILED)

Step = Callable[[ResourceState, Record, int], ResourceState]
"""One record's step: (the state before, the record, its stream version) → the state after."""


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
    version = record.stream_version
    if version <= state.version:
        raise FoldError(
            record.position,
            f"record version {version} is not after the folded {state.version}",
        )
    return STEPS.get(record.type, _skipped)(state, record, version)


def _skipped(state: ResourceState, record: Record, version: int) -> ResourceState:
    # a type from a newer engine: forward compatible, it has no bearing here
    return with_version(state, version)


def _noted(state: ResourceState, record: Record, version: int) -> ResourceState:
    # a known type without bearing on state
    if record.schema > ev.SCHEMA:
        ev.check_schema(record)
    return with_version(state, version)


def _healing_applied(state: ResourceState, record: Record, version: int) -> ResourceState:
    if record.schema > ev.SCHEMA:
        ev.check_schema(record)
    # only Ready and Failed take the `healing` trigger; elsewhere the supervisor heals
    # by re-driving (Provisioning, Finalizing) and the record is a note, not a request
    requested = state.healing_requested or state.state in _HEALABLE
    return evolve_state(state, {"version": version, "healing_requested": requested})


def _observed(state: ResourceState, record: Record, version: int) -> ResourceState:
    data = record.data
    get = data.get
    uid, generation = get("uid"), get("generation")
    exists, deleting = get("exists"), get("deletion_requested")
    finalizer, restored = get("has_finalizer"), get("restored")
    phase, seen, reason = (
        get("status_phase"),
        get("status_observed_generation"),
        get("status_reason"),
    )
    if not (
        record.schema <= ev.SCHEMA
        and type(uid) is str
        and type(generation) is int
        and type(get("resource_version")) is str
        and type(get("spec_digest")) is str
        and type(exists) is bool
        and type(deleting) is bool
        and type(finalizer) is bool
        and type(get("child_drift")) is bool
        and (phase is None or type(phase) is str)
        and (seen is None or type(seen) is int)
        and (reason is None or type(reason) is str)
        and (restored is None or type(restored) is bool)
    ):
        # not the plain JSON types: the parser raises the error naming the field, or
        # accepts what it accepts (a subclass), and its values are used
        obs = ev.parse_observation(record)
        uid, generation = obs.uid, obs.generation
        exists, deleting, finalizer = obs.exists, obs.deletion_requested, obs.has_finalizer
        restored = obs.restored
        data = {"resource_version": obs.resource_version, "spec_digest": obs.spec_digest}
    if state.uid and uid != state.uid:
        raise FoldError(record.position, f"uid {uid!r} in the stream of {state.uid!r}")
    changes: dict[str, Any] = {
        "version": version,
        "uid": uid,
        "has_finalizer": finalizer,
        "deletion_requested": deleting or not exists,
    }
    if restored:
        return evolve_state(state, _restored(state, changes, generation, version, data))
    if generation < state.generation:
        # an older generation arriving late: its spec is not the newest
        return evolve_state(state, changes)
    if generation > state.generation:
        changes["generation"] = generation
        changes["round"] = state.round_floor
        changes["effects"] = tuple(
            r for r in state.effects if r.outcome == PENDING_OUTCOME or r.generation >= generation
        )
    changes["spec_digest"] = data["spec_digest"]
    changes["resource_version"] = data["resource_version"]
    return evolve_state(state, changes)


def behind_journal(state: ResourceState, observation: Observation) -> bool:
    """Whether a *listed* object is behind what the journal folded of it (pure): same
    uid, live and not being deleted, and either of an older generation or on a stream
    that is Deleted. An API server never goes back by itself, so a list showing this
    was restored from a backup; its observation is journaled `restored` (a watch event
    of an older generation stays a late one: ignored, E2)."""
    if not state.uid or state.uid != observation.uid:
        return False
    if not observation.exists or observation.deletion_requested:
        return False
    return state.state == DELETED or observation.generation < state.generation


def _restored(
    state: ResourceState,
    changes: dict[str, Any],
    generation: int,
    version: int,
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """The changes of an observation marked `restored` (the API server went back behind
    the journal: an older generation, or a Deleted object live again).

    A new round of keys starts at the record's stream version: every round the stream
    used before started at a transition before this record, so each is below it, and
    the generation numbers the object goes through again get keys of their own. An older
    generation is provisioned again (observed_generation below it: `spec_changed`); a
    Deleted stream starts a new life at Pending (its object is back, not being deleted).
    Effect records are kept (their keys are other keys; one in flight still ends)."""
    changes.update(
        generation=generation,
        round=version,
        round_floor=version,
        spec_digest=data["spec_digest"],
        resource_version=data["resource_version"],
        observed_generation=min(state.observed_generation, generation - 1),
    )
    if state.state == DELETED:
        changes.update(
            state=PENDING,
            observed_generation=0,
            cleanup_needed=False,
            healing_requested=False,
            acknowledged_failure=None,
            last_error=None,
        )
    return changes


def _transition(state: ResourceState, record: Record, version: int) -> ResourceState:
    data = record.data
    get = data.get
    source, dest, trigger = get("from"), get("to"), get("trigger")
    generation, effect_key, attempt = get("generation"), get("effect_key"), get("attempt")
    if not (
        record.schema <= ev.SCHEMA
        and type(source) is str
        and type(dest) is str
        and type(trigger) is str
        and type(generation) is int
        and (effect_key is None or type(effect_key) is str)
        and (attempt is None or type(attempt) is int)
    ):
        facts = ev.parse_transition(record)  # the error naming the field, or its values
        source, dest, trigger = facts.source, facts.dest, facts.trigger
        generation, effect_key, attempt = facts.generation, facts.effect_key, facts.attempt
    if source != state.state:
        raise FoldError(
            record.position, f"transition from {source!r} but the state is {state.state!r}"
        )
    try:
        found = destination(source, trigger)
    except FsmError as bad:
        raise FoldError(record.position, str(bad)) from None
    if found != dest:
        raise FoldError(
            record.position, f"{trigger!r} leads to {found!r}, the journal says {dest!r}"
        )
    changes = _transition_changes(
        state,
        dest=found,
        trigger=trigger,
        generation=generation,
        effect_key=effect_key,
        attempt=attempt,
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


def _effect_facts(record: Record) -> tuple[str, str, int]:
    """The key, name and attempt of an effect record, checked as `ev.parse_effect` does."""
    get = record.data.get
    key, attempt, name = get("key"), get("attempt"), get("name")
    if (
        record.schema <= ev.SCHEMA
        and type(key) is str
        and type(attempt) is int
        and type(name) is str
    ):
        return key, name, attempt
    fact = ev.parse_effect(record)  # the error naming the field, or its values
    return fact.key, fact.name, fact.attempt


def _effect_index(state: ResourceState, key: str) -> int:
    """Where `key`'s record is in `state.effects`, or -1."""
    for index, effect in enumerate(state.effects):
        if effect.key == key:
            return index
    return -1


def _with_effect(
    state: ResourceState, index: int, updated: EffectRecord, changes: dict[str, Any]
) -> ResourceState:
    """The state with effect `index` (-1: a new one, appended) replaced by `updated`."""
    effects = state.effects
    if index < 0:
        changes["effects"] = (*effects, updated)
    else:
        changes["effects"] = (*effects[:index], updated, *effects[index + 1 :])
    return evolve_state(state, changes)


def _started_effect(state: ResourceState, record: Record, key: str) -> tuple[int, EffectRecord]:
    """The index and record of `key`; Errors: `FoldError` when it never started."""
    index = _effect_index(state, key)
    if index < 0:
        raise FoldError(record.position, f"{record.type} for {key!r} that never started")
    return index, state.effects[index]


def _effect_started(state: ResourceState, record: Record, version: int) -> ResourceState:
    key, name, attempt = _effect_facts(record)
    index = _effect_index(state, key)
    if index < 0:
        generation = key_generation(key)
        current = new_effect(key, name, -1 if generation is None else generation)
    else:
        current = state.effects[index]
    updated = evolve_effect(
        current,
        {
            "attempts": max(current.attempts + 1, attempt),
            "outcome": PENDING_OUTCOME,
            "retry_at": None,
        },
    )
    changes: dict[str, Any] = {"version": version}
    if name == PROVISION:
        changes["cleanup_needed"] = True
    return _with_effect(state, index, updated, changes)


def _effect_succeeded(state: ResourceState, record: Record, version: int) -> ResourceState:
    key, _name, _attempt = _effect_facts(record)
    index, current = _started_effect(state, record, key)
    updated = evolve_effect(current, {"outcome": SUCCEEDED, "last_error": None, "retry_at": None})
    return _with_effect(state, index, updated, {"version": version})


def _effect_failed(state: ResourceState, record: Record, version: int) -> ResourceState:
    fact = ev.parse_effect(record)
    index, current = _started_effect(state, record, fact.key)
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
    return _with_effect(state, index, updated, {"version": version, "last_error": error})


def _retry_scheduled(state: ResourceState, record: Record, version: int) -> ResourceState:
    fact = ev.parse_effect(record)
    index, current = _started_effect(state, record, fact.key)
    updated = evolve_effect(current, {"retry_at": record.at.timestamp() + fact.delay})
    return _with_effect(state, index, updated, {"version": version})


STEPS: Final[Mapping[str, Step]] = {
    **{kind: _noted for kind in ev.EVENT_TYPES},
    ev.OBSERVED: _observed,
    ev.TRANSITION_TAKEN: _transition,
    ev.EFFECT_STARTED: _effect_started,
    ev.EFFECT_SUCCEEDED: _effect_succeeded,
    ev.EFFECT_FAILED: _effect_failed,
    ev.RETRY_SCHEDULED: _retry_scheduled,
    ev.HEALING_APPLIED: _healing_applied,
}
"""The step of each known event type; a type not here is skipped (`_skipped`). A new
type adds its step here (and its parser to `engine.fsm.events`)."""
