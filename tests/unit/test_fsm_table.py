"""The transition table and the shared machine: every (state, trigger) pair is checked."""

from __future__ import annotations

import pytest

from engine.fsm import (
    STATES,
    TRANSITIONS,
    TRIGGERS,
    IllegalTransition,
    UnknownState,
    allowed_triggers,
    next_state,
)
from engine.fsm.machine import shared_machine

ALLOWED = {(row.source, row.trigger): row.dest for row in TRANSITIONS}

# The transition table, restated by hand so a change to the data is caught here.
EXPECTED = {
    ("Pending", "observed_live"): "Provisioning",
    ("Provisioning", "provisioned"): "Ready",
    ("Provisioning", "effect_failed"): "Provisioning",
    ("Provisioning", "gave_up"): "Failed",
    ("Provisioning", "permanent_error"): "Failed",
    ("Ready", "spec_changed"): "Provisioning",
    ("Ready", "drift_detected"): "Provisioning",
    ("Ready", "healing"): "Provisioning",
    ("Failed", "spec_changed"): "Provisioning",
    ("Failed", "healing"): "Provisioning",
    ("Pending", "deletion_requested"): "Finalizing",
    ("Provisioning", "deletion_requested"): "Finalizing",
    ("Ready", "deletion_requested"): "Finalizing",
    ("Failed", "deletion_requested"): "Finalizing",
    ("Finalizing", "deletion_requested"): "Finalizing",
    ("Finalizing", "finalized"): "Deleted",
}

PAIRS = [
    pytest.param(state, trigger, id=f"{state}-{trigger}")
    for state in STATES
    for trigger in TRIGGERS
]


def test_table_is_the_design_table() -> None:
    assert ALLOWED == EXPECTED


@pytest.mark.parametrize(("state", "trigger"), PAIRS)
def test_every_pair_reaches_its_listed_state_or_raises(state: str, trigger: str) -> None:
    if (state, trigger) in EXPECTED:
        assert next_state(state, trigger) == EXPECTED[(state, trigger)]
    else:
        with pytest.raises(IllegalTransition) as raised:
            next_state(state, trigger)
        assert raised.value.state == state
        assert raised.value.trigger == trigger
        assert trigger in str(raised.value)


@pytest.mark.parametrize("state", STATES)
def test_allowed_triggers_are_the_rows_of_the_state(state: str) -> None:
    assert set(allowed_triggers(state)) == {t for (s, t) in EXPECTED if s == state}


def test_every_state_is_reachable_from_pending() -> None:
    seen = {"Pending"}
    frontier = ["Pending"]
    while frontier:
        state = frontier.pop()
        for trigger in allowed_triggers(state):
            dest = next_state(state, trigger)
            if dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    assert seen == set(STATES)


def test_deleted_has_no_exits() -> None:
    assert allowed_triggers("Deleted") == ()


def test_unknown_state_is_refused() -> None:
    with pytest.raises(UnknownState):
        next_state("Sleeping", "observed_live")
    with pytest.raises(UnknownState):
        allowed_triggers("Sleeping")


def test_one_machine_is_shared_and_has_no_models_of_resources() -> None:
    assert shared_machine() is shared_machine()
    assert shared_machine().models == []
    next_state("Pending", "observed_live")
    assert shared_machine().models == []
