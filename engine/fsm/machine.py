"""The one shared `transitions` Machine, built from the table, and the two pure lookups.

No Machine per resource (too much memory at 10,000 resources), no model, no callbacks:
the reconciler does all I/O. This is the only module that imports `transitions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

from engine.fsm.errors import IllegalTransition, UnknownState
from engine.fsm.table import INITIAL_STATE, STATES, TRANSITIONS

if TYPE_CHECKING:
    from transitions import Machine


@cache
def shared_machine() -> Machine:
    """The synchronous Machine of the table, built once per process and never mutated."""
    from transitions import Machine  # when first needed: a fold looks up `destination`

    return Machine(
        model=None,
        states=list(STATES),
        transitions=[
            {"trigger": row.trigger, "source": row.source, "dest": row.dest} for row in TRANSITIONS
        ],
        initial=INITIAL_STATE,
        auto_transitions=False,
        send_event=False,
        ignore_invalid_triggers=False,
    )


def next_state(state: str, trigger: str) -> str:
    """The state `trigger` leads to from `state`.

    Errors: `UnknownState` for a state outside the table; `IllegalTransition` when the
    table has no row for (state, trigger). Never returns `state` for an unknown pair.
    """
    if state not in STATES:
        raise UnknownState(state)
    found = shared_machine().get_transitions(trigger=trigger, source=state)
    if not found:
        raise IllegalTransition(state, trigger, allowed_triggers(state))
    dest = found[0].dest
    if dest is None:  # an internal transition: the table has none
        return state
    return str(dest)


def allowed_triggers(state: str) -> tuple[str, ...]:
    """The triggers `state` accepts, in table order. Errors: `UnknownState`."""
    if state not in STATES:
        raise UnknownState(state)
    names: list[str] = shared_machine().get_triggers(state)
    return tuple(names)


@cache
def _destinations() -> Mapping[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for row in TRANSITIONS:
        found.setdefault((row.source, row.trigger), row.dest)  # the Machine takes the first
    return found


def destination(state: str, trigger: str) -> str:
    """`next_state(state, trigger)`, read from the table the Machine is built from, so a
    fold neither builds nor imports the Machine (tested equal to `next_state` for every
    state and trigger). Errors: as `next_state`."""
    found = _destinations().get((state, trigger))
    if found is None:
        return next_state(state, trigger)  # its error (or its answer, were the table odd)
    return found
