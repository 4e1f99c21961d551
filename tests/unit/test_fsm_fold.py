"""fold: the journal's state equals the state reached live, event by event; snapshots let
a fold start late; unknown types are skipped and malformed history is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.clock import FakeClock
from engine.fsm import (
    FoldError,
    Observation,
    ResourceState,
    allowed_triggers,
    apply,
    fold,
    from_snapshot,
    next_state,
    to_snapshot,
)
from engine.fsm import events as ev
from engine.fsm.fold import behind_journal
from engine.journal.memory import MemoryJournal
from engine.journal.record import NewEvent, Record, Snapshot

STREAM = "g/Kind/ns/name#u1"
START = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = ("u1:1:provision", "u1:2:provision", "u1:2:create:1", "u1:1:finalize", "custom-key")


def record_of(event: NewEvent, version: int, seconds: float) -> Record:
    """The record a live engine holds right after appending `event` (no store round trip)."""
    return Record(
        position=version,
        stream=STREAM,
        stream_version=version,
        type=event.type,
        schema=event.schema,
        at=START + timedelta(seconds=seconds),
        data=event.data,
        idempotency_key=event.idempotency_key,
        trace_id=None,
        span_id=None,
        term=0,
        checksum="",
    )


operations = st.lists(
    st.tuples(
        st.sampled_from(
            ["observe", "transition", "start", "succeed", "fail", "retry", "heal", "other"]
        ),
        st.integers(min_value=0, max_value=10_000),
        st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
    max_size=40,
)


def next_event(state: ResourceState, op: str, n: int) -> NewEvent | None:
    """A valid next event for `state`, chosen by `op` and `n`."""
    key = KEYS[n % len(KEYS)]
    record = state.effect(key)
    if op == "observe":
        obs = Observation(
            uid="u1",
            generation=1 + n % 3,
            resource_version=str(n),
            spec_digest=f"d{n % 3}",
            exists=n % 11 != 0,
            deletion_requested=n % 7 == 0,
            has_finalizer=n % 2 == 0,
            child_drift=n % 5 == 0,
        )
        return ev.observed(obs, watch_event="MODIFIED", spec={"n": n})
    if op == "transition":
        triggers = allowed_triggers(state.state)
        if not triggers:
            return None
        trigger = triggers[n % len(triggers)]
        dest = next_state(state.state, trigger)
        extra: dict[str, Any] = {}
        if trigger == "effect_failed":
            extra = {"effect_key": key, "attempt": n % 4}
        return ev.transition_taken(
            source=state.state, dest=dest, trigger=trigger, generation=n % 4, **extra
        )
    if op == "start":
        return ev.effect_started(key=key, name=key.split(":")[-1], attempt=n % 3)
    if record is None:
        return None  # an outcome needs a start first
    if op == "succeed":
        return ev.effect_succeeded(key=key, name=record.name, attempt=1, result={"n": n})
    if op == "fail":
        return ev.effect_failed(
            key=key,
            name=record.name,
            attempt=record.attempts,
            error_class="Busy",
            retryable=n % 3 != 0,
            gave_up=n % 5 == 0,
            message=f"busy {n}",
        )
    if op == "retry":
        return ev.retry_scheduled(key=key, attempt=record.attempts, delay=n / 7, backoff=n / 9)
    if op == "heal":
        return ev.healing_applied(action="reprovision", reason="stuck")
    return NewEvent(type="SomethingNewer", data={"n": n})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, cut=st.integers(min_value=0, max_value=40))
async def test_fold_of_the_journal_equals_the_live_state(
    ops: list[tuple[str, int, float]], cut: int
) -> None:
    clock = FakeClock(start=START)
    journal = MemoryJournal(clock=clock)
    live = ResourceState()
    snapshot: Snapshot | None = None
    for op, n, step in ops:
        event = next_event(live, op, n)
        if event is None:
            continue
        clock.advance(step)
        await journal.append(STREAM, [event])
        if await journal.stream_version(STREAM) == live.version:
            continue  # a repeated idempotency key: the journal wrote nothing
        live = apply(live, record_of(event, live.version + 1, clock.elapsed))
        if live.version == cut:
            # a snapshot goes through JSON like a stored one
            snapshot = Snapshot(STREAM, live.version, json.loads(json.dumps(to_snapshot(live))))

    records = await journal.read_stream(STREAM)
    assert fold(records) == live
    if snapshot is not None:
        assert fold(records, snapshot=snapshot) == live
        tail = [r for r in records if r.stream_version > snapshot.version]
        assert fold(tail, snapshot=snapshot) == live


def test_unknown_types_are_skipped_but_counted() -> None:
    obs = Observation(uid="u1", generation=1)
    events = [
        ev.observed(obs, watch_event="ADDED", spec={}),
        NewEvent(type="FromTheFuture", data={"x": 1}),
    ]
    state = fold([record_of(e, i, 0) for i, e in enumerate(events, start=1)])
    assert state.version == 2
    assert state.generation == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(NewEvent(type=ev.OBSERVED, data={"uid": "u1"}), id="observed-missing-fields"),
        pytest.param(
            NewEvent(type=ev.TRANSITION_TAKEN, data={"from": "Pending"}), id="transition-partial"
        ),
        pytest.param(
            ev.transition_taken(
                source="Ready", dest="Provisioning", trigger="spec_changed", generation=1
            ),
            id="transition-from-the-wrong-state",
        ),
        pytest.param(
            ev.transition_taken(
                source="Pending", dest="Ready", trigger="observed_live", generation=1
            ),
            id="transition-to-the-wrong-state",
        ),
        pytest.param(
            ev.transition_taken(
                source="Pending", dest="Deleted", trigger="finalized", generation=1
            ),
            id="transition-the-table-refuses",
        ),
        pytest.param(
            ev.effect_succeeded(key="u1:1:x", name="x", attempt=1, result=None),
            id="outcome-without-start",
        ),
        pytest.param(
            NewEvent(
                type=ev.EFFECT_STARTED, data={"key": "k", "name": "x", "attempt": 1}, schema=2
            ),
            id="newer-schema",
        ),
        pytest.param(
            NewEvent(type=ev.STATUS_WRITTEN, data={}, schema=9), id="newer-schema-inert-type"
        ),
    ],
)
def test_malformed_history_is_refused_with_its_position(event: NewEvent) -> None:
    with pytest.raises(FoldError) as refused:
        fold([record_of(event, 1, 0)])
    assert refused.value.position == 1


def test_a_record_folded_twice_is_refused() -> None:
    record = record_of(ev.healing_applied(action="a", reason="r"), 1, 0)
    state = apply(ResourceState(), record)
    with pytest.raises(FoldError, match="not after"):
        apply(state, record)


def test_snapshot_round_trips_and_refuses_other_formats() -> None:
    state = ResourceState(state="Ready", version=4, uid="u1", generation=2)
    assert from_snapshot(json.loads(json.dumps(to_snapshot(state)))) == state
    with pytest.raises(FoldError, match="format"):
        from_snapshot({**to_snapshot(state), "format": 99})
    with pytest.raises(FoldError, match="malformed"):
        from_snapshot({**to_snapshot(state), "state": "Sleeping"})


def test_a_newer_generation_drops_settled_effects_of_older_ones_but_keeps_in_flight() -> None:
    events = [
        ev.observed(Observation(uid="u1", generation=1), watch_event="ADDED", spec={}),
        ev.effect_started(key="u1:1:a", name="a", attempt=1),
        ev.effect_succeeded(key="u1:1:a", name="a", attempt=1, result=None),
        ev.effect_started(key="u1:1:b", name="b", attempt=1),
        ev.observed(Observation(uid="u1", generation=2), watch_event="MODIFIED", spec={}),
    ]
    state = fold([record_of(e, i, 0) for i, e in enumerate(events, start=1)])
    assert [r.key for r in state.effects] == ["u1:1:b"]
    assert state.generation == 2


def _folded(events: list[NewEvent]) -> ResourceState:
    return fold([record_of(e, i, 0) for i, e in enumerate(events, start=1)])


def _ready_at(generation: int) -> list[NewEvent]:
    """A stream that provisioned generations 1 … `generation` (one round each) and is Ready."""
    events: list[NewEvent] = []
    for number in range(1, generation + 1):
        events.append(
            ev.observed(Observation(uid="u1", generation=number), watch_event="ADDED", spec={})
        )
        source = "Pending" if number == 1 else "Ready"
        trigger = "observed_live" if number == 1 else "spec_changed"
        key = f"u1:{number}:provision"
        events += [
            ev.transition_taken(
                source=source, dest="Provisioning", trigger=trigger, generation=number
            ),
            ev.effect_started(key=key, name="provision", attempt=1),
            ev.effect_succeeded(key=key, name="provision", attempt=1, result=None),
            ev.transition_taken(
                source="Provisioning", dest="Ready", trigger="provisioned", generation=number
            ),
        ]
    return events


def test_a_restored_older_generation_starts_a_round_above_every_one_used_before() -> None:
    events = _ready_at(2)
    restored = Observation(uid="u1", generation=1, restored=True)
    events.append(ev.observed(restored, watch_event="MODIFIED", spec={}))
    assert events[-1].data["restored"] is True
    state = _folded(events)
    version = len(events)
    assert (state.generation, state.round, state.round_floor) == (1, version, version)
    assert state.observed_generation == 0  # the restored generation is provisioned again
    # a later spec change (generation 2 again) starts at the floor, not at round 0
    events.append(ev.observed(Observation(uid="u1", generation=2), watch_event="M", spec={}))
    assert _folded(events).round == version
    # the same older generation observed without the mark is a late event: ignored
    older = ev.observed(Observation(uid="u1", generation=1), watch_event="M", spec={})
    late = [*_ready_at(2), older]
    assert (_folded(late).generation, _folded(late).round_floor) == (2, 0)


def test_a_deleted_stream_whose_object_is_restored_starts_a_new_life_at_pending() -> None:
    events = [
        *_ready_at(1),
        ev.observed(Observation(uid="u1", generation=1, exists=False), watch_event="D", spec={}),
        ev.transition_taken(
            source="Ready", dest="Finalizing", trigger="deletion_requested", generation=1
        ),
        ev.transition_taken(source="Finalizing", dest="Deleted", trigger="finalized", generation=1),
    ]
    assert _folded(events).state == "Deleted"
    back = Observation(uid="u1", generation=1, has_finalizer=True, restored=True)
    events.append(ev.observed(back, watch_event="ADDED", spec={}))
    state = _folded(events)
    assert (state.state, state.round_floor, state.deletion_requested) == ("Pending", 9, False)
    assert not state.cleanup_needed


def test_behind_journal_is_an_older_generation_or_a_deleted_stream_live_again() -> None:
    ready = _folded(_ready_at(2))
    live = Observation(uid="u1", generation=1)
    assert behind_journal(ready, live)
    assert not behind_journal(ready, Observation(uid="u1", generation=2))
    assert not behind_journal(ready, Observation(uid="u2", generation=1))
    assert not behind_journal(ready, Observation(uid="u1", generation=1, exists=False))
    assert not behind_journal(ready, Observation(uid="u1", generation=1, deletion_requested=True))
    deleted = ResourceState(state="Deleted", uid="u1", generation=2)
    assert behind_journal(deleted, Observation(uid="u1", generation=2))
    assert not behind_journal(ResourceState(), live)  # nothing journaled: a first observation


def test_a_snapshot_of_a_stream_never_restored_has_no_round_floor_and_loads_without_one() -> None:
    state = ResourceState(state="Ready", version=4, uid="u1", generation=2)
    assert "round_floor" not in to_snapshot(state)
    restored = ResourceState(state="Ready", version=9, uid="u1", round=9, round_floor=9)
    assert from_snapshot(json.loads(json.dumps(to_snapshot(restored)))) == restored
