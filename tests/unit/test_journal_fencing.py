"""Shard fencing at the journal level: an append carrying (shard, term) is refused once a
higher term is recorded for the shard (the planner, and the memory journal using it)."""

from __future__ import annotations

import pytest

from engine.journal import ConcurrencyError, NewEvent
from engine.journal.batch import Fence, Head, PendingAppend, plan_batch
from engine.journal.codec import encode_event
from engine.journal.errors import FencedOut
from engine.journal.memory import MemoryJournal


def pending(stream: str, fence: Fence | None, expected_version: int = -1) -> PendingAppend:
    return PendingAppend(stream, (encode_event(NewEvent("Observed")),), expected_version, fence)


@pytest.mark.parametrize(
    ("recorded", "offered", "refused", "raised"),
    [
        pytest.param({}, 1, False, {"a": 1}, id="first-term-is-recorded"),
        pytest.param({"a": 3}, 3, False, {}, id="same-term-passes-and-records-nothing"),
        pytest.param({"a": 3}, 4, False, {"a": 4}, id="higher-term-passes-and-is-recorded"),
        pytest.param({"a": 3}, 2, True, {}, id="lower-term-is-refused"),
        pytest.param({"b": 9}, 1, False, {"a": 1}, id="other-shards-do-not-matter"),
    ],
)
def test_a_fence_is_checked_against_the_recorded_term(
    recorded: dict[str, int], offered: int, refused: bool, raised: dict[str, int]
) -> None:
    result = plan_batch(
        [pending("s", Fence("a", offered))],
        head=Head(),
        versions={},
        existing_keys={},
        at="2030-01-01T00:00:00.000000Z",
        term=1,
        shard_terms=recorded,
    )
    assert isinstance(result.outcomes[0], FencedOut) is refused
    assert len(result.rows) == (0 if refused else 1)
    assert dict(result.shard_terms) == raised


def test_a_newer_term_in_a_batch_fences_the_older_appends_after_it() -> None:
    result = plan_batch(
        [pending("s", Fence("a", 2)), pending("s", Fence("a", 1)), pending("t", None)],
        head=Head(),
        versions={},
        existing_keys={},
        at="2030-01-01T00:00:00.000000Z",
        term=1,
    )
    assert result.outcomes[0] == (1,)
    assert isinstance(result.outcomes[1], FencedOut)
    assert result.outcomes[2] == (2,)
    assert dict(result.shard_terms) == {"a": 2}


def test_an_append_refused_for_its_version_records_no_term() -> None:
    result = plan_batch(
        [pending("s", Fence("a", 5), expected_version=3)],
        head=Head(),
        versions={},
        existing_keys={},
        at="2030-01-01T00:00:00.000000Z",
        term=1,
    )
    assert isinstance(result.outcomes[0], ConcurrencyError)
    assert dict(result.shard_terms) == {}


async def test_the_memory_journal_refuses_a_deposed_shard_owner() -> None:
    journal = MemoryJournal()
    assert await journal.append("s", [NewEvent("A")], fence=Fence("shard-0", 1)) == (1,)
    assert await journal.append("s", [NewEvent("B")], fence=Fence("shard-0", 2)) == (2,)
    with pytest.raises(FencedOut) as refused:
        await journal.append("s", [NewEvent("C")], fence=Fence("shard-0", 1))
    assert (refused.value.recorded, refused.value.offered) == (2, 1)
    assert "re-acquire" in str(refused.value)
    assert await journal.shard_term("shard-0") == 2
    assert await journal.stream_version("s") == 2
