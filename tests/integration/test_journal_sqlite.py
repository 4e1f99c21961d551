"""The SQLite journal on a real file: persistence, file modes, the writer lock, read-only use."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.journal import JournalLocked, JournalUnavailable, NewEvent
from engine.journal.sqlite import SqliteJournal


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)  # the widest umask: modes must not depend on it
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
async def test_files_are_0600_and_a_created_directory_0700(tmp_path: Path) -> None:
    path = tmp_path / "state" / "deeper" / "journal.db"
    journal = await SqliteJournal.open(path)
    try:
        await journal.append("s", [NewEvent("Observed")])
        for name in ("journal.db", "journal.db-wal", "journal.db-shm", "journal.db.lock"):
            assert mode_of(path.parent / name) == 0o600, name
        assert mode_of(path.parent) == 0o700
        assert mode_of(path.parent.parent) == 0o700
    finally:
        await journal.close()


async def test_records_terms_and_versions_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path)
    journal.set_term(4)
    await journal.append("s", [NewEvent("Observed", {"n": 1}, idempotency_key="k")])
    await journal.append("s", [NewEvent("Observed", {"n": 2})])
    await journal.save_snapshot("s", 2, {"phase": "Ready"})
    await journal.close()

    reopened = await SqliteJournal.open(path)
    try:
        assert reopened.term == 4
        assert await reopened.stream_version("s") == 2
        assert await reopened.append("s", [NewEvent("Observed", idempotency_key="k")]) == (1,)
        assert await reopened.append("s", [NewEvent("Observed")], expected_version=2) == (3,)
        snapshot = await reopened.load_snapshot("s")
        assert snapshot is not None
        assert snapshot.state == {"phase": "Ready"}
        assert await reopened.verify() == 3
    finally:
        await reopened.close()


async def test_a_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path)
    try:
        with pytest.raises(JournalLocked, match=r"open for writing by another process"):
            await SqliteJournal.open(path)
    finally:
        await journal.close()
    again = await SqliteJournal.open(path)  # closing released the lock
    await again.close()


async def test_a_second_writer_process_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path)
    try:
        program = (
            "import asyncio, sys\n"
            "from engine.journal.sqlite import SqliteJournal\n"
            "asyncio.run(SqliteJournal.open(sys.argv[1]))\n"
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            program,
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode != 0
        assert "JournalLocked" in err.decode()
        assert str(path) in err.decode()
    finally:
        await journal.close()


async def test_a_reader_sees_a_live_writers_commits_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    writer = await SqliteJournal.open(path)
    reader = await SqliteJournal.open(path, readonly=True)
    try:
        await writer.append("s", [NewEvent("Observed", {"n": 1})])
        assert [r.data async for r in reader.read_all()] == [{"n": 1}]
        with pytest.raises(JournalUnavailable, match="read-only"):
            await reader.append("s", [NewEvent("Observed")])
        assert [r.position async for r in reader.subscribe()] == [1]  # ends at the end
    finally:
        await reader.close()
        await writer.close()


async def test_a_directory_is_refused_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(JournalUnavailable, match=f"{tmp_path} is a directory"):
        await SqliteJournal.open(tmp_path)


async def test_a_missing_file_cannot_be_opened_read_only(tmp_path: Path) -> None:
    with pytest.raises(JournalUnavailable, match="does not exist"):
        await SqliteJournal.open(tmp_path / "absent.db", readonly=True)
    assert not (tmp_path / "absent.db").exists()


async def test_normal_synchronous_is_accepted_and_others_refused(tmp_path: Path) -> None:
    journal = await SqliteJournal.open(tmp_path / "j.db", synchronous="NORMAL")
    try:
        assert await journal.append("s", [NewEvent("Observed")]) == (1,)
    finally:
        await journal.close()
    with pytest.raises(ValueError, match="FULL or NORMAL"):
        await SqliteJournal.open(tmp_path / "k.db", synchronous="OFF")  # type: ignore[arg-type]


async def test_closing_checkpoints_and_removes_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path)
    await journal.append("s", [NewEvent("Observed")])
    await journal.close()
    assert not (tmp_path / "journal.db-wal").exists()
