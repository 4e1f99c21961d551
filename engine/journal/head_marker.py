"""The head marker: the last committed position and checksum, kept outside the database.

A SQLite commit lives in the `-wal` file until a checkpoint copies it into the database
file. When the `-wal` of a crashed writer is deleted, records and the chain head row go
back together, so nothing inside the file shows the loss (J9). The marker `PATH.head`
is rewritten after every commit (on the writer's thread, in the same round trip), so a
journal that opens behind its marker has lost committed records.

The marker is written after the commit's own fsync and is not fsynced itself: it is
never ahead of what the database holds durably (no false alarm after a power loss), it
survives any process crash (it is in the page cache), and it costs one `pwrite` per
commit. An fdatasync per commit as well halved the single-writer append rate
(docs/journal.md), for the one case it adds: a `-wal` deleted after a power loss.

The marker is one fixed-size line, rewritten in place with one `pwrite`, carrying its
own digest: a marker that does not read back whole is ignored (it can only be torn by an
operating-system crash, and a missing marker only weakens the check, never fails it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from engine.journal.batch import Head
from engine.journal.errors import CorruptJournal
from engine.journal.files import FILE_MODE

_MAGIC = "engine-journal-head 1"
_DIGEST_CHARS = 16


def marker_path(journal: Path) -> Path:
    """Where the marker of the journal at `journal` lives: beside it, `NAME.head`."""
    return journal.with_name(journal.name + ".head")


def _line(head: Head) -> bytes:
    body = f"{_MAGIC} {head.position:020d} {head.checksum}"
    digest = hashlib.sha256(body.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{body} {digest}\n".encode()


def read_marker(journal: Path) -> Head | None:
    """The head the marker of `journal` records; None when there is no whole marker."""
    try:
        text = marker_path(journal).read_bytes().decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None
    parts = text.rstrip("\n").split(" ")
    if len(parts) != 5 or " ".join(parts[:2]) != _MAGIC or not parts[2].isdigit():
        return None
    head = Head(int(parts[2]), parts[3])
    return head if _line(head) == text.encode() else None


def check_marker(journal: Path, head: Head, marked: Head | None) -> None:
    """Refuse a journal whose chain head is behind (or beside) what its marker recorded.

    `marked` is `read_marker(journal)`, read *before* `head` (a running writer only moves
    the marker after its commit, so a marker read first is never ahead of a live file).
    Errors: `CorruptJournal` naming the position of the first lost record when the
    marker is ahead of `head` (committed records are gone: a deleted `-wal`, a restored
    older copy), or when both name the same position with different checksums.
    """
    if marked is None:
        return
    if marked.position > head.position:
        raise CorruptJournal(
            str(journal),
            f"records {head.position + 1} to {marked.position} were committed but are gone "
            f"(the head marker {marker_path(journal).name} records position "
            f"{marked.position}; a -wal file removed after a crash, or an older copy)",
            head.position + 1,
        )
    if marked.position == head.position and marked.checksum != head.checksum:
        raise CorruptJournal(
            str(journal),
            f"the last record's checksum differs from the one the head marker "
            f"{marker_path(journal).name} recorded",
            head.position,
        )


def discard_marker(journal: Path) -> None:
    """Remove the marker of `journal` (a new, empty journal file starts without one)."""
    with contextlib.suppress(FileNotFoundError):
        marker_path(journal).unlink()


@dataclass(slots=True)
class HeadMarker:
    """The open marker file of a writer: `write` records a committed head."""

    path: Path
    fd: int

    @classmethod
    def open(cls, journal: Path) -> HeadMarker:
        """Open (creating, 0600) the marker of `journal`."""
        path = marker_path(journal)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            os.close(fd)
            raise
        return cls(path, fd)

    def write(self, head: Head) -> None:
        """Record `head` (called on the writer's thread right after its commit)."""
        os.pwrite(self.fd, _line(head), 0)

    def close(self) -> None:
        os.close(self.fd)
