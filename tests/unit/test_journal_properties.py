"""Property: any interleaving of concurrent appends keeps positions, versions and keys sound."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.journal import ANY_VERSION, ConcurrencyError, NewEvent
from engine.journal.memory import MemoryJournal
from engine.journal.sqlite import SqliteJournal

event_keys = st.one_of(st.none(), st.sampled_from([f"key-{n}" for n in range(6)]))
append_steps = st.tuples(
    st.integers(0, 3),  # stream
    st.lists(event_keys, min_size=1, max_size=3),  # one idempotency key (or none) per event
    st.integers(0, 3),  # yields before appending: shifts the interleaving
    st.booleans(),  # state an expected version read just before (it may be stale)
)
workloads = st.lists(st.lists(append_steps, min_size=1, max_size=5), min_size=1, max_size=8)


async def run_workload(journal: Any, workload: list[list[Any]]) -> None:
    answered: list[tuple[tuple[int, ...], list[str], list[str | None]]] = []

    async def worker(task: int, steps: list[Any]) -> None:
        for number, (stream, keys, yields, expect) in enumerate(steps):
            tags = [f"{task}.{number}.{i}" for i in range(len(keys))]
            expected = await journal.stream_version(f"s{stream}") if expect else ANY_VERSION
            for _ in range(yields):
                await asyncio.sleep(0)
            events = [
                NewEvent("Observed", {"tag": tag}, idempotency_key=key)
                for tag, key in zip(tags, keys, strict=True)
            ]
            try:
                positions = await journal.append(f"s{stream}", events, expected_version=expected)
            except ConcurrencyError:
                continue
            answered.append((positions, tags, keys))

    await asyncio.gather(*(worker(n, steps) for n, steps in enumerate(workload)))
    records = [r async for r in journal.read_all(batch_size=7)]
    assert [r.position for r in records] == list(range(1, len(records) + 1))
    versions: dict[str, list[int]] = defaultdict(list)
    for record in records:
        versions[record.stream].append(record.stream_version)
    for stream_versions in versions.values():
        assert stream_versions == list(range(1, len(stream_versions) + 1))
    keys = Counter(r.idempotency_key for r in records if r.idempotency_key is not None)
    assert all(count == 1 for count in keys.values())
    by_position = {r.position: r for r in records}
    tag_at = {r.data["tag"]: r.position for r in records}
    for positions, tags, event_keys_of_append in answered:
        for position, tag, key in zip(positions, tags, event_keys_of_append, strict=True):
            if key is None:
                assert tag_at[tag] == position
            else:
                assert by_position[position].idempotency_key == key
    assert await journal.verify() == len(records)


@settings(max_examples=150, deadline=None)
@given(workloads)
def test_memory_journal_interleavings_keep_positions_versions_and_keys(
    workload: list[list[Any]],
) -> None:
    async def scenario() -> None:
        journal = MemoryJournal()
        await run_workload(journal, workload)
        await journal.close()

    asyncio.run(scenario())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads)
def test_sqlite_journal_interleavings_keep_positions_versions_and_keys(
    workload: list[list[Any]],
) -> None:
    async def scenario(directory: str) -> None:
        journal = await SqliteJournal.open(Path(directory) / "j.db", synchronous="NORMAL")
        try:
            await run_workload(journal, workload)
        finally:
            await journal.close()

    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(scenario(directory))
