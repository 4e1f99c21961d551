"""Every rule decide can return, driven through the engine's own reconcile loop over
in-memory parts (MemoryLoop: memory journal, in-memory cluster writer, FakeClock); each
journal the loop writes is then replayed through the live loop with no divergence."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from engine.effects import BackoffPolicy
from engine.effects.backoff import next_delay
from engine.fsm import events as ev
from engine.journal.record import Record
from engine.replay.recording import is_external
from engine.runtime.reconcile.conditions import DEADLOCKED
from engine.runtime.reconcile.memory_loop import MemoryLoop
from engine.watchers import ChangeType
from tests.support.gadget_operator import (
    CONFIG_MAPS,
    FINALIZER,
    PERMANENT,
    REGISTER,
    RETRY,
    UNREGISTER,
    Target,
    child_change,
    gadget_operator,
    replay,
)


def _transitions(records: list[Record]) -> list[tuple[str, str, str]]:
    return [
        (str(r.data["from"]), str(r.data["to"]), str(r.data["trigger"]))
        for r in records
        if r.type == ev.TRANSITION_TAKEN
    ]


def _of(records: list[Record], kind: str, **data: Any) -> list[Record]:
    return [
        r for r in records if r.type == kind and all(r.data.get(k) == v for k, v in data.items())
    ]


def _reasons(loop: MemoryLoop, name: str) -> list[str]:
    return [e.reason for e in loop.cluster.events if e.involved.name == name]


def _config(loop: MemoryLoop, name: str) -> dict[str, Any] | None:
    return loop.cluster.get(CONFIG_MAPS.kind_ref, "default", f"{name}-config")


def _primary(loop: MemoryLoop, name: str) -> dict[str, Any] | None:
    return loop.cluster.get(loop.kind, "default", name)


async def _assert_replays(loop: MemoryLoop, **settings: Any) -> None:
    """The live loop's replay of this journal agrees with it, record for record."""
    report = await replay(loop, **settings)
    assert report.divergence is None, report.divergence
    records = [r async for r in loop.journal.read_all()]
    assert report.compared == len([r for r in records if not is_external(r)])


async def test_create_provisions_to_ready_with_the_finalizer_added_before_the_first_step() -> None:
    finalizers_at_call: list[list[str]] = []
    loop: MemoryLoop

    def probe(key: str) -> None:
        obj = _primary(loop, "alpha") or {}
        finalizers_at_call.append(list(obj.get("metadata", {}).get("finalizers") or ()))

    loop = MemoryLoop(gadget_operator(Target(probe=probe)))
    key = await loop.create("alpha", {"size": 1})
    await loop.settle(key)

    assert (await loop.state(key)).state == "Ready"
    assert finalizers_at_call == [[FINALIZER]]
    records = await loop.records(key)
    assert _transitions(records) == [
        ("Pending", "Provisioning", "observed_live"),
        ("Provisioning", "Ready", "provisioned"),
    ]
    first_effect = next(r for r in records if r.type == ev.EFFECT_STARTED)
    assert first_effect.data["key"] == "uid-alpha:1:provision"
    assert _of(records, ev.EFFECT_SUCCEEDED, key="uid-alpha:1:register")
    obj = _primary(loop, "alpha")
    assert obj is not None
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    assert obj["status"]["phase"] == "Ready"
    assert obj["status"]["observedGeneration"] == 1
    config = _config(loop, "alpha")
    assert config is not None
    assert config["data"] == {"size": "1"}
    assert config["metadata"]["ownerReferences"][0]["uid"] == "uid-alpha"
    # one reconcile took both transitions: one Event tells both
    assert _reasons(loop, "alpha") == ["ObservedLive"]
    (told,) = [e for e in loop.cluster.events if e.involved.name == "alpha"]
    assert "Pending → Provisioning (observed_live)" in told.message
    assert "Provisioning → Ready (provisioned)" in told.message
    await _assert_replays(loop)


