"""--verify replays a journal through the live reconcile loop: it agrees with an unchanged
journal, names the first record that differs in a changed one (or for changed code),
calls no effect, and follows a run that was cut off and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.cli.operator_ref import load_operator
from engine.effects import PermanentError
from engine.example.site_resource import SITE
from engine.fsm import events as ev
from engine.journal.codec import record_from_json
from engine.journal.record import Record
from engine.replay.recording import Recording, is_external
from engine.replay.replayed_run import replay_through_loop
from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.memory_loop import MemoryLoop
from tests.fixtures.journals import golden as golden_operators
from tests.fixtures.journals.golden import StepTarget, bucket_operator
from tests.fixtures.journals.make_golden import SCENARIOS
from tests.unit.test_replay_timeline import golden

JOURNALS = Path(__file__).parents[1] / "integration" / "journals"


def _first(records: list[Record], **data: object) -> Record:
    return next(r for r in records if all(r.data.get(k) == v for k, v in data.items()))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_unchanged_code_agrees_with_every_golden_journal(name: str) -> None:
    records = golden(name)
    target = StepTarget()
    report = await replay_through_loop(records, bucket_operator(target))
    assert report.divergence is None, report.divergence
    assert report.compared >= 10
    assert report.reconciles >= 1
    assert target.calls == []  # replay performs no effects


async def test_a_changed_trigger_is_reported_at_its_position() -> None:
    records = golden("create_ready")
    bad = _first(records, trigger="provisioned")
    index = records.index(bad)
    # the fold itself cannot tell (the table allows Provisioning → Failed on gave_up)
    records[index] = replace(bad, data={**bad.data, "trigger": "gave_up", "to": "Failed"})
    report = await replay_through_loop(records, golden_operators.OPERATOR)
    assert report.divergence is not None
    assert report.divergence.position == bad.position
    assert "decide fires 'provisioned'" in report.divergence.message


async def test_a_handler_run_decide_did_not_ask_for_is_reported() -> None:
    records = golden("create_ready")
    bad = _first(records, name="provision")
    key = str(bad.data["key"]) + ":7"
    records[records.index(bad)] = replace(bad, data={**bad.data, "key": key})
    report = await replay_through_loop(records, golden_operators.OPERATOR)
    assert report.divergence is not None
    assert report.divergence.position == bad.position
    assert key in report.divergence.message


async def test_a_renamed_step_is_reported_where_the_journal_ran_the_old_one() -> None:
    records = golden("spec_change")
    report = await replay_through_loop(records, golden_operators.RENAMED_STEP)
    started = _first(records, name="create-user")
    assert report.divergence is not None
    assert report.divergence.position == started.position
    assert f"the code runs '{started.data['key'][: -len('create-user')]}add-user'" in (
        report.divergence.message
    )


async def test_an_extra_step_is_reported_where_the_journal_ended_the_handler() -> None:
    records = golden("spec_change")
    report = await replay_through_loop(records, golden_operators.EXTRA_STEP)
    ended = next(
        r for r in records if r.type == "EffectSucceeded" and r.data["name"] == "provision"
    )
    assert report.divergence is not None
    assert report.divergence.position == ended.position
    assert "one more step" in report.divergence.message
    assert ":1:tag-bucket" in report.divergence.message


async def test_a_removed_step_is_reported_where_the_journal_ran_it() -> None:
    records = golden("create_ready")
    shorter = bucket_operator(StepTarget(), provision_steps=("create-bucket",))
    report = await replay_through_loop(records, shorter)
    started = _first(records, name="create-user")
    assert report.divergence is not None
    assert report.divergence.position == started.position
    assert "the code does not" in report.divergence.message


async def test_a_handler_that_now_fails_before_its_steps_is_reported_at_the_first_step() -> None:
    records = golden("create_ready")
    target = StepTarget()

    async def refuses(ctx: Context) -> None:
        raise PermanentError("the new version refuses this spec")

    changed = replace(bucket_operator(target), provision=refuses)
    report = await replay_through_loop(records, changed)
    first_step = _first(records, name="create-bucket")
    assert report.divergence is not None
    assert report.divergence.position == first_step.position
    assert "'create-bucket' here, the code does not" in report.divergence.message


async def test_a_run_cut_off_mid_step_and_resumed_by_a_new_process_verifies() -> None:
    hold: dict[str, int] = {"create-user": 1}
    loop = MemoryLoop(bucket_operator(StepTarget(busy=hold)))
    key = await loop.create("golf", {"bucket": "golf-data"})
    await loop.reconcile(key)  # create-user fails once: a retry is scheduled
    cut = [r async for r in loop.journal.read_all()]  # as a kill -9 right here leaves it
    report = await replay_through_loop(cut, golden_operators.OPERATOR)
    assert report.divergence is None, report.divergence

    # a new process on the same journal and cluster: its watch relists (ADDED again)
    restarted = loop.restart(bucket_operator(StepTarget()))
    await restarted.relist()
    loop.clock.advance(5)
    await restarted.settle(key)
    assert (await restarted.state(key)).state == "Ready"
    everything = [r async for r in loop.journal.read_all()]
    report = await replay_through_loop(everything, golden_operators.OPERATOR)
    assert report.divergence is None, report.divergence
    assert report.reconciles >= 2


async def test_a_reconcile_that_swallowed_its_cancellation_never_waits_on_the_recording() -> None:
    """Stopping a replayed process cancels its reconciles and awaits them: one that
    caught the cancellation and went on (as `asyncio.wait_for` does on Python 3.11 when
    the call it waits for has just finished) must still end at its next wait."""
    recording = Recording(golden("create_ready"), kind=golden_operators.BUCKET.kind_ref)

    async def goes_on_after_cancel() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await recording.wait_until(lambda: False)
        await recording.wait_until(lambda: False)  # the journal holds nothing more

    task = asyncio.ensure_future(goes_on_after_cancel())
    await asyncio.sleep(0)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=1.0)
    assert task in done
    assert task.cancelled()


def test_the_golden_operator_loads_by_reference() -> None:
    assert load_operator("tests.fixtures.journals.golden:OPERATOR") is golden_operators.OPERATOR


def _export(path: Path) -> list[Record]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [record_from_json(json.loads(line)) for line in lines]


def test_the_echo_of_a_status_write_is_replayed_after_the_write_and_nothing_else_moves() -> None:
    """(D5) The watch journaled the echo of the Ready status write (position 14) before the
    write's `StatusWritten` (15): replay feeds the echo after the write, where the live
    decision's view put it. An observation showing another status is no echo: it stays."""
    records = _export(JOURNALS / "status_echo_before_its_write.jsonl")
    kind = SITE.kind_ref
    order = [r.position for r in Recording(records, kind=kind).order]
    assert order == [*range(1, 14), 15, 14]
    echo = records[13]
    other = replace(echo, data={**echo.data, "status_phase": "Provisioning"})
    order = [r.position for r in Recording([*records[:13], other, records[14]], kind=kind).order]
    assert order == list(range(1, 16))


