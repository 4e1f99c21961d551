"""The lifecycle of a custom resource, written once as data: states, triggers, transitions.

Everything else (the shared machine, the diagrams, the tests) is generated from this
table. State and trigger names are persisted in the journal: add, never rename.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PENDING: Final = "Pending"
PROVISIONING: Final = "Provisioning"
READY: Final = "Ready"
FAILED: Final = "Failed"
FINALIZING: Final = "Finalizing"
DELETED: Final = "Deleted"

STATES: Final = (PENDING, PROVISIONING, READY, FAILED, FINALIZING, DELETED)
INITIAL_STATE: Final = PENDING
FINAL_STATES: Final = (DELETED,)

OBSERVED_LIVE: Final = "observed_live"
PROVISIONED: Final = "provisioned"
EFFECT_FAILED: Final = "effect_failed"
GAVE_UP: Final = "gave_up"
PERMANENT_ERROR: Final = "permanent_error"
SPEC_CHANGED: Final = "spec_changed"
DRIFT_DETECTED: Final = "drift_detected"
HEALING: Final = "healing"
DELETION_REQUESTED: Final = "deletion_requested"
FINALIZED: Final = "finalized"

TRIGGERS: Final = (
    OBSERVED_LIVE,
    PROVISIONED,
    EFFECT_FAILED,
    GAVE_UP,
    PERMANENT_ERROR,
    SPEC_CHANGED,
    DRIFT_DETECTED,
    HEALING,
    DELETION_REQUESTED,
    FINALIZED,
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the table: `trigger` fired in `source` moves the resource to `dest`."""

    source: str
    trigger: str
    dest: str


def _rows() -> tuple[Transition, ...]:
    rows = [
        Transition(PENDING, OBSERVED_LIVE, PROVISIONING),
        Transition(PROVISIONING, PROVISIONED, READY),
        # A retryable failure keeps the resource provisioning; the retry waits for backoff.
        Transition(PROVISIONING, EFFECT_FAILED, PROVISIONING),
        Transition(PROVISIONING, GAVE_UP, FAILED),
        Transition(PROVISIONING, PERMANENT_ERROR, FAILED),
        Transition(READY, SPEC_CHANGED, PROVISIONING),
        Transition(READY, DRIFT_DETECTED, PROVISIONING),
        Transition(READY, HEALING, PROVISIONING),
        Transition(FAILED, SPEC_CHANGED, PROVISIONING),
        Transition(FAILED, HEALING, PROVISIONING),
    ]
    rows += [
        Transition(state, DELETION_REQUESTED, FINALIZING) for state in STATES if state != DELETED
    ]
    rows.append(Transition(FINALIZING, FINALIZED, DELETED))
    return tuple(rows)


TRANSITIONS: Final[tuple[Transition, ...]] = _rows()
"""The engine's transition table (docs/fsm.md); the only copy."""
