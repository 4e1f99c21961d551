"""J3: the `-wal` torn in the middle of a frame, as a crash during an append leaves it.

The files of a live journal are what a SIGKILL would leave at that moment (every commit
is in the `-wal`, written through to the OS; nothing is checkpointed yet): three
acknowledged appends are taken as one crash image, then a fourth append is made and its
`-wal` cut in the middle of its last frame. With the head marker of the three (the
fourth never acknowledged: a torn append), SQLite drops the torn transaction by its
frame checksums and every acknowledged record is there, the chain verifies and the next
append continues it (R1). With the head marker of the fourth (an acknowledged, fsynced
commit the disk then tore), the gap is detected: the open refuses the journal, naming
the lost record, and so does `engine journal check`, so the engine would quarantine it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.journal import CorruptJournal, NewEvent
from engine.journal.chain_check import check_journal
from engine.journal.sqlite import SqliteJournal

FRAME_HEADER = 24


def _image(journal: Path, into: Path) -> Path:
    """A copy of the journal's files as they are now (what a kill would leave)."""
    into.mkdir()
    for name in ("journal.db", "journal.db-wal", "journal.db.head"):
        shutil.copy2(journal.with_name(name), into / name)
    return into / "journal.db"


async def _torn_after_three(tmp_path: Path) -> tuple[Path, Path]:
    """Crash images after three acknowledged appends: the first as it was, the second
    with the fourth append's `-wal` cut mid-frame and the marker of the fourth."""
    journal = await SqliteJournal.open(tmp_path / "live" / "journal.db")
    try:
        for n in range(1, 4):
            await journal.append("s", [NewEvent("Observed", {"n": n, "pad": "p" * 500})])
        three = _image(journal.path, tmp_path / "three")
        await journal.append("s", [NewEvent("Observed", {"n": 4, "pad": "q" * 500})])
        four = _image(journal.path, tmp_path / "four")
    finally:
        await journal.close()
    wal_three = three.with_name("journal.db-wal").stat().st_size
    wal = four.with_name("journal.db-wal")
    assert wal.stat().st_size - wal_three > FRAME_HEADER + 2048  # the fourth's frames
    with wal.open("r+b") as file:
        file.truncate(wal.stat().st_size - 2048)  # the middle of its last page frame
    return three, four


async def test_a_torn_append_loses_only_the_unacknowledged_commit(tmp_path: Path) -> None:
    three, four = await _torn_after_three(tmp_path)
    shutil.copy2(four.with_name("journal.db-wal"), three.with_name("journal.db-wal"))
    assert check_journal(three).records == 3
    journal = await SqliteJournal.open(three)
    try:
        assert [r.data["n"] for r in await journal.read_stream("s")] == [1, 2, 3]
        await journal.append("s", [NewEvent("Observed", {"n": 5})])
        assert await journal.verify() == 4
    finally:
        await journal.close()


async def test_a_torn_acknowledged_commit_is_detected_not_opened(tmp_path: Path) -> None:
    _three, four = await _torn_after_three(tmp_path)
    with pytest.raises(CorruptJournal, match="position 4") as refused:
        await SqliteJournal.open(four)
    assert "-wal" in str(refused.value), refused.value
    with pytest.raises(CorruptJournal, match="position 4"):
        check_journal(four)
