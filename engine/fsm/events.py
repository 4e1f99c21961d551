"""The journal event types of a resource's lifecycle: names, payload builders, parsers.

One home for the schema, shared by the reconciler, the effect runner, replay and the
supervisor. Type names and payload fields are persisted: add, never rename. Every type
is at schema 1; a parser refuses a newer schema rather than guess (see `FoldError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from engine.fsm.errors import FoldError
from engine.fsm.observation import Observation
from engine.fsm.spec_excerpt import stored_spec
from engine.journal.record import NewEvent, Record

OBSERVED: Final = "Observed"
TRANSITION_TAKEN: Final = "TransitionTaken"
EFFECT_STARTED: Final = "EffectStarted"
EFFECT_SUCCEEDED: Final = "EffectSucceeded"
EFFECT_FAILED: Final = "EffectFailed"
RETRY_SCHEDULED: Final = "RetryScheduled"
STATUS_WRITTEN: Final = "StatusWritten"
STUCK_DETECTED: Final = "StuckDetected"
DEADLOCK_DETECTED: Final = "DeadlockDetected"
HEALING_APPLIED: Final = "HealingApplied"
LEADER_ELECTED: Final = "LeaderElected"
ILLEGAL_TRIGGER: Final = "IllegalTrigger"

EVENT_TYPES: Final = (
    OBSERVED,
    TRANSITION_TAKEN,
    EFFECT_STARTED,
    EFFECT_SUCCEEDED,
    EFFECT_FAILED,
    RETRY_SCHEDULED,
    STATUS_WRITTEN,
    STUCK_DETECTED,
    DEADLOCK_DETECTED,
    HEALING_APPLIED,
    LEADER_ELECTED,
    ILLEGAL_TRIGGER,
)
SCHEMA: Final = 1
"""The payload schema version every builder writes and every parser reads."""

REPEATED_FIELD: Final = "repeated"
"""On an `EffectFailed`: {count, since, skipped}, when the failure is one of a run of
identical failed attempts of which only some are journaled (docs/journal-growth.md)."""

MAX_MESSAGE = 500
"""Error messages are cut to this many characters before they are journaled."""

_T = TypeVar("_T")


# ---- builders ---------------------------------------------------------------------------


def observed(obs: Observation, *, watch_event: str, spec: Mapping[str, Any]) -> NewEvent:
    """`Observed`: what a watch event (ADDED, MODIFIED, DELETED, RESYNC) showed.

    The spec itself is stored when it is small and shallow; a huge or deeply nested one
    as an excerpt (see `stored_spec`), so one odd object cannot bloat the journal.
    """
    data: dict[str, Any] = {
        "watch_event": watch_event,
        "uid": obs.uid,
        "generation": obs.generation,
        "resource_version": obs.resource_version,
        "spec_digest": obs.spec_digest,
        **stored_spec(spec),
        "exists": obs.exists,
        "deletion_requested": obs.deletion_requested,
        "has_finalizer": obs.has_finalizer,
        "child_drift": obs.child_drift,
        "status_phase": obs.status_phase,
        "status_observed_generation": obs.status_observed_generation,
        "status_reason": obs.status_reason,
    }
    if obs.restored:  # only then: every other observation's payload is as it always was
        data["restored"] = True
    return NewEvent(type=OBSERVED, data=data, schema=SCHEMA)


def transition_taken(
    *,
    source: str,
    dest: str,
    trigger: str,
    generation: int,
    effect_key: str | None = None,
    attempt: int | None = None,
) -> NewEvent:
    """`TransitionTaken`: the machine moved `source` → `dest` on `trigger`, deciding about
    `generation`; `effect_key`/`attempt` name the failure an `effect_failed` acknowledges."""
    data: dict[str, Any] = {
        "from": source,
        "to": dest,
        "trigger": trigger,
        "generation": generation,
    }
    if effect_key is not None:
        data["effect_key"] = effect_key
        data["attempt"] = attempt
    return NewEvent(type=TRANSITION_TAKEN, data=data, schema=SCHEMA)


def illegal_trigger(*, state: str, trigger: str, message: str) -> NewEvent:
    """`IllegalTrigger`: decide asked for a trigger the table refuses in `state`."""
    data = {"state": state, "trigger": trigger, "message": message[:MAX_MESSAGE]}
    return NewEvent(type=ILLEGAL_TRIGGER, data=data, schema=SCHEMA)


def effect_started(*, key: str, name: str, attempt: int, term: int | None = None) -> NewEvent:
    """`EffectStarted`: the intent, committed before the call. Repeats once per attempt, so
    it carries no idempotency key (the key is in the payload)."""
    data: dict[str, Any] = {"key": key, "name": name, "attempt": attempt, "term": term}
    return NewEvent(type=EFFECT_STARTED, data=data, schema=SCHEMA)


def effect_succeeded(
    *, key: str, name: str, attempt: int, result: Any, seconds: float | None = None
) -> NewEvent:
    """`EffectSucceeded`: carries the effect key as its idempotency key, so the journal
    holds at most one success per key. `seconds`: how long the call took."""
    data = {"key": key, "name": name, "attempt": attempt, "result": result, "seconds": seconds}
    return NewEvent(type=EFFECT_SUCCEEDED, data=data, schema=SCHEMA, idempotency_key=key)


def effect_failed(
    *,
    key: str,
    name: str,
    attempt: int,
    error_class: str,
    retryable: bool,
    message: str,
    gave_up: bool = False,
    seconds: float | None = None,
    waiting: bool = False,
) -> NewEvent:
    """`EffectFailed`: one failed attempt; `gave_up` marks the last one allowed.

    `waiting` marks an attempt that ended waiting for another resource
    (`DependencyNotReady`): it is not a failure of the effect, so it counts neither
    toward giving up nor toward the backoff. The field is written only when true, so
    the records of real failures keep their earlier form."""
    data: dict[str, Any] = {
        "key": key,
        "name": name,
        "attempt": attempt,
        "error_class": error_class,
        "retryable": retryable,
        "gave_up": gave_up,
        "message": message[:MAX_MESSAGE],
        "seconds": seconds,
    }
    if waiting:
        data["waiting"] = True
    return NewEvent(type=EFFECT_FAILED, data=data, schema=SCHEMA)


def retry_scheduled(*, key: str, attempt: int, delay: float, backoff: float) -> NewEvent:
    """`RetryScheduled`: the next attempt of `key` waits `delay` seconds: the jittered
    `backoff`, or more when the effect asked for a longer wait."""
    data = {"key": key, "attempt": attempt, "delay": delay, "backoff": backoff}
    return NewEvent(type=RETRY_SCHEDULED, data=data, schema=SCHEMA)


def status_written(*, phase: str, observed_generation: int, reason: str | None) -> NewEvent:
    """`StatusWritten`: the status subresource now says this."""
    data = {"phase": phase, "observed_generation": observed_generation, "reason": reason}
    return NewEvent(type=STATUS_WRITTEN, data=data, schema=SCHEMA)


def stuck_detected(*, state: str, seconds: float, reason: str) -> NewEvent:
    """`StuckDetected`: the resource sat in `state` longer than its deadline allows."""
    data = {"state": state, "seconds": seconds, "reason": reason[:MAX_MESSAGE]}
    return NewEvent(type=STUCK_DETECTED, data=data, schema=SCHEMA)


def deadlock_detected(*, cycle: tuple[str, ...]) -> NewEvent:
    """`DeadlockDetected`: the streams of a wait-for cycle, in cycle order."""
    return NewEvent(type=DEADLOCK_DETECTED, data={"cycle": list(cycle)}, schema=SCHEMA)


def healing_applied(*, action: str, reason: str) -> NewEvent:
    """`HealingApplied`: the supervisor asks for a fresh provisioning round (`healing`)."""
    data = {"action": action, "reason": reason[:MAX_MESSAGE]}
    return NewEvent(type=HEALING_APPLIED, data=data, schema=SCHEMA)


def leader_elected(*, holder: str, term: int) -> NewEvent:
    """`LeaderElected`: `holder` leads from fencing `term` on."""
    return NewEvent(type=LEADER_ELECTED, data={"holder": holder, "term": term}, schema=SCHEMA)


# ---- parsers ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EffectOutcome:
    """The parsed payload of `EffectStarted`, `EffectSucceeded`, `EffectFailed` or
    `RetryScheduled` (fields a type does not carry keep their defaults)."""

    type: str
    key: str
    name: str = ""
    attempt: int = 0
    result: Any = None
    error_class: str = ""
    retryable: bool = True
    gave_up: bool = False
    message: str = ""
    delay: float = 0.0
    backoff: float = 0.0
    waiting: bool = False
    repeated: int = 0
    """`EffectFailed` only: the failure's place in a run of identical failures (0: none)."""
    skipped: int = 0
    """`EffectFailed` only: earlier identical failures of the key not journaled."""


