"""--verify: fold and decide agree with an unchanged journal and name the first record
that differs in a changed one; the handlers re-run in replay mode, calling nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.effects import PermanentError
from engine.journal.record import Record
from engine.replay.driver import LoadedJournal, check_all_decisions
from engine.replay.handlers import check_handlers, handler_attempts, load_operator
from engine.replay.verify import check_decisions
from tests.fixtures.journals import golden as golden_operators
from tests.fixtures.journals.golden import StepTarget, bucket_operator
from tests.fixtures.journals.make_golden import SCENARIOS
from tests.unit.test_replay_timeline import golden


def loaded(records: list[Record]) -> LoadedJournal:
    return LoadedJournal(len(records), {records[0].stream: records})


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_unchanged_code_agrees_with_every_golden_journal(name: str) -> None:
    records = golden(name)
    (check,) = check_all_decisions(loaded(records))
    assert check.divergence is None
    assert check.checked >= 3
    target = StepTarget()
    (handlers,) = await check_handlers(loaded(records), bucket_operator(target))
    assert handlers.divergence is None
    assert handlers.checked >= 1
    assert target.calls == []  # replay performs no effects


def test_a_changed_trigger_is_reported_at_its_position() -> None:
    records = golden("create_ready")
    index = next(i for i, r in enumerate(records) if r.data.get("trigger") == "provisioned")
    bad = records[index]
    # the fold itself cannot tell (the table allows Provisioning → Failed on gave_up)
    records[index] = replace(bad, data={**bad.data, "trigger": "gave_up", "to": "Failed"})
    check = check_decisions(bad.stream, records[: index + 1])
    assert check.divergence is not None
    assert check.divergence.position == bad.position
    assert "decide fires 'provisioned'" in check.divergence.message


def test_a_handler_run_decide_did_not_ask_for_is_reported() -> None:
    records = golden("create_ready")
    index = next(i for i, r in enumerate(records) if r.data.get("name") == "provision")
    bad = records[index]
    key = str(bad.data["key"]) + ":7"
    records[index] = replace(bad, data={**bad.data, "key": key})
    check = check_decisions(bad.stream, records[: index + 1])
    assert check.divergence is not None
    assert check.divergence.position == bad.position
    assert key in check.divergence.message


@pytest.mark.parametrize(
    ("operator", "first_step_position", "words"),
    [
        pytest.param(
            golden_operators.RENAMED_STEP, 9, "the code runs 'uid-bravo:1:add-user'", id="renamed"
        ),
        pytest.param(
            golden_operators.EXTRA_STEP, 11, "one more step 'uid-bravo:1:tag-bucket'", id="extra"
        ),
    ],
)
async def test_a_changed_handler_is_reported_at_the_first_differing_position(
    operator: object, first_step_position: int, words: str
) -> None:
    records = golden("spec_change")
    (check,) = await check_handlers(loaded(records), operator)  # type: ignore[arg-type]
    assert check.divergence is not None
    assert check.divergence.position == first_step_position
    assert words in check.divergence.message
    assert records[first_step_position - 1].position == first_step_position


async def test_a_removed_step_is_reported_where_the_journal_ran_it() -> None:
    records = golden("create_ready")
    shorter = bucket_operator(StepTarget(), provision_steps=("create-bucket",))
    (check,) = await check_handlers(loaded(records), shorter)
    assert check.divergence is not None
    started = next(r for r in records if r.data.get("name") == "create-user")
    assert check.divergence.position == started.position
    assert "the code does not" in check.divergence.message


async def test_a_handler_that_now_fails_before_its_steps_is_reported_at_the_first_step() -> None:
    records = golden("create_ready")
    target = StepTarget()

    async def refuses(ctx: object) -> None:
        raise PermanentError("the new version refuses this spec")

    changed = replace(bucket_operator(target), provision=refuses)
    (check,) = await check_handlers(loaded(records), changed)
    assert check.divergence is not None
    first_step = next(r for r in records if r.data.get("name") == "create-bucket")
    assert check.divergence.position == first_step.position
    assert "'create-bucket' here, the code does not" in check.divergence.message


def test_crash_cut_runs_and_retries_are_grouped_per_attempt() -> None:
    attempts = handler_attempts(golden("retry_ready"))
    assert [a.started.data["attempt"] for a in attempts] == [1, 2, 3]
    assert [a.outcome.type if a.outcome else None for a in attempts] == [
        "EffectFailed",
        "EffectFailed",
        "EffectSucceeded",
    ]
    assert [len(a.steps) for a in attempts] == [5, 3, 2]


@pytest.mark.parametrize(
    ("reference", "words"),
    [
        pytest.param("nocolon", "should look like", id="shape"),
        pytest.param("no.such.module:x", "cannot import", id="module"),
        pytest.param("tests.fixtures.journals.golden:NOPE", "no attribute", id="attribute"),
        pytest.param("tests.fixtures.journals.golden:GROUP", "is not an Operator", id="type"),
    ],
)
def test_a_bad_operator_reference_is_one_clear_error(reference: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        load_operator(reference)


def test_the_golden_operator_loads_by_reference() -> None:
    assert load_operator("tests.fixtures.journals.golden:OPERATOR") is golden_operators.OPERATOR
