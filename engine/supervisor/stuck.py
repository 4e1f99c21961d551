"""Stuck resources: which resources sat in a state past its deadline, and what to do.

Pure: `detect_stuck` takes folded states with the time each entered its state, the
deadlines and `now`, and returns reports naming the state, the pending effect and its
last error; `decide_healing` turns a report and the heal history into an action. The
reconciler journals `StuckDetected` / `HealingApplied`, writes the `Stuck` condition and
the Warning Event, and cancels or re-drives the work.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from engine.fsm import events as ev
from engine.fsm.state import FAILED_OUTCOME, EffectRecord, ResourceState
from engine.fsm.table import (
    DELETED,
    FINALIZED,
    FINALIZING,
    PROVISIONED,
    SPEC_CHANGED,
)
from engine.journal.record import NewEvent, Record

STUCK_CONDITION = "Stuck"
_PROGRESS_TRIGGERS = (PROVISIONED, FINALIZED, SPEC_CHANGED)


@dataclass(frozen=True, slots=True)
class ResourceInState:
    """One resource as the detector sees it: `key` (e.g. `namespace/name`), its folded
    `state`, when it entered `state.state` (`entered_at`, see `entered_state_at`) and,
    if deletion was requested, when (`deletion_requested_at`)."""

    key: str
    state: ResourceState
    entered_at: datetime
    deletion_requested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StuckReport:
    """A resource past its deadline. `finalizer` is True when what is overdue is the
    removal of the engine's finalizer from an object being deleted."""

    key: str
    state: str
    seconds: float
    deadline: float
    pending_effect: str | None
    last_error: str | None
    finalizer: bool = False

    @property
    def message(self) -> str:
        """One line for the condition, the Event and the journal."""
        what = (
            f"finalizer still present {self.seconds:.0f}s after deletion was requested"
            if self.finalizer
            else f"in {self.state} for {self.seconds:.0f}s"
        )
        text = f"stuck: {what} (deadline {self.deadline:g}s)"
        text += f"; pending effect {self.pending_effect}" if self.pending_effect else ""
        text += f"; last error: {self.last_error}" if self.last_error else ""
        return text


def entered_state_at(records: Iterable[Record]) -> datetime | None:
    """When the stream entered its current state: the time of the last `TransitionTaken`
    that changed the state (a retry within a state does not restart the clock), else of
    the first record. None for an empty stream. Errors: `FoldError` for a bad payload."""
    entered: datetime | None = None
    for record in records:
        if entered is None:
            entered = record.at
        if record.type == ev.TRANSITION_TAKEN:
            facts = ev.parse_transition(record)
            if facts.source != facts.dest:
                entered = record.at
    return entered


def _overdue_effect(state: ResourceState) -> EffectRecord | None:
    """The effect the resource waits on: one in flight, else one failed and awaiting retry."""
    pending = state.pending_effects
    if pending:
        return pending[-1]
    retrying = [
        r for r in state.effects if r.outcome == FAILED_OUTCOME and not r.is_permanent_failure
    ]
    return retrying[-1] if retrying else None


def detect_stuck(
    resources: Iterable[ResourceInState], *, deadlines: Mapping[str, float], now: datetime
) -> tuple[StuckReport, ...]:
    """The resources past their deadline at `now`, in input order.

    A resource is stuck when it has been in a state with a deadline for longer than the
    deadline, or when its deletion was requested longer ago than the `Finalizing`
    deadline and the engine's finalizer is still there (reported with `finalizer=True`
    while the resource has not reached `Finalizing`; once there, its own deadline rules).
    States without a deadline, and `Deleted`, are never stuck. Exactly at the deadline
    is not yet stuck.
    """
    reports = []
    for item in resources:
        state = item.state
        if state.state == DELETED:
            continue
        effect = _overdue_effect(state)
        pending = f"{effect.key} (attempt {effect.attempts})" if effect else None
        error = (effect.last_error if effect else None) or state.last_error
        deadline = deadlines.get(state.state)
        seconds = (now - item.entered_at).total_seconds()
        if deadline is not None and seconds > deadline:
            reports.append(StuckReport(item.key, state.state, seconds, deadline, pending, error))
            continue
        finalize_deadline = deadlines.get(FINALIZING)
        if (
            state.state != FINALIZING
            and state.has_finalizer
            and item.deletion_requested_at is not None
            and finalize_deadline is not None
        ):
            waited = (now - item.deletion_requested_at).total_seconds()
            if waited > finalize_deadline:
                reports.append(
                    StuckReport(
                        item.key, state.state, waited, finalize_deadline, pending, error, True
                    )
                )
    return tuple(reports)


