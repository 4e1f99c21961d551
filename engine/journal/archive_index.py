"""Archive segments made readable stream by stream, for `engine replay --archive`.

The segments' rows go into a temporary SQLite file with a stream index (deleted on
close), so a replay of the archived history reads one stream at a time, as it reads the
live journal, and memory does not grow with the archive. Each record is verified
against its predecessor, wherever that lives (archive, live journal, or a cut link).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path

from engine.journal.archive import read_segment
from engine.journal.codec import GENESIS
from engine.journal.errors import CorruptJournal
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record
from engine.journal.row_decoder import RowDecoder
from engine.journal.schema import COLUMNS, INSERT_RECORD

_TABLE = """CREATE TABLE records (
    position INTEGER PRIMARY KEY, stream TEXT NOT NULL, stream_version INTEGER NOT NULL,
    type TEXT NOT NULL, schema INTEGER NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL,
    idempotency_key TEXT, trace_id TEXT, span_id TEXT, term INTEGER NOT NULL,
    checksum TEXT NOT NULL, UNIQUE (stream, stream_version))"""


class ArchiveIndex:
    """The records of some archive segments, indexed by stream. Build with `build`."""

    def __init__(self, directory: tempfile.TemporaryDirectory[str], live: OfflineReader) -> None:
        self._directory = directory
        self._connection = sqlite3.connect(Path(directory.name) / "archive.db")
        self._live = live
        self._where = f"{live.path} (archive)"
        self._decoder = RowDecoder(self._where)

    @classmethod
    def build(cls, segments: Path | Iterable[Path], live: OfflineReader) -> ArchiveIndex:
        """Index `segments` (one path or several) of the journal `live` reads.

        Errors: `JournalUnavailable` for an unreadable or foreign segment.
        """
        paths = [segments] if isinstance(segments, Path) else list(segments)
        index = cls(tempfile.TemporaryDirectory(prefix="engine-archive-"), live)
        try:
            index._connection.execute("PRAGMA journal_mode = OFF")
            index._connection.execute("PRAGMA synchronous = OFF")
            index._connection.execute(_TABLE)
            for path in paths:
                index._connection.executemany(
                    INSERT_RECORD.replace("INSERT", "INSERT OR REPLACE"), read_segment(path)
                )
            index._connection.commit()
        except BaseException:
            index.close()
            raise
        return index

    def close(self) -> None:
        """Remove the temporary index."""
        self._connection.close()
        self._directory.cleanup()

    def streams(self) -> list[str]:
        """Every stream with an archived record."""
        return [r[0] for r in self._connection.execute("SELECT DISTINCT stream FROM records")]

    def first_position_after(self, at: str) -> int | None:
        """The first archived position whose time is after `at`."""
        row = self._connection.execute(
            "SELECT MIN(position) FROM records WHERE at > ?", (at,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def read_stream(self, stream: str) -> list[Record]:
        """The archived records of `stream`, in version order, each verified."""
        rows = self._connection.execute(
            f"SELECT {COLUMNS} FROM records WHERE stream = ? ORDER BY stream_version", (stream,)
        ).fetchall()
        records = []
        for expected, row in enumerate(rows, start=1):
            if row[2] != expected:
                raise CorruptJournal(self._where, f"{stream} version {expected} is missing")
            records.append(self._decoder.verified(self._previous(row[0]), row))
        return records

    def _previous(self, position: int) -> str:
        if position == 1:
            return GENESIS
        row = self._connection.execute(
            "SELECT checksum FROM records WHERE position = ?", (position - 1,)
        ).fetchone()
        found = row[0] if row else self._live.checksum_at(position - 1)
        found = found or self._live.links().get(position - 1)
        if found is None:
            raise CorruptJournal(self._where, "the record before is missing", position)
        return str(found)