async def test_a_child_deleted_in_the_cluster_is_drift_and_reprovisioning_restores_it() -> None:
    target = Target()
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("bravo", {"size": 2})
    await loop.settle(key)
    config = _config(loop, "bravo")
    assert config is not None

    loop.cluster.remove(CONFIG_MAPS.kind_ref, config)
    await child_change(loop, ChangeType.DELETED, config)
    assert key in loop.queued  # the child watch enqueues the owner
    await loop.settle(key)

    records = await loop.records(key)
    assert _transitions(records)[-2:] == [
        ("Ready", "Provisioning", "drift_detected"),
        ("Provisioning", "Ready", "provisioned"),
    ]
    assert _of(records, ev.OBSERVED, child_drift=True)
    assert _of(records, ev.EFFECT_SUCCEEDED, key="uid-bravo:1:provision:1")
    restored = _config(loop, "bravo")
    assert restored is not None
    assert restored["data"] == {"size": "2"}
    assert target.calls == ["uid-bravo:1:register", "uid-bravo:1:register:1"]
    assert "DriftDetected" in _reasons(loop, "bravo")
    await _assert_replays(loop)


async def test_a_child_edited_in_the_cluster_is_drift_and_reprovisioning_reverts_it() -> None:
    loop = MemoryLoop(gadget_operator(Target()))
    key = await loop.create("charlie", {"size": 3})
    await loop.settle(key)
    config = _config(loop, "charlie")
    assert config is not None
    await child_change(loop, ChangeType.ADDED, config)  # the watch delivers the apply first

    edited = loop.cluster.put(CONFIG_MAPS.kind_ref, {**config, "data": {"size": "99"}})
    await child_change(loop, ChangeType.MODIFIED, edited)
    await loop.settle(key)

    assert _transitions(await loop.records(key))[-2][2] == "drift_detected"
    reverted = _config(loop, "charlie")
    assert reverted is not None
    assert reverted["data"] == {"size": "3"}
    assert (await loop.state(key)).state == "Ready"
    await _assert_replays(loop)


async def test_a_spec_change_reprovisions_under_the_generation_2_key() -> None:
    target = Target()
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("delta", {"size": 4})
    await loop.settle(key)
    loop.clock.advance(30)
    await loop.update_spec(key, {"size": 5})
    await loop.settle(key)

    records = await loop.records(key)
    assert _transitions(records)[-2:] == [
        ("Ready", "Provisioning", "spec_changed"),
        ("Provisioning", "Ready", "provisioned"),
    ]
    assert _of(records, ev.EFFECT_SUCCEEDED, key="uid-delta:2:provision")
    assert target.calls == ["uid-delta:1:register", "uid-delta:2:register"]
    obj = _primary(loop, "delta")
    assert obj is not None
    assert obj["status"]["observedGeneration"] == 2
    config = _config(loop, "delta")
    assert config is not None
    assert config["data"] == {"size": "5"}
    await _assert_replays(loop)


async def test_a_retryable_failure_is_retried_after_the_seeded_backoff_then_succeeds() -> None:
    backoff = BackoffPolicy()
    target = Target(plan={REGISTER: [RETRY]})
    loop = MemoryLoop(gadget_operator(target), backoff=backoff)
    key = await loop.create("echo", {"size": 1})
    turns = await loop.settle(key)

    records = await loop.records(key)
    step = "uid-echo:1:register"
    (retry,) = _of(records, ev.RETRY_SCHEDULED, key=step)
    expected = next_delay(step, 1, backoff)
    assert retry.data["backoff"] == expected
    assert retry.data["delay"] == expected  # the step asked for no longer delay
    (failed,) = _of(records, ev.EFFECT_FAILED, key=step)
    assert failed.data["retryable"] is True
    assert failed.data["gave_up"] is False
    assert ("Provisioning", "Provisioning", "effect_failed") in _transitions(records)
    assert (await loop.state(key)).state == "Ready"
    assert target.calls == [step, step]
    assert turns[0].outcome.__class__.__name__ == "RequeueAfter"
    assert "EffectFailed" in _reasons(loop, "echo")
    await _assert_replays(loop, backoff=backoff)


