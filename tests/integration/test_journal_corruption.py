"""Damaged, foreign and newer journal files each give their clear error; none is replayed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.journal import (
    CorruptJournal,
    JournalError,
    NewEvent,
    NotAJournal,
    SchemaTooNew,
)
from engine.journal.sqlite import SqliteJournal


async def write_journal(path: Path, count: int) -> None:
    journal = await SqliteJournal.open(path)
    try:
        for n in range(1, count + 1):
            data = {"note": f"marker-{n:04d}", "padding": "p" * 300}
            await journal.append(f"s{n % 3}", [NewEvent("Observed", data)])
        await journal.save_snapshot("s1", 1, {"phase": "snapshot-marker"})
    finally:
        await journal.close()


def flip_bit_in(path: Path, marker: bytes) -> None:
    content = bytearray(path.read_bytes())
    at = content.index(marker) + len(marker) - 1
    content[at] ^= 0x01
    path.write_bytes(bytes(content))


def run_sql(path: Path, *statements: str) -> None:
    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def integrity_of(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


async def read_everything(path: Path) -> int:
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        return len([r async for r in journal.read_all()])
    finally:
        await journal.close()


async def verify(path: Path) -> int:
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        return await journal.verify()
    finally:
        await journal.close()


async def test_a_flipped_bit_passes_sqlite_but_fails_the_chain_at_its_position(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 5)
    flip_bit_in(path, b"marker-0003")
    assert integrity_of(path) == "ok"  # SQLite alone does not notice
    with pytest.raises(CorruptJournal, match=r"at position 3: the record's checksum"):
        await read_everything(path)
    with pytest.raises(CorruptJournal, match="position 3"):
        await verify(path)


async def test_a_flipped_bit_fails_the_streams_own_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 6)
    flip_bit_in(path, b"marker-0004")
    journal = await SqliteJournal.open(path)
    try:
        assert len(await journal.read_stream("s0")) == 2  # positions 3 and 6 are intact
        with pytest.raises(CorruptJournal, match="position 4"):
            await journal.read_stream("s1")
        with pytest.raises(CorruptJournal, match="position 4"):
            await journal.read_stream("s1", 2)
    finally:
        await journal.close()


async def test_a_changed_row_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 4)
    run_sql(path, "UPDATE records SET term = 9 WHERE position = 2")
    with pytest.raises(CorruptJournal, match="position 2"):
        await read_everything(path)


async def test_a_missing_row_in_the_middle_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 5)
    run_sql(path, "DELETE FROM records WHERE position = 3")
    with pytest.raises(CorruptJournal, match=r"position 3: a record is missing"):
        await read_everything(path)


async def test_a_missing_tail_is_detected_on_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 5)
    run_sql(path, "DELETE FROM records WHERE position = 5")
    with pytest.raises(CorruptJournal, match="the chain head is position 5"):
        await SqliteJournal.open(path)


async def test_a_tampered_snapshot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 2)
    flip_bit_in(path, b"snapshot-marker")
    journal = await SqliteJournal.open(path)
    try:
        with pytest.raises(CorruptJournal, match="snapshot of s1"):
            await journal.load_snapshot("s1")
        with pytest.raises(CorruptJournal, match="snapshot of s1"):
            await journal.verify()
    finally:
        await journal.close()


@pytest.mark.parametrize("keep", [pytest.param(0.5, id="half"), pytest.param(0.9, id="tail")])
async def test_a_truncated_file_is_reported_not_replayed(tmp_path: Path, keep: float) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 200)
    content = path.read_bytes()
    path.write_bytes(content[: int(len(content) * keep)])
    with pytest.raises((CorruptJournal, NotAJournal)) as raised:
        await verify(path)
    assert str(path) in str(raised.value)


async def test_a_foreign_sqlite_file_is_not_a_journal_and_is_left_untouched(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.db"
    run_sql(path, "CREATE TABLE accounts (id INTEGER)", "INSERT INTO accounts VALUES (1)")
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(NotAJournal, match="SQLite database of another program"):
            await SqliteJournal.open(path, readonly=readonly)
    assert path.read_bytes() == before


async def test_a_file_that_is_not_sqlite_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the records you are looking for\n" * 100)
    for readonly in (False, True):
        with pytest.raises(NotAJournal, match=f"{path} is not a journal"):
            await SqliteJournal.open(path, readonly=readonly)


async def test_a_journal_from_a_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await write_journal(path, 2)
    run_sql(path, "UPDATE schema_version SET version = 99")
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(SchemaTooNew, match="schema version 99, newer than this engine's 2"):
            await SqliteJournal.open(path, readonly=readonly)
    assert path.read_bytes() == before


async def test_every_refusal_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"\x00" * 10)
    with pytest.raises(JournalError):
        await SqliteJournal.open(path, readonly=True)