def check_schema(record: Record) -> None:
    """Errors: `FoldError` when a known type has a schema newer than this engine reads."""
    if record.schema > SCHEMA:
        raise FoldError(
            record.position,
            f"{record.type} has schema {record.schema}, this engine reads up to {SCHEMA}",
        )


def _get(record: Record, name: str, kind: type[_T], *, optional: bool = False) -> _T:
    value = record.data.get(name)
    if value is None and optional:
        return value  # type: ignore[return-value]
    # bool is an int: refuse it where a number is expected, and the reverse
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        raise FoldError(record.position, f"{record.type} field {name!r} should be {kind.__name__}")
    return value


def parse_observation(record: Record) -> Observation:
    """The `Observation` an `Observed` record holds. Errors: `FoldError`."""
    check_schema(record)
    return Observation(
        uid=_get(record, "uid", str),
        generation=_get(record, "generation", int),
        resource_version=_get(record, "resource_version", str),
        spec_digest=_get(record, "spec_digest", str),
        exists=_get(record, "exists", bool),
        deletion_requested=_get(record, "deletion_requested", bool),
        has_finalizer=_get(record, "has_finalizer", bool),
        child_drift=_get(record, "child_drift", bool),
        status_phase=_get(record, "status_phase", str, optional=True),
        status_observed_generation=_get(record, "status_observed_generation", int, optional=True),
        status_reason=_get(record, "status_reason", str, optional=True),
        restored=_get(record, "restored", bool, optional=True) is True,
    )