def stuck_event(report: StuckReport) -> NewEvent:
    """The `StuckDetected` record for `report`."""
    return ev.stuck_detected(state=report.state, seconds=report.seconds, reason=report.message)


def stuck_condition(report: StuckReport) -> dict[str, str]:
    """The `Stuck` status condition (without `lastTransitionTime`)."""
    reason = "FinalizerOverdue" if report.finalizer else f"{report.state}DeadlineExceeded"
    return {
        "type": STUCK_CONDITION,
        "status": "True",
        "reason": reason,
        "message": report.message[: ev.MAX_MESSAGE],
    }


# ---- healing ----------------------------------------------------------------------------


class HealingAction(enum.Enum):
    """What the reconciler does about a stuck resource."""

    REDRIVE = "redrive"
    """Cancel the hung reconcile (and its effect) and reconcile again from the journal."""
    FAIL = "fail"
    """Move the resource to Failed with the decision's reason."""
    REPORT = "report"
    """Only report (healing off, or a stuck finalizer that needs a person)."""


@dataclass(frozen=True, slots=True)
class HealingPolicy:
    """`enabled`: heal at all; `max_heals_without_progress`: re-drives allowed before
    the resource is failed (a Finalizing resource is then only reported)."""

    enabled: bool = True
    max_heals_without_progress: int = 3

    def __post_init__(self) -> None:
        if self.max_heals_without_progress < 0:
            raise ValueError("max_heals_without_progress must be >= 0")


DEFAULT_HEALING = HealingPolicy()


@dataclass(frozen=True, slots=True)
class HealingDecision:
    """The action and a reason fit for `HealingApplied` and a Failed condition."""

    action: HealingAction
    reason: str


def heals_without_progress(records: Iterable[Record]) -> int:
    """`HealingApplied` records since the stream last made progress: an effect succeeded,
    or a `provisioned`, `finalized` or `spec_changed` transition (a new spec is a fresh
    start). Errors: `FoldError` for a bad payload."""
    count = 0
    for record in records:
        if record.type == ev.HEALING_APPLIED:
            count += 1
        elif record.type == ev.EFFECT_SUCCEEDED or (
            record.type == ev.TRANSITION_TAKEN
            and ev.parse_transition(record).trigger in _PROGRESS_TRIGGERS
        ):
            count = 0
    return count


def decide_healing(
    report: StuckReport, *, heals_without_progress: int, policy: HealingPolicy = DEFAULT_HEALING
) -> HealingDecision:
    """What to do about `report`, given the heals already tried without progress.

    Re-drive until `max_heals_without_progress` heals made no progress, then fail the
    resource with a reason naming the state, the heals and the last error. A stuck
    deletion is never failed nor its finalizer removed automatically: past the limit it
    is reported, and `engine release-finalizer NS/NAME` is the explicit way out.
    """
    if not policy.enabled:
        return HealingDecision(HealingAction.REPORT, f"{report.message}; healing is off")
    if heals_without_progress < policy.max_heals_without_progress:
        n = heals_without_progress + 1
        return HealingDecision(HealingAction.REDRIVE, f"heal {n}: re-drive; {report.message}")
    if report.finalizer or report.state == FINALIZING:
        return HealingDecision(
            HealingAction.REPORT,
            f"{report.message}; {heals_without_progress} heals made no progress: check the "
            f"cleanup, then run engine release-finalizer {report.key}",
        )
    reason = f"Stuck: in {report.state} after {heals_without_progress} heals without progress"
    if report.last_error:
        reason += f"; last error: {report.last_error}"
    return HealingDecision(HealingAction.FAIL, reason)
