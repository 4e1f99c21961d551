"""J9: a `-wal` deleted after a kill -9 loses committed records and the chain head row
together; the head marker beside the file still names the lost tail, so opening the
journal (and `engine journal check`) reports it instead of carrying on from the past."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from engine.journal import NewEvent
from engine.journal.chain_check import check_journal
from engine.journal.errors import CorruptJournal
from engine.journal.head_marker import marker_path, read_marker
from engine.journal.sqlite import SqliteJournal

BEFORE = 5
AFTER = 20


async def _append(path: Path, count: int, *, close: bool) -> int:
    journal = await SqliteJournal.open(path)
    position = 0
    for n in range(count):
        [position] = await journal.append(f"s{n % 3}", [NewEvent("Observed", {"n": n})])
    if close:
        await journal.close()
    return position


def _child(path: Path, report: int) -> None:
    try:
        position = asyncio.run(_append(path, AFTER, close=False))
        os.write(report, f"{position}\n".encode())
        signal.pause()  # acknowledged and still open: the parent kills it here
    finally:
        os._exit(1)


def _killed_writer(path: Path) -> int:
    """Run a writer in a forked process, let it acknowledge AFTER appends, SIGKILL it;
    return the last acknowledged position."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(path, write_end)
    os.close(write_end)
    with os.fdopen(read_end) as lines:
        acknowledged = int(lines.readline())
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return acknowledged


def _marked(path: Path) -> int:
    marked = read_marker(path)
    assert marked is not None
    return marked.position


@pytest.fixture
def killed_journal(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "journal.db"
    asyncio.run(_append(path, BEFORE, close=True))  # checkpointed into the file on close
    acknowledged = _killed_writer(path)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 0  # the acknowledged tail lives only in the -wal
    return path, acknowledged


async def test_a_deleted_wal_after_a_kill_is_detected_on_open(
    killed_journal: tuple[Path, int],
) -> None:
    path, acknowledged = killed_journal
    assert _marked(path) == acknowledged
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink()
    with pytest.raises(CorruptJournal) as refused:
        await SqliteJournal.open(path)
    assert refused.value.position == BEFORE + 1
    assert f"records {BEFORE + 1} to {acknowledged}" in str(refused.value)
    with pytest.raises(CorruptJournal):
        await SqliteJournal.open(path, readonly=True)
    with pytest.raises(CorruptJournal):
        check_journal(path)
    assert _marked(path) == acknowledged  # kept for the post-mortem


async def test_a_kept_wal_after_a_kill_opens_with_every_acknowledged_record(
    killed_journal: tuple[Path, int],
) -> None:
    path, acknowledged = killed_journal
    journal = await SqliteJournal.open(path)
    try:
        assert journal.head.position == acknowledged
        assert await journal.verify() == acknowledged
    finally:
        await journal.close()
    assert check_journal(path).records == acknowledged


async def test_a_new_file_in_place_of_a_journal_starts_without_the_old_marker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    await _append(path, 3, close=True)
    assert marker_path(path).exists()
    path.unlink()
    journal = await SqliteJournal.open(path)
    try:
        assert journal.head.position == 0
        await journal.append("s", [NewEvent("Observed", {})])
    finally:
        await journal.close()
    assert _marked(path) == 1


async def test_a_torn_marker_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    await _append(path, 3, close=True)
    text = marker_path(path).read_bytes()
    marker_path(path).write_bytes(text[:40])
    assert read_marker(path) is None
    journal = await SqliteJournal.open(path)
    try:
        assert journal.head.position == 3
    finally:
        await journal.close()
    assert _marked(path) == 3  # rewritten at open
