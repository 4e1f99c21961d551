"""One suite, every journal backend: the `Journal` contract of engine/journal/store.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.journal import (
    ANY_VERSION,
    ConcurrencyError,
    CorruptJournal,
    JournalClosed,
    NewEvent,
    StaleTerm,
)
from engine.journal.codec import REDACTED
from engine.journal.location import open_journal
from engine.journal.memory import MemoryJournal
from tests.support.postgres import Schemas, postgres_schemas, postgres_server

__all__ = ["postgres_schemas", "postgres_server"]  # fixtures the postgres backend uses

BACKENDS = ["memory", "sqlite", "postgres"]


class Opener:
    """Opens journals of one backend, each in a new place, and closes them at the end."""

    def __init__(
        self, backend: str, request: pytest.FixtureRequest, tmp_path: Path, *, prefix: str = "j"
    ) -> None:
        self.backend = backend
        self._request = request
        self._tmp_path = tmp_path
        self._prefix = prefix
        self.opened: list[Any] = []
        self._places: dict[int, str] = {}

    async def __call__(self, **options: Any) -> Any:
        if self.backend == "memory":
            journal: Any = MemoryJournal(**options)
        else:
            place = self._new_place()
            journal = await open_journal(place, **options)
            self._places[id(journal)] = place
        self.opened.append(journal)
        return journal

    async def reopen(self, journal: Any) -> Any | None:
        """A second journal on the same place as `journal`; None for memory."""
        place = self._places.get(id(journal))
        if place is None:
            return None
        again = await open_journal(place)
        self.opened.append(again)
        return again

    def _new_place(self) -> str:
        if self.backend == "postgres":
            schemas: Schemas = self._request.getfixturevalue("postgres_schemas")
            return schemas.new()
        return str(self._tmp_path / f"{self._prefix}{len(self.opened)}.db")


@pytest.fixture(params=BACKENDS)
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    backend = Opener(request.param, request, tmp_path)
    yield backend
    for journal in backend.opened:
        await journal.close()


@pytest.fixture
async def journal(opener: Opener) -> Any:
    return await opener(clock=FakeClock())


def ev(type_: str = "Observed", key: str | None = None, **data: Any) -> NewEvent:
    return NewEvent(type=type_, data=data, idempotency_key=key)


async def test_positions_are_gap_free_and_versions_count_per_stream(journal: Any) -> None:
    assert await journal.append("a", [ev(), ev()]) == (1, 2)
    assert await journal.append("b", [ev()]) == (3,)
    assert await journal.append("a", [ev()]) == (4,)
    assert [r.stream_version for r in await journal.read_stream("a")] == [1, 2, 3]
    assert await journal.stream_version("a") == 3
    assert await journal.stream_version("b") == 1
    assert await journal.stream_version("never") == 0


async def test_expected_version_zero_means_the_stream_must_be_empty(journal: Any) -> None:
    assert await journal.append("s", [ev()], expected_version=0) == (1,)
    with pytest.raises(ConcurrencyError) as raised:
        await journal.append("s", [ev()], expected_version=0)
    assert raised.value.actual == 1
    assert "'s'" in str(raised.value)


async def test_stale_expected_version_writes_nothing(journal: Any) -> None:
    await journal.append("s", [ev(), ev()])
    with pytest.raises(ConcurrencyError):
        await journal.append("s", [ev(), ev()], expected_version=1)
    assert await journal.stream_version("s") == 2
    assert [r.position async for r in journal.read_all()] == [1, 2]
    assert await journal.append("s", [ev()], expected_version=2) == (3,)


async def test_any_version_skips_the_check(journal: Any) -> None:
    await journal.append("s", [ev()])
    assert await journal.append("s", [ev()], expected_version=ANY_VERSION) == (2,)


async def test_repeated_idempotency_key_writes_nothing_and_returns_the_first(
    journal: Any,
) -> None:
    assert await journal.append("s", [ev("EffectStarted", key="u:1:apply")]) == (1,)
    again = await journal.append("s", [ev("EffectStarted", key="u:1:apply")], expected_version=7)
    assert again == (1,)
    assert [r.position async for r in journal.read_all()] == [1]
    found = await journal.find_by_key("u:1:apply")
    assert found is not None
    assert found.position == 1
    assert await journal.find_by_key("missing") is None


async def test_a_batch_mixing_new_and_repeated_keys_writes_only_the_new(journal: Any) -> None:
    await journal.append("s", [ev(key="k1")])
    assert await journal.append("s", [ev(key="k1"), ev(key="k2"), ev(key="k2")]) == (1, 2, 2)
    assert await journal.stream_version("s") == 2


async def test_a_batch_with_a_new_key_still_checks_the_expected_version(journal: Any) -> None:
    await journal.append("s", [ev(key="k1")])
    with pytest.raises(ConcurrencyError):
        await journal.append("s", [ev(key="k1"), ev(key="k2")], expected_version=0)
    assert await journal.find_by_key("k2") is None


async def test_read_stream_starts_at_the_given_version(journal: Any) -> None:
    await journal.append("s", [ev(n=1), ev(n=2), ev(n=3)])
    assert [r.data["n"] for r in await journal.read_stream("s", 2)] == [2, 3]
    assert await journal.read_stream("s", 4) == []
    assert await journal.read_stream("unknown") == []


async def test_read_all_yields_every_record_in_order_across_batches(journal: Any) -> None:
    for n in range(7):
        await journal.append(f"s{n % 3}", [ev(n=n)])
    assert [r.data["n"] async for r in journal.read_all(batch_size=2)] == list(range(7))
    assert [r.position async for r in journal.read_all(5, batch_size=2)] == [5, 6, 7]


async def test_subscribe_replays_then_tails_new_commits(journal: Any) -> None:
    await journal.append("s", [ev(n=0)])
    seen: list[int] = []

    async def follow() -> None:
        async for record in journal.subscribe():
            seen.append(record.data["n"])
            if len(seen) == 3:
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    assert seen == [0]
    await journal.append("s", [ev(n=1)])
    await journal.append("t", [ev(n=2)])
    await asyncio.wait_for(follower, 5)
    assert seen == [0, 1, 2]


async def test_subscribe_ends_when_the_journal_closes(journal: Any) -> None:
    async def follow() -> list[int]:
        return [r.position async for r in journal.subscribe()]

    follower = asyncio.create_task(follow())
    await journal.append("s", [ev()])
    await asyncio.sleep(0.01)
    await journal.close()
    assert await asyncio.wait_for(follower, 5) == [1]


async def test_snapshot_keeps_the_newest_state(journal: Any) -> None:
    await journal.append("s", [ev(), ev(), ev()])
    assert await journal.load_snapshot("s") is None
    await journal.save_snapshot("s", 2, {"phase": "Provisioning"})
    await journal.save_snapshot("s", 1, {"phase": "Pending"})
    snapshot = await journal.load_snapshot("s")
    assert snapshot is not None
    assert (snapshot.version, dict(snapshot.state)) == (2, {"phase": "Provisioning"})
    with pytest.raises(ValueError, match="no version 4"):
        await journal.save_snapshot("s", 4, {})


async def test_term_is_stamped_and_never_goes_back(journal: Any) -> None:
    await journal.append("s", [ev()])
    journal.set_term(3)
    await journal.append("s", [ev()])
    assert [r.term async for r in journal.read_all()] == [0, 3]
    with pytest.raises(StaleTerm, match="lower"):
        journal.set_term(2)
    assert journal.term == 3


async def test_time_comes_from_the_injected_clock(opener: Opener) -> None:
    clock = FakeClock(start=datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC))
    journal = await opener(clock=clock)
    await journal.append("s", [ev()])
    clock.advance(1.5)
    await journal.append("s", [ev()])
    ats = [r.at async for r in journal.read_all()]
    assert ats == [clock.start, datetime(2030, 5, 6, 7, 8, 10, 500000, tzinfo=UTC)]


async def test_configured_paths_are_redacted_before_writing(opener: Opener) -> None:
    journal = await opener(clock=FakeClock(), redact=("spec.password",))
    data = {
        "spec": {"password": "hunter2", "size": 3},
        "object": {"spec": {"password": "hunter2"}, "items": [{"spec": {"password": "x"}}]},
    }
    await journal.append("s", [NewEvent(type="Observed", data=data)])
    [record] = await journal.read_stream("s")
    assert record.data == {
        "spec": {"password": REDACTED, "size": 3},
        "object": {"spec": {"password": REDACTED}, "items": [{"spec": {"password": REDACTED}}]},
    }
    assert data["spec"]["password"] == "hunter2"  # the caller's payload is untouched


async def test_concurrent_appends_get_distinct_gap_free_positions(journal: Any) -> None:
    results = await asyncio.gather(*(journal.append(f"s{n % 5}", [ev(n=n)]) for n in range(100)))
    positions = sorted(p for result in results for p in result)
    assert positions == list(range(1, 101))
    assert await journal.verify() == 100


async def test_one_callers_concurrency_error_does_not_fail_the_others(journal: Any) -> None:
    await journal.append("busy", [ev()])
    results = await asyncio.gather(
        journal.append("a", [ev()]),
        journal.append("busy", [ev()], expected_version=0),
        journal.append("b", [ev()]),
        return_exceptions=True,
    )
    assert isinstance(results[1], ConcurrencyError)
    assert sorted(p for r in (results[0], results[2]) for p in r) == [2, 3]


async def test_checksums_chain_each_record_to_the_previous(journal: Any) -> None:
    await journal.append("s", [ev(n=1), ev(n=2)])
    first, second = [r async for r in journal.read_all()]
    assert len(first.checksum) == len(second.checksum) == 64
    assert first.checksum != second.checksum
    assert await journal.verify() == 2


async def test_a_payload_that_is_not_json_is_refused(journal: Any) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        await journal.append("s", [NewEvent(type="Observed", data={"x": object()})])
    assert await journal.stream_version("s") == 0


async def test_a_closed_journal_refuses_appends(journal: Any) -> None:
    await journal.close()
    with pytest.raises(JournalClosed):
        await journal.append("s", [ev()])


async def test_streams_lists_every_stream_with_records(journal: Any) -> None:
    await journal.append("a", [ev()])
    await journal.append("b", [ev()])
    assert sorted(await journal.streams()) == ["a", "b"]


@pytest.mark.parametrize("target", BACKENDS)
async def test_an_export_imports_into_any_backend_with_the_same_checksums(
    journal: Any, target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    journal.set_term(2)
    await journal.append("a", [ev(key="k", n=1.5, text="é")])
    await journal.append("b", [NewEvent(type="T", data={}, trace_id="t", span_id="s")])
    records = [r async for r in journal.read_all()]
    copy: Any = await Opener(target, request, tmp_path, prefix="copy")()
    try:
        assert await copy.import_records(records) == 2
        assert [r async for r in copy.read_all()] == records
        assert copy.term == 2
        assert await copy.append("a", [ev()]) == (3,)
        assert await copy.append("b", [ev(key="k")]) == (1,)
    finally:
        await copy.close()


async def test_import_refuses_a_tampered_record(journal: Any) -> None:
    source = MemoryJournal()
    await source.append("a", [ev(n=1), ev(n=2)])
    records = [r async for r in source.read_all()]
    tampered = [records[0], replace(records[1], data={"n": 3})]
    with pytest.raises(CorruptJournal, match="position 2"):
        await journal.import_records(tampered)
    assert [r async for r in journal.read_all()] == []


async def test_tail_reads_after_appends_equal_the_records_read_after_reopening(
    opener: Opener,
) -> None:
    journal = await opener(clock=FakeClock())
    await journal.append("s", [ev(n=1), ev(n=2)])
    await journal.append("t", [ev(n=1)])
    await journal.append("s", [ev("TransitionTaken", key="s:k", n=3)])
    live = [await journal.read_stream("s", v) for v in (1, 2, 3, 4)]
    await journal.close()
    again = await opener.reopen(journal)  # the stored rows, read by a fresh reader
    if again is not None:
        assert [await again.read_stream("s", v) for v in (1, 2, 3, 4)] == live
    assert [len(records) for records in live] == [3, 2, 1, 0]
    assert [r.data["n"] for r in live[0]] == [1, 2, 3]
