"""The folded state of one resource: compact, immutable, and snapshot-able as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from engine.fsm.errors import FoldError, UnknownState
from engine.fsm.table import PENDING, STATES

PENDING_OUTCOME: Final = "pending"
SUCCEEDED: Final = "succeeded"
FAILED_OUTCOME: Final = "failed"
_OUTCOMES: Final = {o: o for o in (PENDING_OUTCOME, SUCCEEDED, FAILED_OUTCOME)}
_STATES: Final = {s: s for s in STATES}

SNAPSHOT_FORMAT: Final = 1
_OPTIONAL: Final = frozenset({"round_floor"})
"""Fields a snapshot may lack (0 then): added after the format, written only when set."""


def interned_state(name: str) -> str:
    """The table's own string for state `name` (one copy per process). Errors: `UnknownState`."""
    try:
        return _STATES[name]
    except KeyError:
        raise UnknownState(name) from None


@dataclass(frozen=True)
class EffectRecord:
    """What the journal says about one effect key.

    `attempts` counts `EffectStarted` records (a crash-interrupted attempt counts);
    `outcome` is pending (started, no outcome: in flight or interrupted), succeeded or
    failed; `retry_at` (POSIX seconds) is set by `RetryScheduled` after a retryable failure.
    """

    key: str
    name: str
    generation: int
    attempts: int = 0
    outcome: str = PENDING_OUTCOME
    retryable: bool = True
    gave_up: bool = False
    last_error: str | None = None
    retry_at: float | None = None

    @property
    def is_permanent_failure(self) -> bool:
        """Failed and not to be retried under this key (permanent error or gave up)."""
        return self.outcome == FAILED_OUTCOME and (self.gave_up or not self.retryable)


@dataclass(frozen=True)
class ResourceState:
    """The state of one resource, folded from its journal stream (see `fold`).

    Fields: `state` (a table state, interned); `version` (the stream version folded up
    to); `generation` (newest generation observed); `observed_generation` (the generation
    the last transition decided about, i.e. status.observedGeneration); `round` (the
    provisioning round within `generation`: drift repairs and healings each start one);
    `round_floor` (the round a new generation starts at: 0, or after a restore the stream
    version of the restoring observation, above every round the stream used before, so
    the generation numbers a restored object uses again get keys of their own; the
    finalize key's round);
    `effects` (per key, current generation and anything still in flight);
    `has_finalizer`/`deletion_requested` (the finalizer view of the last observation);
    `cleanup_needed` (provisioning ever started, so finalizing must clean up);
    `healing_requested` (a `HealingApplied` not yet acted on); `acknowledged_failure`
    (`key#attempt` of the last failure an `effect_failed` transition took note of).
    """

    state: str = PENDING
    version: int = 0
    uid: str = ""
    generation: int = 0
    observed_generation: int = 0
    spec_digest: str = ""
    resource_version: str = ""
    round: int = 0
    round_floor: int = 0
    effects: tuple[EffectRecord, ...] = ()
    has_finalizer: bool = False
    deletion_requested: bool = False
    cleanup_needed: bool = False
    healing_requested: bool = False
    acknowledged_failure: str | None = None
    last_error: str | None = None

    def effect(self, key: str) -> EffectRecord | None:
        """The record of `key`, if the folded history has one."""
        for record in self.effects:
            if record.key == key:
                return record
        return None

    @property
    def pending_effects(self) -> tuple[EffectRecord, ...]:
        """Effects started with no recorded outcome: in flight, or cut off by a crash."""
        return tuple(r for r in self.effects if r.outcome == PENDING_OUTCOME)

    @property
    def retry_at(self) -> float | None:
        """The earliest retry deadline among failed, retryable effects (POSIX seconds)."""
        deadlines = [
            r.retry_at
            for r in self.effects
            if r.retry_at is not None and r.outcome == FAILED_OUTCOME and not r.is_permanent_failure
        ]
        return min(deadlines) if deadlines else None


_new = object.__new__
_set = object.__setattr__
_EFFECT_DEFAULTS: Final = {
    f.name: f.default for f in fields(EffectRecord) if f.name not in ("key", "name", "generation")
}
"""The defaults of every `EffectRecord` field but its key, name and generation."""
# Both classes keep their fields in an instance `__dict__` (no slots): a copy with some
# fields changed is then one dict copy and update in C, the fold's hot path (a slotted
# copy sets every field through `object.__setattr__`, several times slower).


def evolve_state(state: ResourceState, changes: Mapping[str, Any]) -> ResourceState:
    """`dataclasses.replace(state, **changes)`, several times faster (fold's hot path).

    Assumption: `changes` names fields of `ResourceState` with values of their types
    (fold's own callers; there is no `__post_init__` to run).
    """
    values = state.__dict__.copy()
    values.update(changes)
    new: ResourceState = _new(ResourceState)
    _set(new, "__dict__", values)
    return new


def with_version(state: ResourceState, version: int) -> ResourceState:
    """`evolve_state(state, {"version": version})`: a record that changes nothing else."""
    values = state.__dict__.copy()
    values["version"] = version
    new: ResourceState = _new(ResourceState)
    _set(new, "__dict__", values)
    return new


def new_effect(key: str, name: str, generation: int) -> EffectRecord:
    """`EffectRecord(key, name, generation)`, its instance dict set at once (a frozen
    dataclass's `__init__` sets each field through `object.__setattr__`)."""
    new: EffectRecord = _new(EffectRecord)
    _set(new, "__dict__", {"key": key, "name": name, "generation": generation, **_EFFECT_DEFAULTS})
    return new


def evolve_effect(record: EffectRecord, changes: Mapping[str, Any]) -> EffectRecord:
    """`dataclasses.replace(record, **changes)`, faster; as `evolve_state`."""
    values = record.__dict__.copy()
    values.update(changes)
    new: EffectRecord = _new(EffectRecord)
    _set(new, "__dict__", values)
    return new


def to_snapshot(state: ResourceState) -> dict[str, Any]:
    """A JSON-ready mapping of `state`, for `Journal.save_snapshot`."""
    data: dict[str, Any] = {f.name: getattr(state, f.name) for f in fields(state)}
    if not state.round_floor:
        del data["round_floor"]  # never restored: the snapshot as before the field existed
    data["effects"] = [{f.name: getattr(r, f.name) for f in fields(r)} for r in state.effects]
    data["format"] = SNAPSHOT_FORMAT
    return data


def from_snapshot(data: Mapping[str, Any]) -> ResourceState:
    """The state a snapshot holds. Errors: `FoldError` for a newer or malformed snapshot."""
    if data.get("format") != SNAPSHOT_FORMAT:
        raise FoldError(None, f"snapshot format {data.get('format')!r} is not {SNAPSHOT_FORMAT}")
    try:
        effects = tuple(
            EffectRecord(**{**r, "outcome": _OUTCOMES[r["outcome"]]}) for r in data["effects"]
        )
        values = {
            f.name: data[f.name]
            for f in fields(ResourceState)
            if f.name != "effects" and (f.name in data or f.name not in _OPTIONAL)
        }
        values["state"] = interned_state(values["state"])
        return ResourceState(**values, effects=effects)
    except (KeyError, TypeError, UnknownState) as bad:
        raise FoldError(None, f"malformed snapshot: {bad}") from None