async def test_a_handler_failing_on_every_allowed_attempt_gives_up_to_failed() -> None:
    backoff = BackoffPolicy(max_attempts=3)
    loop = MemoryLoop(gadget_operator(Target()), backoff=backoff)
    key = await loop.create("foxtrot", {"size": 1, "busy": True})
    await loop.settle(key)

    records = await loop.records(key)
    failures = _of(records, ev.EFFECT_FAILED, key="uid-foxtrot:1:provision")
    assert [r.data["gave_up"] for r in failures] == [False, False, True]
    assert len(_of(records, ev.RETRY_SCHEDULED, key="uid-foxtrot:1:provision")) == 2
    assert _transitions(records)[-1] == ("Provisioning", "Failed", "gave_up")
    assert (await loop.state(key)).state == "Failed"
    obj = _primary(loop, "foxtrot")
    assert obj is not None
    assert obj["status"]["phase"] == "Failed"
    assert "the handler is busy" in obj["status"]["reason"]
    assert _reasons(loop, "foxtrot")[-1] == "GaveUp"
    await _assert_replays(loop, backoff=backoff)


async def test_a_step_failing_on_every_allowed_attempt_gives_up_to_failed() -> None:
    backoff = BackoffPolicy(max_attempts=3)
    target = Target(plan={REGISTER: [RETRY, RETRY, RETRY, RETRY]})
    loop = MemoryLoop(gadget_operator(target), backoff=backoff)
    key = await loop.create("foxtrot", {"size": 1})
    await loop.settle(key)

    records = await loop.records(key)
    step = "uid-foxtrot:1:register"
    assert target.calls == [step, step, step]
    assert [r.data["gave_up"] for r in _of(records, ev.EFFECT_FAILED, key=step)] == [
        False,
        False,
        True,
    ]
    assert (await loop.state(key)).state == "Failed"
    assert _transitions(records)[-1] == ("Provisioning", "Failed", "gave_up")


async def test_a_permanent_error_fails_at_once_and_is_not_attempted_again() -> None:
    target = Target(plan={REGISTER: [PERMANENT]})
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("golf", {"size": 7})
    await loop.settle(key)
    loop.clock.advance(700)  # a resync later: still Failed, no new attempt
    await loop.watch(key)
    await loop.settle(key)

    records = await loop.records(key)
    assert _transitions(records)[-1] == ("Provisioning", "Failed", "permanent_error")
    assert target.calls == ["uid-golf:1:register"]
    assert not _of(records, ev.RETRY_SCHEDULED)
    obj = _primary(loop, "golf")
    assert obj is not None
    assert obj["status"]["phase"] == "Failed"
    assert "PermanentError: register refused size 7" in obj["status"]["reason"]
    assert "PermanentError" in _reasons(loop, "golf")
    await _assert_replays(loop)


async def test_a_dependency_wait_costs_no_attempts_and_proceeds_once_the_other_is_ready() -> None:
    backoff = BackoffPolicy(max_attempts=2)
    target = Target()
    loop = MemoryLoop(gadget_operator(target), backoff=backoff, dependency_poll_seconds=5.0)
    waiter = await loop.create("hotel", {"size": 1, "dependsOn": ["india"]})
    for _ in range(4):  # four polls of a dependency that does not exist yet
        await loop.reconcile(waiter)
        loop.clock.advance(5.0)
    assert (await loop.state(waiter)).state == "Provisioning"

    other = await loop.create("india", {"size": 2})
    await loop.settle(other)
    assert waiter in loop.queued  # the other's change wakes the waiter
    await loop.settle(waiter)

    records = await loop.records(waiter)
    waits = _of(records, ev.EFFECT_FAILED, error_class="DependencyNotReady")
    assert len(waits) >= 4 > backoff.max_attempts  # one per poll, none counted
    assert all(r.data["waiting"] and not r.data["gave_up"] for r in waits)
    assert all(r.data["delay"] == 5.0 for r in _of(records, ev.RETRY_SCHEDULED))
    assert "india, which does not exist yet" in str(waits[0].data["message"])
    assert (await loop.state(waiter)).state == "Ready"
    assert target.calls == ["uid-india:1:register", "uid-hotel:1:register"]
    await _assert_replays(loop, backoff=backoff)