async def test_drift_journaled_after_a_write_is_not_answered_to_the_pass_before_it() -> None:
    """One Site's stream of a soak's journal: its cleanup succeeded (finalize), the next
    pass removed the finalizer (a write with no record of its own: the Site is gone),
    and the pass after it journaled the object gone with its children drifted (the
    garbage collector took them). Replay answered the pass before the write with that
    drift and journaled a drifted, still existing object there; drift is now answered
    from the next observation only for the object at that observation's version."""
    records = _export(JOURNALS / "soak_drift_after_the_finalizer_went.jsonl")
    gone = records[-2]
    assert (gone.type, gone.data["exists"], gone.data["child_drift"]) == (ev.OBSERVED, False, True)
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is None, report.divergence
    assert report.compared == len([r for r in records if not is_external(r)])


async def test_a_pass_that_reads_the_watchs_deletion_as_it_is_fed_takes_the_drift_after_it() -> (
    None
):
    """(D12) One Site's stream of a soak's journal. The cleanup succeeded (30703), the
    watch journaled the deletion with no drift (30709), and the pass after the cleanup
    journaled the object gone with its children drifted (30714: the garbage collector took
    them), then took Finalizing → Deleted. Replay feeds the deletion to its view before its
    append has its turn; the pass read the view in that moment and was answered the drift
    of the deletion being fed, so its observation equalled it and journaled nothing ("the
    journal has Observed here, the code takes Finalizing → Deleted"). A pass's drift now
    passes over the watch's observations next on the stream (its own append comes after
    them)."""
    records = _export(JOURNALS / "soak_drift_after_the_watch_saw_the_deletion.jsonl")
    by_position = {r.position: r for r in records}
    deleted, gone = by_position[30709], by_position[30714]
    assert (deleted.data["watch_event"], deleted.data["child_drift"]) == ("deleted", False)
    assert (gone.data["watch_event"], gone.data["child_drift"]) == ("reconcile", True)
    assert deleted.data["resource_version"] == gone.data["resource_version"]
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is None, report.divergence
    assert report.compared == len([r for r in records if not is_external(r)])


def _carried_over_relist() -> list[Record]:
    return _export(JOURNALS / "soak_relist_of_an_object_carried_over.jsonl")


async def test_a_relist_of_an_object_carried_over_from_the_process_before_is_a_restart() -> None:
    """(D8) Two Sites of a soak's journal. A process that has finished its first list
    (soak-0689's `modified` at 32515) is killed; the next one's list journals soak-0013
    first (33875), an object the killed process had only carried over from the one
    before it, then soak-0689 (33910). It takes soak-0013 Ready → Finalizing and is
    killed after its status write was applied, before its `StatusWritten`; the next
    process's list journals the Finalizing status (34027) and runs the cleanup without a
    write. Replay took the restart at 33910, not 33875, so the process it rebuilt there
    carried soak-0013 over once more, took the relist at 34027 for that process's own
    list, and journaled the write the kill cut off ("the code appends StatusWritten")."""
    records = _carried_over_relist()
    by_position = {r.position: r for r in records}
    assert by_position[32515].data["watch_event"] == "modified"
    assert [by_position[p].data["watch_event"] for p in (33875, 33910, 34027)] == ["added"] * 3
    assert by_position[34027].data["status_phase"] == "Finalizing"
    assert not any(r.type == ev.STATUS_WRITTEN and r.position > 34025 for r in records)
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is None, report.divergence
    assert report.compared == len([r for r in records if not is_external(r)])