@dataclass(frozen=True, slots=True)
class TransitionFacts:
    """The parsed payload of `TransitionTaken`."""

    source: str
    dest: str
    trigger: str
    generation: int
    effect_key: str | None
    attempt: int | None


def parse_transition(record: Record) -> TransitionFacts:
    """The facts a `TransitionTaken` record holds. Errors: `FoldError`."""
    check_schema(record)
    return TransitionFacts(
        source=_get(record, "from", str),
        dest=_get(record, "to", str),
        trigger=_get(record, "trigger", str),
        generation=_get(record, "generation", int),
        effect_key=_get(record, "effect_key", str, optional=True),
        attempt=_get(record, "attempt", int, optional=True),
    )


def parse_effect(record: Record) -> EffectOutcome:
    """The facts of an effect record (started, succeeded, failed, retry). Errors: `FoldError`."""
    check_schema(record)
    key = _get(record, "key", str)
    attempt = _get(record, "attempt", int)
    if record.type == RETRY_SCHEDULED:
        return EffectOutcome(
            type=record.type,
            key=key,
            attempt=attempt,
            delay=_get(record, "delay", float),
            backoff=_get(record, "backoff", float),
        )
    name = _get(record, "name", str)
    if record.type == EFFECT_SUCCEEDED:
        return EffectOutcome(
            type=record.type, key=key, name=name, attempt=attempt, result=record.data.get("result")
        )
    if record.type == EFFECT_FAILED:
        return EffectOutcome(
            type=record.type,
            key=key,
            name=name,
            attempt=attempt,
            error_class=_get(record, "error_class", str),
            retryable=_get(record, "retryable", bool),
            gave_up=_get(record, "gave_up", bool),
            message=_get(record, "message", str),
            waiting=bool(_get(record, "waiting", bool, optional=True)),
            **_repeats(record),
        )
    return EffectOutcome(type=record.type, key=key, name=name, attempt=attempt)


def _repeats(record: Record) -> dict[str, int]:
    repeated = record.data.get(REPEATED_FIELD)
    if repeated is None:
        return {}
    if not isinstance(repeated, Mapping):
        raise FoldError(record.position, f"{record.type} field 'repeated' should be an object")
    out: dict[str, int] = {}
    for name, field in (("count", "repeated"), ("skipped", "skipped")):
        value = repeated.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise FoldError(record.position, f"{record.type} repeated.{name} should be int")
        out[field] = value
    return out


EFFECT_TYPES: Final = (EFFECT_STARTED, EFFECT_SUCCEEDED, EFFECT_FAILED, RETRY_SCHEDULED)