async def test_two_resources_waiting_for_each_other_are_reported_deadlocked_in_both() -> None:
    loop = MemoryLoop(gadget_operator(Target()))
    juliet = await loop.create("juliet", {"size": 1, "dependsOn": ["kilo"]})
    kilo = await loop.create("kilo", {"size": 1, "dependsOn": ["juliet"]})
    await loop.reconcile(juliet)  # juliet → kilo
    await loop.reconcile(kilo)  # kilo → juliet closes the cycle
    assert loop.inbox.pending(juliet)
    assert loop.inbox.pending(kilo)
    await loop.reconcile(juliet)
    await loop.reconcile(kilo)

    for name, key in (("juliet", juliet), ("kilo", kilo)):
        records = await loop.records(key)
        (found,) = _of(records, ev.DEADLOCK_DETECTED)
        assert sorted(found.data["cycle"]) == sorted([loop.stream(juliet), loop.stream(kilo)])
        obj = _primary(loop, name)
        assert obj is not None
        conditions = {c["type"]: c for c in obj["status"]["conditions"]}
        assert conditions[DEADLOCKED]["status"] == "True"
        assert "DeadlockDetected" in _reasons(loop, name)
        assert (await loop.state(key)).state == "Provisioning"
    await _assert_replays(loop)


async def test_delete_finalizes_removes_the_finalizer_and_closes_the_stream() -> None:
    target = Target()
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("lima", {"size": 1})
    await loop.settle(key)
    loop.clock.advance(60)
    await loop.delete(key)
    assert _primary(loop, "lima") is not None  # held by the finalizer
    await loop.settle(key)

    records = await loop.records(key)
    assert _transitions(records)[-2:] == [
        ("Ready", "Finalizing", "deletion_requested"),
        ("Finalizing", "Deleted", "finalized"),
    ]
    assert _of(records, ev.EFFECT_SUCCEEDED, key="uid-lima:2:finalize")
    assert target.calls == ["uid-lima:1:register", "uid-lima:2:unregister"]
    finalize_done = _of(records, ev.EFFECT_SUCCEEDED, key="uid-lima:2:finalize")[0]
    finalized = _of(records, ev.TRANSITION_TAKEN, trigger="finalized")[0]
    assert finalize_done.position < finalized.position
    assert _primary(loop, "lima") is None  # the last finalizer went: the server deleted it
    assert (await loop.state(key)).state == "Deleted"
    assert "DeletionRequested" in _reasons(loop, "lima")
    await _assert_replays(loop)


async def test_an_object_deleted_without_the_engines_finalizer_closes_its_stream() -> None:
    target = Target()
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("mike", {"size": 1})
    await loop.settle(key)
    obj = _primary(loop, "mike")
    assert obj is not None
    obj["metadata"]["finalizers"] = []  # someone stripped the finalizer
    loop.cluster.put(loop.kind, obj)
    await loop.watch(key)
    await loop.delete(key)  # no finalizers: gone at once, a DELETED watch event
    assert _primary(loop, "mike") is None
    await loop.settle(key)

    records = await loop.records(key)
    assert _of(records, ev.OBSERVED, watch_event="deleted", exists=False)
    assert _transitions(records)[-1] == ("Finalizing", "Deleted", "finalized")
    assert (await loop.state(key)).state == "Deleted"
    # provisioning had run: the external cleanup still runs for the vanished object
    assert target.calls[-1] == "uid-mike:1:unregister"
    await _assert_replays(loop)


