"""`read_all` over a realistic lifecycle journal: every stored row in order across
batches, from any position, every corruption caught at its position, clean early stops."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.bench.journal import write_raw
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal import CorruptJournal, NewEvent
from engine.journal.codec import row_of
from engine.journal.sqlite import SqliteJournal

LARGE = 5_000


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    asyncio.run(write_raw(path, lifecycle_rows(1_200), "NORMAL"))
    return path


async def read(path: Path, *, start: int = 1, batch_size: int = 100) -> list[tuple[object, ...]]:
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        return [tuple(row_of(r)) async for r in journal.read_all(start, batch_size=batch_size)]
    finally:
        await journal.close()


def stored_rows(path: Path) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT * FROM records ORDER BY position").fetchall()
    finally:
        connection.close()


def change(path: Path, statement: str) -> None:
    connection = sqlite3.connect(path)
    try:
        connection.execute("DROP TRIGGER IF EXISTS records_move_chain_head")
        connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


async def test_read_all_returns_every_stored_row_in_order_across_batches(
    journal_file: Path,
) -> None:
    assert await read(journal_file, batch_size=7) == stored_rows(journal_file)


async def test_read_all_from_a_middle_position_chains_from_the_record_before(
    journal_file: Path,
) -> None:
    assert await read(journal_file, start=777) == stored_rows(journal_file)[776:]
    assert await read(journal_file, start=5_000) == []


async def test_read_all_names_the_position_of_a_changed_payload(journal_file: Path) -> None:
    change(journal_file, "UPDATE records SET data = data || ' ' WHERE position = 640")
    with pytest.raises(CorruptJournal, match="position 640"):
        await read(journal_file)


async def test_read_all_names_the_position_of_a_missing_record(journal_file: Path) -> None:
    change(journal_file, "DELETE FROM records WHERE position = 333")
    with pytest.raises(CorruptJournal, match="position 333"):
        await read(journal_file)


async def test_read_all_stopped_early_leaves_the_journal_usable(journal_file: Path) -> None:
    journal = await SqliteJournal.open(journal_file, readonly=True)
    try:
        for _ in range(3):
            async for record in journal.read_all(batch_size=50):
                if record.position == 120:
                    break
        assert len([r async for r in journal.read_all(1100)]) == 101
    finally:
        await journal.close()


async def test_a_large_read_of_a_writable_journal_sees_every_record_and_new_commits(
    tmp_path: Path,
) -> None:
    journal = await SqliteJournal.open(tmp_path / "live.db", synchronous="NORMAL")
    try:
        events = [NewEvent("Observed", {"n": n}) for n in range(LARGE)]
        await journal.append("s", events)
        seen = [r.data["n"] async for r in journal.read_all(batch_size=999)]
        assert seen == list(range(LARGE))
        await journal.append("s", [NewEvent("Observed", {"n": LARGE})])
        assert [r.position async for r in journal.read_all(LARGE)] == [
            LARGE,
            LARGE + 1,
        ]
    finally:
        await journal.close()
