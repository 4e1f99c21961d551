"""Moving closed history out of a SQLite journal into an archive segment.

Given per-stream cuts (archive versions up to `through_version`), one compaction writes
the cut records to a new segment beside the journal, then in one transaction records,
for every archived record whose successor stays live, its checksum (`chain_links`: the
chain continues across the cut), each partly cut stream's folded state at the cut
(`stream_cuts`), the segment (`archive_segments`), and deletes the records. The journal's
last record is never archived (it is the chain head). Needs the writer lock: the engine
must be stopped (a running engine holds it, and compaction refuses with `JournalLocked`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.failpoint import failpoint
from engine.journal import opening
from engine.journal.archive import next_segment, write_segment
from engine.journal.codec import Row, snapshot_checksum
from engine.journal.files import acquire_writer_lock, sqlite_uri
from engine.journal.schema import COLUMNS

TABLES = (
    "CREATE TABLE IF NOT EXISTS chain_links (position INTEGER PRIMARY KEY, checksum TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stream_cuts (stream TEXT PRIMARY KEY, "
    "through_version INTEGER NOT NULL, state TEXT NOT NULL, checksum TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS archive_segments (name TEXT PRIMARY KEY, "
    "records INTEGER NOT NULL, first_position INTEGER NOT NULL, "
    "last_position INTEGER NOT NULL, last_checksum TEXT NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class StreamCut:
    """Archive `stream`'s versions up to `through_version`. `state` is the canonical JSON
    of its folded state at that version (a snapshot mapping), or None when the whole
    stream goes (a stream Deleted longer than the retention)."""

    stream: str
    through_version: int
    state: str | None


@dataclass(frozen=True, slots=True)
class Compacted:
    """What one compaction archived: records, streams, and the segment written."""

    records: int
    streams: int
    segment: Path | None


def compact(path: Path, plan: Callable[[], Sequence[StreamCut]]) -> Compacted:
    """Archive the records that `plan()` names from the journal at `path`; `plan` runs
    under the writer lock, so nothing is appended between planning and cutting.

    Errors: `JournalLocked` while an engine holds the journal; `JournalUnavailable`
    when the segment cannot be written (nothing is deleted then).
    """
    lock = acquire_writer_lock(path)
    try:
        cuts = plan()
        connection = sqlite3.connect(sqlite_uri(path, readonly=False), uri=True)
        connection.isolation_level = None
        try:
            return _compact(path, connection, cuts)
        except sqlite3.Error as failure:
            raise opening.translate_error(path, failure) from None
        finally:
            connection.close()
    finally:
        lock.release()


def _compact(path: Path, connection: sqlite3.Connection, cuts: Sequence[StreamCut]) -> Compacted:
    for statement in TABLES:
        connection.execute(statement)
    last = connection.execute("SELECT MAX(position) FROM records").fetchone()[0] or 0
    head_stream = connection.execute(
        "SELECT stream FROM records WHERE position = ?", (last,)
    ).fetchone()
    chosen = [
        c for c in cuts if not (c.state is None and head_stream and c.stream == head_stream[0])
    ]
    connection.execute("CREATE TEMP TABLE cut (stream TEXT PRIMARY KEY, through INTEGER)")
    connection.executemany(
        "INSERT OR REPLACE INTO cut VALUES (?, ?)", [(c.stream, c.through_version) for c in chosen]
    )
    connection.execute(
        "CREATE TEMP TABLE gone AS SELECT r.position AS position, r.checksum AS checksum "
        "FROM records r JOIN cut c ON r.stream = c.stream WHERE r.stream_version <= c.through"
    )
    connection.execute("CREATE UNIQUE INDEX temp.gone_position ON gone (position)")
    count = connection.execute("SELECT COUNT(*) FROM gone").fetchone()[0]
    if not count:
        return Compacted(0, 0, None)
    names = [row[0] for row in connection.execute("SELECT name FROM archive_segments")]
    segment = next_segment(path, names)
    written, final = write_segment(segment, _rows(connection), journal=path.name)
    if final is None or written != count:  # the records changed under the writer lock
        raise RuntimeError(f"compaction of {path} wrote {written} of {count} records")
    failpoint("compaction.after_segment")
    first = connection.execute("SELECT MIN(position) FROM gone").fetchone()[0]
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "INSERT OR REPLACE INTO chain_links SELECT g.position, g.checksum FROM gone g "
            "WHERE g.position + 1 NOT IN (SELECT position FROM gone) "
            "AND EXISTS (SELECT 1 FROM records n WHERE n.position = g.position + 1)"
        )
        # a link whose successor is archived now is needed no more
        connection.execute(
            "DELETE FROM chain_links WHERE position + 1 IN (SELECT position FROM gone)"
        )
        for cut in chosen:
            if cut.state is None:
                connection.execute("DELETE FROM stream_cuts WHERE stream = ?", (cut.stream,))
                connection.execute("DELETE FROM snapshots WHERE stream = ?", (cut.stream,))
            else:
                connection.execute(
                    "INSERT OR REPLACE INTO stream_cuts VALUES (?, ?, ?, ?)",
                    (
                        cut.stream,
                        cut.through_version,
                        cut.state,
                        snapshot_checksum(cut.stream, cut.through_version, cut.state),
                    ),
                )
        connection.execute(
            "INSERT INTO archive_segments VALUES (?, ?, ?, ?, ?)",
            (segment.name, written, first, final.position, final.checksum),
        )
        connection.execute("DELETE FROM records WHERE position IN (SELECT position FROM gone)")
        failpoint("compaction.before_commit")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return Compacted(written, len(chosen), segment)


def _rows(connection: sqlite3.Connection) -> Iterator[Row]:
    cursor = connection.execute(
        f"SELECT {COLUMNS} FROM records WHERE position IN (SELECT position FROM gone) "
        "ORDER BY position"
    )
    while batch := cursor.fetchmany(5000):
        for row in batch:
            yield Row(*row)
