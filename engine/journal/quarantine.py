"""Quarantine: a corrupt SQLite journal renamed aside, every file of it kept, so the engine
can start on a fresh one and rebuild from cluster state.

`journal.db` becomes `journal.db.corrupt-<UTC stamp>`, and its `-wal`, `-shm` and `.head`
files follow under the same new name (SQLite finds the `-wal` beside the renamed file, so
the quarantined copy opens as it was for a post-mortem). The renames are made durable by
an fsync of the directory. The writer lock file stays (it holds no data).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from engine.journal.errors import CorruptJournal, JournalError, NotAJournal
from engine.journal.files import sync_directory
from engine.journal.head_marker import marker_path

_SQLITE_MAGIC = b"SQLite format 3\x00"


def quarantinable(error: JournalError, path: Path) -> bool:
    """Whether `error`, met opening `path`, means a damaged journal (quarantine it) rather
    than a file of another program (leave it alone): a `CorruptJournal`, or a
    `NotAJournal` for a file that does not even start as an SQLite database while a
    head marker says a journal lived there."""
    if isinstance(error, CorruptJournal):
        return True
    if not isinstance(error, NotAJournal) or not marker_path(path).exists():
        return False
    try:
        with path.open("rb") as file:
            return file.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC
    except OSError:
        return False


def quarantine(path: Path, now: datetime) -> list[Path]:
    """Rename the journal at `path` and its side files aside; return the new paths, the
    database file first. Errors: `OSError` when a rename fails (nothing later is moved)."""
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    moves = [(path, target)]
    for suffix in ("-wal", "-shm"):
        moves.append((path.with_name(path.name + suffix), target.with_name(target.name + suffix)))
    moves.append((marker_path(path), marker_path(target)))
    moved = []
    for source, destination in moves:
        if source.exists():
            os.rename(source, destination)
            moved.append(destination)
    sync_directory(path.parent)
    return moved