async def _drift_during_a_retry() -> tuple[MemoryLoop, str]:
    """A child deleted while its owner's provision waits to retry a step; then settled."""
    loop = MemoryLoop(gadget_operator(Target(plan={REGISTER: [RETRY]})))
    key = await loop.create("november", {"size": 1})
    await loop.reconcile(key)  # register failed: the provision waits for its retry
    config = _config(loop, "november")
    assert config is not None
    loop.cluster.remove(CONFIG_MAPS.kind_ref, config)
    await child_change(loop, ChangeType.DELETED, config)
    await loop.settle(key)
    return loop, key


async def test_a_child_deleted_during_provisioning_is_restored_by_a_drift_round_after_ready() -> (
    None
):
    loop, key = await _drift_during_a_retry()
    records = await loop.records(key)
    # the retry of the same round finds its apply recorded (no second apply); once Ready,
    # the drift that is still there starts a new round, which restores the child
    assert [t[2] for t in _transitions(records)] == [
        "observed_live",
        "effect_failed",
        "provisioned",
        "drift_detected",
        "provisioned",
    ]
    restored = _config(loop, "november")
    assert restored is not None
    assert restored["data"] == {"size": "1"}
    assert (await loop.state(key)).state == "Ready"


async def test_the_replay_of_drift_during_provisioning_agrees_with_the_journal() -> None:
    loop, _ = await _drift_during_a_retry()
    await _assert_replays(loop)


async def test_a_retryable_finalize_failure_is_retried_then_the_stream_closes() -> None:
    target = Target(plan={UNREGISTER: [RETRY]})
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("oscar", {"size": 1})
    await loop.settle(key)
    await loop.delete(key)
    await loop.settle(key)

    records = await loop.records(key)
    step = "uid-oscar:2:unregister"
    assert target.calls[-2:] == [step, step]
    assert _of(records, ev.RETRY_SCHEDULED, key=step)
    assert _transitions(records)[-1] == ("Finalizing", "Deleted", "finalized")
    assert _primary(loop, "oscar") is None
    await _assert_replays(loop)


async def test_a_permanent_finalize_failure_keeps_the_finalizer_and_stops_calling() -> None:
    target = Target(plan={UNREGISTER: [PERMANENT]})
    loop = MemoryLoop(gadget_operator(target))
    key = await loop.create("papa", {"size": 1})
    await loop.settle(key)
    await loop.delete(key)
    await loop.settle(key)
    loop.clock.advance(700)
    await loop.settle(key)

    assert target.calls.count("uid-papa:2:unregister") == 1
    assert (await loop.state(key)).state == "Finalizing"
    obj = _primary(loop, "papa")
    assert obj is not None  # held: the cleanup needs attention
    assert obj["metadata"]["finalizers"] == [FINALIZER]
    assert obj["status"]["phase"] == "Finalizing"
    assert "unregister refused" in obj["status"]["reason"]
    await _assert_replays(loop)


async def test_a_finalize_cut_off_mid_step_is_resumed_under_its_key_after_a_restart() -> None:
    hung = Target(hold=asyncio.Event(), hold_step=UNREGISTER)
    loop = MemoryLoop(gadget_operator(hung))
    key = await loop.create("quebec", {"size": 1})
    await loop.settle(key)
    await loop.delete(key)
    turn = asyncio.get_running_loop().create_task(loop.reconcile(key))
    await hung.entered.wait()
    turn.cancel()  # a kill -9 inside the unregister step
    with contextlib.suppress(asyncio.CancelledError):
        await turn

    target = Target()
    restarted = loop.restart(gadget_operator(target))
    await restarted.relist()
    await restarted.settle(key)

    records = await restarted.records(key)
    starts = [
        (r.data["key"], r.data["attempt"])
        for r in records
        if r.type == ev.EFFECT_STARTED and "finalize" in str(r.data["key"])
    ]
    assert starts == [("uid-quebec:2:finalize", 1), ("uid-quebec:2:finalize", 2)]
    assert target.calls == ["uid-quebec:2:unregister"]  # the same key, once more
    assert (await restarted.state(key)).state == "Deleted"
    assert _primary(restarted, "quebec") is None
    await _assert_replays(restarted)
