"""The fold's per-type steps check a payload exactly as the event parsers do (the same
error, naming the same field, or the parser's values), and a transition's destination
is the shared Machine's; a type the engine does not know is skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.fsm import events as ev
from engine.fsm.errors import FoldError, FsmError
from engine.fsm.fold import STEPS, apply
from engine.fsm.key import key_generation, parse_key
from engine.fsm.machine import destination, next_state
from engine.fsm.state import EffectRecord, ResourceState, new_effect
from engine.fsm.table import STATES, TRIGGERS
from engine.journal.record import Record

KEY = "u1:1:provision"
STARTED = ResourceState(
    state="Provisioning",
    version=3,
    uid="u1",
    generation=1,
    effects=(EffectRecord(key=KEY, name="provision", generation=1, attempts=1),),
)
PAYLOADS: dict[str, dict[str, Any]] = {
    ev.OBSERVED: {
        "uid": "u1",
        "generation": 1,
        "resource_version": "7",
        "spec_digest": "d",
        "exists": True,
        "deletion_requested": False,
        "has_finalizer": True,
        "child_drift": False,
        "status_phase": None,
        "status_observed_generation": None,
        "status_reason": None,
    },
    ev.TRANSITION_TAKEN: {
        "from": "Provisioning",
        "to": "Ready",
        "trigger": "provisioned",
        "generation": 1,
    },
    ev.EFFECT_STARTED: {"key": KEY, "name": "provision", "attempt": 2, "term": 1},
    ev.EFFECT_SUCCEEDED: {"key": KEY, "name": "provision", "attempt": 1, "result": None},
    ev.EFFECT_FAILED: {
        "key": KEY,
        "name": "provision",
        "attempt": 1,
        "error_class": "Boom",
        "retryable": True,
        "gave_up": False,
        "message": "m",
        "seconds": 0.1,
    },
    ev.RETRY_SCHEDULED: {"key": KEY, "attempt": 1, "delay": 2.5, "backoff": 2.5},
}
PARSERS = {
    ev.OBSERVED: ev.parse_observation,
    ev.TRANSITION_TAKEN: ev.parse_transition,
    **{kind: ev.parse_effect for kind in ev.EFFECT_TYPES},
}
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(-2, 2, allow_nan=False),
    st.sampled_from(["", "u1", "Provisioning", "provisioned", KEY]),
    st.lists(st.integers(), max_size=1),
)


class Name(str):
    """A `str` subclass: the parsers accept it (isinstance), so the fold must too."""


def record(kind: str, data: dict[str, Any], *, schema: int = 1) -> Record:
    return Record(
        position=4,
        stream="g/Kind/ns/name#u1",
        stream_version=4,
        type=kind,
        schema=schema,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        data=data,
        idempotency_key=None,
        trace_id=None,
        span_id=None,
        term=0,
        checksum="",
    )


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except FsmError as bad:
        return type(bad).__name__, str(bad)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(sorted(PAYLOADS)),
    field=st.integers(0, 11),
    value=ODD_VALUES,
    schema=st.sampled_from([1, 1, 1, 2]),
)
def test_a_step_refuses_what_the_parser_refuses_with_its_error(
    kind: str, field: int, value: Any, schema: int
) -> None:
    data = dict(PAYLOADS[kind])
    name = sorted(data)[field % len(data)]
    data[name] = value
    changed = record(kind, data, schema=schema)
    parsed = outcome(lambda: PARSERS[kind](changed))
    folded = outcome(lambda: apply(STARTED, changed))
    if parsed[0] != "ok":
        assert folded == parsed
    else:  # the parser took it: the step folds it or refuses the history, never the field
        assert folded[0] == "ok" or "field" not in str(folded[1])


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_a_str_subclass_folds_as_the_plain_string(kind: str) -> None:
    plain = record(kind, PAYLOADS[kind])
    odd = record(kind, {k: Name(v) if type(v) is str else v for k, v in PAYLOADS[kind].items()})
    assert apply(STARTED, odd) == apply(STARTED, plain)


def test_an_unknown_type_is_skipped_and_every_known_type_has_its_step() -> None:
    assert set(ev.EVENT_TYPES) <= set(STEPS)
    after = apply(STARTED, record("SomethingNewer", {"any": 1}, schema=9))
    assert after == ResourceState(**{**STARTED.__dict__, "version": 4})


def test_the_fold_destination_is_the_machine_next_state_for_every_pair() -> None:
    pairs = [(s, t) for s in (*STATES, "Unknown") for t in (*TRIGGERS, "unknown")]
    for state, trigger in pairs:
        via_table = outcome(lambda s=state, t=trigger: destination(s, t))
        via_machine = outcome(lambda s=state, t=trigger: next_state(s, t))
        assert via_table == via_machine, (state, trigger)


def test_a_refused_transition_names_the_table_error() -> None:
    data = {**PAYLOADS[ev.TRANSITION_TAKEN], "trigger": "finalized", "to": "Deleted"}
    with pytest.raises(FoldError, match="'finalized' is not allowed in state 'Provisioning'"):
        apply(STARTED, record(ev.TRANSITION_TAKEN, data))


def test_a_new_effect_is_the_dataclass_made_by_its_constructor() -> None:
    made = new_effect("uid:2:provision", "provision", 2)
    built = EffectRecord(key="uid:2:provision", name="provision", generation=2)
    assert made == built
    assert list(made.__dict__.items()) == list(built.__dict__.items())  # same fields, in order


@pytest.mark.parametrize(
    "key",
    [
        "uid:1:provision",
        "uid:12:provision:3",
        "uid:0:finalize:0",
        "uid:x:provision",
        "uid:1:provision:x",
        "uid:1",
        "uid:1:a:2:3",
        "",
        "uid:-1:provision",
        "uid:\u0661:provision",  # a digit isdigit() accepts beyond ASCII
    ],
)
def test_the_generation_of_a_key_is_the_one_parse_key_reads(key: str) -> None:
    parts = parse_key(key)
    assert key_generation(key) == (None if parts is None else parts.generation)
