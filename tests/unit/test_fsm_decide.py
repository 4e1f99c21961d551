"""decide: one labelled answer per situation, pure, with effects as data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.fsm import (
    AddFinalizer,
    Decision,
    Observation,
    PatchStatus,
    RemoveFinalizer,
    ResourceState,
    RunFinalize,
    RunProvision,
    decide,
    fold,
)
from engine.fsm import events as ev
from engine.journal.record import NewEvent, Record

START = datetime(2026, 1, 1, tzinfo=UTC)
P1 = "u1:1:provision"


def history(*events: NewEvent, seconds: float = 0) -> ResourceState:
    return fold(
        Record(
            position=i,
            stream="s",
            stream_version=i,
            type=e.type,
            schema=e.schema,
            at=START + timedelta(seconds=seconds),
            data=e.data,
            idempotency_key=e.idempotency_key,
            trace_id=None,
            span_id=None,
            term=0,
            checksum="",
        )
        for i, e in enumerate(events, start=1)
    )


def obs(**fields: object) -> Observation:
    values: dict[str, object] = {"uid": "u1", "generation": 1, "has_finalizer": True}
    values.update(fields)
    return Observation(**values)  # type: ignore[arg-type]


def seen(observation: Observation) -> NewEvent:
    return ev.observed(observation, watch_event="MODIFIED", spec={})


def moved(source: str, dest: str, trigger: str, generation: int = 1) -> NewEvent:
    return ev.transition_taken(source=source, dest=dest, trigger=trigger, generation=generation)


def provisioning(*more: NewEvent, seconds: float = 0) -> ResourceState:
    return history(
        seen(obs()), moved("Pending", "Provisioning", "observed_live"), *more, seconds=seconds
    )


def ready(*more: NewEvent) -> ResourceState:
    return provisioning(
        ev.effect_started(key=P1, name="provision", attempt=1),
        ev.effect_succeeded(key=P1, name="provision", attempt=1, result=None),
        moved("Provisioning", "Ready", "provisioned"),
        *more,
    )


def test_first_observation_adds_the_finalizer_before_provisioning() -> None:
    decision = decide(history(seen(obs(has_finalizer=False))), obs(has_finalizer=False), START)
    assert decision == Decision(
        "first observation",
        trigger="observed_live",
        effects=(AddFinalizer(), PatchStatus("Provisioning", 1, None), RunProvision(P1, 1, 0)),
    )


def test_deletion_before_anything_was_done_finalizes_without_adding_a_finalizer() -> None:
    gone = obs(has_finalizer=False, deletion_requested=True)
    first = decide(history(seen(gone)), gone, START)
    assert (first.trigger, first.effects) == ("deletion_requested", ())
    state = history(seen(gone), moved("Pending", "Finalizing", "deletion_requested"))
    assert decide(state, gone, START).trigger == "finalized"


def test_restart_resumes_the_in_flight_effect_before_anything_else() -> None:
    state = provisioning(ev.effect_started(key=P1, name="provision", attempt=1))
    decision = decide(state, obs(deletion_requested=True, generation=2), START)
    assert decision.effects == (RunProvision(P1, 1, 0, resume=True),)
    assert decision.trigger is None


def test_provision_success_makes_the_resource_ready_and_schedules_a_resync() -> None:
    state = provisioning(
        ev.effect_started(key=P1, name="provision", attempt=1),
        ev.effect_succeeded(key=P1, name="provision", attempt=1, result=None),
    )
    decision = decide(state, obs(), START)
    assert decision.trigger == "provisioned"
    assert decision.effects == (PatchStatus("Ready", 1, None),)
    assert decision.requeue_after == 600.0


def test_retryable_failure_is_acknowledged_once_then_waits_then_retries() -> None:
    failure = (
        ev.effect_started(key=P1, name="provision", attempt=1),
        ev.effect_failed(
            key=P1, name="provision", attempt=1, error_class="Busy", retryable=True, message="b"
        ),
        ev.retry_scheduled(key=P1, attempt=1, delay=30.0, backoff=30.0),
    )
    state = provisioning(*failure)
    now = START + timedelta(seconds=10)
    first = decide(state, obs(), now)
    assert (first.trigger, first.effect_key, first.attempt) == ("effect_failed", P1, 1)
    assert first.requeue_after == 20.0
    assert first.effects == (PatchStatus("Provisioning", 1, "Busy: b"),)

    acknowledged = provisioning(
        *failure,
        ev.transition_taken(
            source="Provisioning",
            dest="Provisioning",
            trigger="effect_failed",
            generation=1,
            effect_key=P1,
            attempt=1,
        ),
    )
    waiting = decide(
        acknowledged,
        obs(status_phase="Provisioning", status_observed_generation=1, status_reason="Busy: b"),
        now,
    )
    assert waiting.idle
    assert waiting.requeue_after == 20.0
    later = decide(acknowledged, obs(), START + timedelta(seconds=31))
    assert later.trigger is None
    assert later.effects[-1] == RunProvision(P1, 1, 0)


def test_permanent_error_and_giving_up_fail_the_resource_with_the_reason() -> None:
    for gave_up, retryable, trigger in ((False, False, "permanent_error"), (True, True, "gave_up")):
        state = provisioning(
            ev.effect_started(key=P1, name="provision", attempt=1),
            ev.effect_failed(
                key=P1,
                name="provision",
                attempt=1,
                error_class="Invalid",
                retryable=retryable,
                gave_up=gave_up,
                message="size < 0",
            ),
        )
        decision = decide(state, obs(), START)
        assert decision.trigger == trigger
        assert decision.effects == (PatchStatus("Failed", 1, "Invalid: size < 0"),)


def test_spec_change_reprovisions_under_the_new_generation() -> None:
    state = ready(seen(obs(generation=2)))
    decision = decide(state, obs(generation=2), START)
    assert decision.trigger == "spec_changed"
    assert decision.effects[-1] == RunProvision("u1:2:provision", 2, 0)


def test_child_drift_reprovisions_in_a_new_round_with_a_new_key() -> None:
    decision = decide(ready(), obs(child_drift=True), START)
    assert decision.trigger == "drift_detected"
    assert decision.effects[-1] == RunProvision("u1:1:provision:1", 1, 1)


def test_resync_in_sync_does_nothing_but_requeue() -> None:
    in_sync = obs(status_phase="Ready", status_observed_generation=1)
    decision = decide(ready(), in_sync, START)
    assert decision.idle
    assert decision.requeue_after == 600.0
    assert decide(ready(), obs(), START).effects == (PatchStatus("Ready", 1, None),)


def test_an_older_generation_arriving_late_is_ignored() -> None:
    state = ready(seen(obs(generation=3)))
    assert decide(state, obs(generation=2), START).idle


def test_finalizing_cleans_up_then_removes_the_finalizer_then_is_deleted() -> None:
    deleting = obs(deletion_requested=True)
    base = (seen(deleting), moved("Ready", "Finalizing", "deletion_requested"))
    entering = decide(ready(), deleting, START)
    assert entering.trigger == "deletion_requested"
    assert entering.effects[-1] == RunFinalize("u1:1:finalize", 1)
    cleaned = ready(
        *base,
        ev.effect_started(key="u1:1:finalize", name="finalize", attempt=1),
        ev.effect_succeeded(key="u1:1:finalize", name="finalize", attempt=1, result=None),
    )
    assert decide(cleaned, deleting, START).effects == (RemoveFinalizer(),)
    gone = obs(deletion_requested=True, exists=False, has_finalizer=False)
    assert decide(cleaned, gone, START).trigger == "finalized"


def test_healing_a_failed_resource_starts_a_new_round() -> None:
    state = provisioning(
        ev.effect_started(key=P1, name="provision", attempt=1),
        ev.effect_failed(
            key=P1, name="provision", attempt=1, error_class="E", retryable=False, message="m"
        ),
        moved("Provisioning", "Failed", "permanent_error"),
        ev.healing_applied(action="reprovision", reason="operator asked"),
    )
    decision = decide(state, obs(), START)
    assert decision.trigger == "healing"
    assert decision.effects[-1] == RunProvision("u1:1:provision:1", 1, 1)
    assert decide(state, obs(generation=1), START) == decision  # pure: same inputs, same answer


def test_deleted_is_final() -> None:
    state = history(
        seen(obs(deletion_requested=True, has_finalizer=False)),
        moved("Pending", "Finalizing", "deletion_requested"),
        moved("Finalizing", "Deleted", "finalized"),
    )
    assert decide(state, obs(exists=False), START).idle


def test_a_journal_that_never_saw_provisioning_cleans_up_when_the_finalizer_is_there() -> None:
    # A new leader (or a fresh journal) knows the object only from cluster state: the
    # engine's finalizer on it means an earlier engine may have run effects (R9).
    deleting = obs(deletion_requested=True, has_finalizer=True)
    state = history(
        seen(deleting),
        moved("Pending", "Finalizing", "deletion_requested", generation=0),
    )
    decision = decide(state, deleting, START)
    assert any(isinstance(effect, RunFinalize) for effect in decision.effects)
    assert RemoveFinalizer() not in decision.effects


def test_without_the_finalizer_and_no_provisioning_there_is_nothing_to_clean_up() -> None:
    deleting = obs(deletion_requested=True, has_finalizer=False)
    state = history(
        seen(deleting),
        moved("Pending", "Finalizing", "deletion_requested", generation=0),
    )
    assert decide(state, deleting, START).trigger == "finalized"


READY_AT_1 = (
    seen(obs()),
    moved("Pending", "Provisioning", "observed_live"),
    ev.effect_started(key=P1, name="provision", attempt=1),
    ev.effect_succeeded(key=P1, name="provision", attempt=1, result=None),
    moved("Provisioning", "Ready", "provisioned"),
)


def test_a_restored_older_generation_is_provisioned_again_under_a_new_round() -> None:
    events = (
        *READY_AT_1,
        seen(obs(generation=2)),
        moved("Ready", "Provisioning", "spec_changed", 2),
        ev.effect_started(key="u1:2:provision", name="provision", attempt=1),
        ev.effect_succeeded(key="u1:2:provision", name="provision", attempt=1, result=None),
        moved("Provisioning", "Ready", "provisioned", 2),
        seen(obs(generation=1, restored=True)),
    )
    state, floor = history(*events), len(events)
    decision = decide(state, obs(generation=1), START)
    assert decision.trigger == "spec_changed"
    assert decision.effects[-1] == RunProvision(f"u1:1:provision:{floor}", 1, floor)


def test_a_restored_deleted_object_is_provisioned_again_and_finalized_under_its_round() -> None:
    events = (
        *READY_AT_1,
        seen(obs(deletion_requested=True, exists=False, has_finalizer=False)),
        moved("Ready", "Finalizing", "deletion_requested"),
        ev.effect_started(key="u1:1:finalize", name="finalize", attempt=1),
        ev.effect_succeeded(key="u1:1:finalize", name="finalize", attempt=1, result=None),
        moved("Finalizing", "Deleted", "finalized"),
        seen(obs(restored=True)),
    )
    floor = len(events)
    assert decide(history(*events), obs(), START).trigger == "observed_live"
    again = history(*events, moved("Pending", "Provisioning", "observed_live"))
    assert decide(again, obs(), START).effects[-1] == RunProvision(
        f"u1:1:provision:{floor}", 1, floor
    )
    deleting = history(*events, moved("Pending", "Finalizing", "deletion_requested"))
    finalize = decide(deleting, obs(deletion_requested=True), START).effects[-1]
    assert finalize == RunFinalize(f"u1:1:finalize:{floor}", 1, floor)