async def test_a_relist_showing_a_status_the_code_must_write_still_diverges() -> None:
    """The same journal with the relist at 34027 showing the status from before the
    write (Ready, generation 4): the code writes the Finalizing status there, and the
    journal has the cleanup's start instead."""
    records = _carried_over_relist()
    index = next(i for i, r in enumerate(records) if r.position == 34027)
    relist = records[index]
    records[index] = replace(
        relist,
        data={**relist.data, "status_phase": "Ready", "status_observed_generation": 4},
    )
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is not None
    assert report.divergence.position == 34028
    assert "the code appends StatusWritten" in report.divergence.message


def _drift_after_deleted() -> list[Record]:
    return _export(JOURNALS / "soak_drift_after_the_stream_went_deleted.jsonl")


async def test_a_watch_observation_after_the_stream_went_deleted_answers_no_pass_before_it() -> (
    None
):
    """(D9) One Site's stream of a soak's journal. The watch journaled the finalizer's
    removal with the children drifted (88220), the next pass took Finalizing → Deleted
    (88224) and the pass after it settled and forgot the object and its drift; the
    watch's deletion came after (88241, no drift: the engine had forgotten it), and a
    later pass journaled the drift the garbage collector's deletions brought (89599).
    Replay answered the settling pass with the deletion's drift (same resourceVersion),
    so that pass journaled nothing only once the deletion was fed, and forgot the object
    the deletion had just put back: "the journal has Observed here, the code writes
    nothing" at 89599."""
    records = _drift_after_deleted()
    by_position = {r.position: r for r in records}
    assert (by_position[88220].data["watch_event"], by_position[88220].data["child_drift"]) == (
        "modified",
        True,
    )
    assert by_position[88224].data["to"] == "Deleted"
    assert (by_position[88241].data["watch_event"], by_position[88241].data["child_drift"]) == (
        "deleted",
        False,
    )
    assert (
        by_position[88241].data["resource_version"] == by_position[88220].data["resource_version"]
    )
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is None, report.divergence
    assert report.compared == len([r for r in records if not is_external(r)])


async def test_a_pass_after_the_stream_went_deleted_that_journals_no_drift_still_diverges() -> None:
    """The same journal with the last pass's record showing no drift (equal to the
    deletion before it, so the code journals nothing there): still reported at 89599."""
    records = _drift_after_deleted()
    index = next(i for i, r in enumerate(records) if r.position == 89599)
    last = records[index]
    records[index] = replace(last, data={**last.data, "child_drift": False})
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is not None
    assert report.divergence.position == 89599
    assert "the code writes nothing" in report.divergence.message


def _echo_without_its_record() -> list[Record]:
    return _export(JOURNALS / "soak_status_write_echoed_without_its_record.jsonl")


async def test_a_status_write_echoed_but_never_journaled_is_not_journaled_by_replay() -> None:
    """(D10) One Site's stream of a soak's journal. A process took it Ready → Finalizing
    (91673) and wrote the status; the watch journaled the echo (91675) and the process
    was killed before the write's `StatusWritten`. The next process's list found the
    Site unchanged since that echo and journaled nothing, and ran the cleanup (91676)
    with no write. Replay, seeing no relist, answered the write and journaled the
    `StatusWritten` ("the code appends StatusWritten" at 91676); a write whose echo the
    journal holds and whose record it does not now fails as the live answer did."""
    records = _echo_without_its_record()
    by_position = {r.position: r for r in records}
    assert by_position[91673].data["to"] == "Finalizing"
    echo = by_position[91675]
    assert (echo.data["watch_event"], echo.data["status_phase"]) == ("modified", "Finalizing")
    assert by_position[91676].type == ev.EFFECT_STARTED
    assert not any(r.type == ev.STATUS_WRITTEN and r.position > 91673 for r in records)
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is None, report.divergence
    assert report.compared == len([r for r in records if not is_external(r)])


async def test_a_status_write_without_its_echo_or_record_still_diverges() -> None:
    """The same journal with the observation at 91675 showing the status before the
    write (Ready): nothing says the write was applied, and the code's `StatusWritten` is
    reported where the journal has the cleanup's start."""
    records = _echo_without_its_record()
    index = next(i for i, r in enumerate(records) if r.position == 91675)
    echo = records[index]
    records[index] = replace(echo, data={**echo.data, "status_phase": "Ready"})
    report = await replay_through_loop(records, load_operator(None))
    assert report.divergence is not None
    assert report.divergence.position == 91676
    assert "the code appends StatusWritten" in report.divergence.message
