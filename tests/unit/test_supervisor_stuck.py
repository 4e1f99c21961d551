"""The stuck detector and the healing policy (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.fsm import events as ev
from engine.fsm.state import EffectRecord, ResourceState
from engine.journal.record import NewEvent, Record
from engine.supervisor.stuck import (
    HealingAction,
    HealingPolicy,
    ResourceInState,
    StuckReport,
    decide_healing,
    detect_stuck,
    entered_state_at,
    heals_without_progress,
    stuck_condition,
    stuck_event,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEADLINES = {"Provisioning": 300.0, "Finalizing": 600.0}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def record(version: int, event: NewEvent, seconds: float) -> Record:
    return Record(
        position=version,
        stream="example.dev/Site/ns/a#u1",
        stream_version=version,
        type=event.type,
        schema=event.schema,
        at=at(seconds),
        data=event.data,
        idempotency_key=event.idempotency_key,
        trace_id=None,
        span_id=None,
        term=1,
        checksum="",
    )


def transition(version: int, source: str, dest: str, trigger: str, seconds: float) -> Record:
    event = ev.transition_taken(source=source, dest=dest, trigger=trigger, generation=1)
    return record(version, event, seconds)


HUNG = EffectRecord(key="u1:1:provision:0", name="provision", generation=1, attempts=2)
RETRYING = EffectRecord(
    key="u1:1:provision:0",
    name="provision",
    generation=1,
    attempts=3,
    outcome="failed",
    last_error="RegistryError: 503",
)


def provisioning(*effects: EffectRecord, last_error: str | None = None) -> ResourceState:
    return ResourceState(state="Provisioning", effects=effects, last_error=last_error)


def test_a_resource_past_its_state_deadline_is_reported_with_its_pending_effect() -> None:
    item = ResourceInState("ns/a", provisioning(HUNG), entered_at=T0)
    (report,) = detect_stuck([item], deadlines=DEADLINES, now=at(301))
    assert (report.key, report.state, report.seconds) == ("ns/a", "Provisioning", 301.0)
    assert report.pending_effect == "u1:1:provision:0 (attempt 2)"
    assert report.message == (
        "stuck: in Provisioning for 301s (deadline 300s); "
        "pending effect u1:1:provision:0 (attempt 2)"
    )


def test_a_failing_effect_awaiting_retry_is_named_with_its_last_error() -> None:
    item = ResourceInState("ns/a", provisioning(RETRYING), entered_at=T0)
    (report,) = detect_stuck([item], deadlines=DEADLINES, now=at(400))
    assert report.last_error == "RegistryError: 503"
    assert report.message.endswith("; last error: RegistryError: 503")


@pytest.mark.parametrize(
    ("state", "seconds"),
    [
        pytest.param(provisioning(HUNG), 300, id="exactly-at-the-deadline"),
        pytest.param(provisioning(HUNG), 10, id="well-within"),
        pytest.param(ResourceState(state="Ready"), 10_000, id="state-without-deadline"),
        pytest.param(ResourceState(state="Deleted"), 10_000, id="deleted"),
    ],
)
def test_resources_within_or_without_a_deadline_are_not_stuck(
    state: ResourceState, seconds: float
) -> None:
    item = ResourceInState("ns/a", state, entered_at=T0)
    assert detect_stuck([item], deadlines=DEADLINES, now=at(seconds)) == ()


def test_only_the_overdue_resources_are_reported_in_input_order() -> None:
    items = [
        ResourceInState("ns/late", provisioning(), entered_at=T0),
        ResourceInState("ns/fresh", provisioning(), entered_at=at(500)),
        ResourceInState("ns/finalizing", ResourceState(state="Finalizing"), entered_at=T0),
    ]
    reports = detect_stuck(items, deadlines=DEADLINES, now=at(700))
    assert [r.key for r in reports] == ["ns/late", "ns/finalizing"]


def test_an_overdue_finalizer_is_reported_before_the_resource_reaches_finalizing() -> None:
    state = ResourceState(state="Ready", has_finalizer=True, deletion_requested=True)
    item = ResourceInState("ns/a", state, entered_at=T0, deletion_requested_at=at(100))
    (report,) = detect_stuck([item], deadlines=DEADLINES, now=at(701))
    assert report.finalizer
    assert report.deadline == 600.0
    assert "finalizer still present 601s after deletion was requested" in report.message
    assert stuck_condition(report)["reason"] == "FinalizerOverdue"


def test_a_removed_finalizer_is_not_overdue() -> None:
    state = ResourceState(state="Ready", has_finalizer=False, deletion_requested=True)
    item = ResourceInState("ns/a", state, entered_at=T0, deletion_requested_at=T0)
    assert detect_stuck([item], deadlines=DEADLINES, now=at(10_000)) == ()


def test_the_condition_and_the_journal_event_name_the_state() -> None:
    item = ResourceInState("ns/a", provisioning(RETRYING), entered_at=T0)
    (report,) = detect_stuck([item], deadlines=DEADLINES, now=at(400))
    condition = stuck_condition(report)
    assert condition == {
        "type": "Stuck",
        "status": "True",
        "reason": "ProvisioningDeadlineExceeded",
        "message": report.message,
    }
    event = stuck_event(report)
    assert event.type == ev.STUCK_DETECTED
    assert event.data["state"] == "Provisioning"
    assert event.data["seconds"] == 400.0
    assert "RegistryError: 503" in event.data["reason"]


def test_the_state_clock_starts_at_the_last_transition_that_changed_the_state() -> None:
    records = [
        record(1, NewEvent(type=ev.OBSERVED, data={}), 0),
        transition(2, "Pending", "Provisioning", "observed_live", 5),
        transition(3, "Provisioning", "Provisioning", "effect_failed", 50),
    ]
    assert entered_state_at(records) == at(5)
    assert entered_state_at(records[:1]) == at(0)
    assert entered_state_at([]) is None


def heal(version: int) -> Record:
    return record(version, ev.healing_applied(action="redrive", reason="stuck"), version)


def test_heals_are_counted_since_the_last_progress() -> None:
    success = ev.effect_succeeded(key="k", name="provision", attempt=1, result=None)
    records = [heal(1), heal(2), record(3, success, 3), heal(4)]
    assert heals_without_progress(records) == 1
    assert heals_without_progress(records[:2]) == 2
    spec_changed = transition(5, "Failed", "Provisioning", "spec_changed", 5)
    assert heals_without_progress([heal(1), spec_changed]) == 0


REPORT = StuckReport("ns/a", "Provisioning", 400, 300, "k (attempt 3)", "RegistryError: 503")


def test_healing_redrives_until_the_limit_then_fails_with_a_clear_reason() -> None:
    policy = HealingPolicy(max_heals_without_progress=2)
    first = decide_healing(REPORT, heals_without_progress=0, policy=policy)
    second = decide_healing(REPORT, heals_without_progress=1, policy=policy)
    third = decide_healing(REPORT, heals_without_progress=2, policy=policy)
    assert [first.action, second.action, third.action] == [
        HealingAction.REDRIVE,
        HealingAction.REDRIVE,
        HealingAction.FAIL,
    ]
    assert third.reason == (
        "Stuck: in Provisioning after 2 heals without progress; last error: RegistryError: 503"
    )


@pytest.mark.parametrize(
    "report",
    [
        pytest.param(StuckReport("ns/a", "Finalizing", 700, 600, None, None), id="finalizing"),
        pytest.param(StuckReport("ns/a", "Ready", 700, 600, None, None, True), id="finalizer"),
    ],
)
def test_a_stuck_deletion_is_never_failed_and_points_to_release_finalizer(
    report: StuckReport,
) -> None:
    decision = decide_healing(report, heals_without_progress=3)
    assert decision.action is HealingAction.REPORT
    assert "engine release-finalizer ns/a" in decision.reason


def test_disabled_healing_only_reports() -> None:
    decision = decide_healing(REPORT, heals_without_progress=0, policy=HealingPolicy(enabled=False))
    assert decision.action is HealingAction.REPORT


def test_a_negative_heal_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_heals_without_progress"):
        HealingPolicy(max_heals_without_progress=-1)
