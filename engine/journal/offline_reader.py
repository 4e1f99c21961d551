"""Synchronous, verified reads of a journal file for offline tools (replay, why, check).

One stdlib `sqlite3` connection, read-only, no lock, so it runs beside a live engine.
Every record's checksum is verified against its predecessor's, across compaction cuts
(`chain_links` holds the checksum of an archived predecessor). Reads are streamed: the
whole log in position order, or one stream through the `(stream, stream_version)` index.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from engine.journal import opening, schema
from engine.journal.batch import Head
from engine.journal.codec import GENESIS
from engine.journal.errors import CorruptJournal, JournalUnavailable
from engine.journal.files import check_readable, sqlite_uri
from engine.journal.record import Record
from engine.journal.row_decoder import RowDecoder

_T = TypeVar("_T")
BATCH = 5_000
CHECK_BATCH = 20_000
_ROW = (
    "SELECT r.position, r.stream, r.stream_version, r.type, r.schema, r.at, r.data, "
    "r.idempotency_key, r.trace_id, r.span_id, r.term, r.checksum, p.checksum "
    "FROM records r LEFT JOIN records p ON p.position = r.position - 1 "
)
SELECT_ONE_STREAM = _ROW + "WHERE r.stream = ? ORDER BY r.stream_version"
SELECT_OPEN_RUNS = """
WITH newest AS (
    SELECT stream, MAX(stream_version) AS version FROM records
    WHERE type = 'EffectStarted' AND json_extract(data, '$.name') IN ({names})
    GROUP BY stream
)
SELECT s.stream FROM newest JOIN records s
    ON s.stream = newest.stream AND s.stream_version = newest.version
WHERE NOT EXISTS (
    SELECT 1 FROM records o
    WHERE o.stream = s.stream AND o.stream_version > s.stream_version
      AND o.type IN ('EffectSucceeded', 'EffectFailed')
      AND json_extract(o.data, '$.key') = json_extract(s.data, '$.key')
)
ORDER BY s.position
"""
SELECT_RETRYING_RUNS = """
SELECT r.stream FROM records r
WHERE r.type = 'RetryScheduled' AND ({keys})
  AND NOT EXISTS (
    SELECT 1 FROM records o
    WHERE o.stream = r.stream AND o.stream_version > r.stream_version
      AND o.type IN ('EffectStarted', 'EffectSucceeded', 'EffectFailed')
      AND json_extract(o.data, '$.name') IN ({names})
)
ORDER BY r.position
"""
CHECKSUM_TEXTS = (
    "SELECT position, checksum, CAST(char(0) || position || char(0) || stream || char(0) || "
    "stream_version || char(0) || type || char(0) || schema || char(0) || at || char(0) || "
    "coalesce(idempotency_key, char(1)) || char(0) || coalesce(trace_id, char(1)) || char(0) "
    "|| coalesce(span_id, char(1)) || char(0) || term || char(0) || data AS BLOB) "
    "FROM records WHERE position BETWEEN ? AND ? ORDER BY position"
)
"""Each row's position, stored checksum and the UTF-8 text its checksum covers after the
previous checksum (`row_decoder.checksum`'s text without its first field), joined by
SQLite: one Python object per row instead of twelve."""
SELECT_TYPES = _ROW + "WHERE r.type IN ({}) ORDER BY r.position"
SELECT_NEWEST_OF_TYPE = (
    _ROW + "WHERE r.position IN (SELECT MAX(position) FROM records WHERE type = ? "
    "GROUP BY stream) ORDER BY r.position"
)


class _Blocking:
    """aiosqlite's `execute`/`execute_fetchall` over a plain sqlite3 connection, so the
    async checks of `opening` run here unchanged (they never suspend)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Any:
        return self._connection.execute(sql, tuple(parameters or ()))

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[Any]:
        return self._connection.execute(sql, tuple(parameters or ())).fetchall()


def _run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """The result of a coroutine that never suspends (see `_Blocking`)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("an offline journal check suspended")  # pragma: no cover


class OfflineReader:
    """Verified reads of the journal at `path`. Open with `OfflineReader.open(path)`;
    use as a context manager (or call `close`).

    Errors: every method raises `CorruptJournal` (naming the position) on a bad checksum
    or a missing record; `open` raises the `JournalError`s of `SqliteJournal.open`.
    """

    def __init__(self, path: Path, connection: sqlite3.Connection, head: Head) -> None:
        self.path = path
        self.head = head
        self._where = str(path)
        self._connection = connection
        self._decoder = RowDecoder(self._where)
        self._links: dict[int, str] | None = None
        self._cuts: dict[str, int] | None = None
        self._tables: set[str] | None = None

    @classmethod
    def open(cls, path: Path) -> OfflineReader:
        """Open `path` read-only after the same checks as `SqliteJournal.open(readonly)`."""
        connection: sqlite3.Connection | None = None
        try:
            check_readable(path)
            connection = sqlite3.connect(sqlite_uri(path, readonly=True), uri=True)
            connection.execute("PRAGMA cache_size = -65536")  # 64 MiB: per-stream reads hop
            blocking = _Blocking(connection)
            _run(opening.identify(blocking, path, writable=False))
            head, _term = _run(opening.load_head(blocking, path))
        except BaseException as failure:
            if connection is not None:
                connection.close()
            if isinstance(failure, sqlite3.Error):
                raise opening.translate_error(path, failure) from None
            if isinstance(failure, OSError):
                raise JournalUnavailable(
                    f"cannot access journal {path}: {failure.strerror}; "
                    "check the path and the permissions of its directories"
                ) from None
            raise
        return cls(path, connection, head)

    def __enter__(self) -> OfflineReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection."""
        self._connection.close()

    def streams(self) -> list[str]:
        """Every stream with a live record (read from the stream index, no record decoded)."""
        return [row[0] for row in self.query("SELECT DISTINCT stream FROM records")]

    def ordered_streams(
        self, key: Callable[[str], tuple[str, str]], *, extra: Iterable[str] = ()
    ) -> Iterator[str]:
        """Every live stream and each of `extra`, sorted by `key(stream)` then the stream
        name, without holding them: the order is kept in a temporary table on disk."""
        connection = self._connection
        last: list[Any] = [None, ("", "")]  # SQLite asks for both parts of a stream in turn

        def part(stream: str, index: int) -> str:
            if stream != last[0]:
                last[0], last[1] = stream, key(stream)
            return str(last[1][index])

        connection.create_function("order_first", 1, lambda s: part(s, 0), deterministic=True)
        connection.create_function("order_second", 1, lambda s: part(s, 1), deterministic=True)
        try:
            connection.execute("PRAGMA temp_store = FILE")
            connection.execute("DROP TABLE IF EXISTS temp.stream_order")
            connection.execute(
                "CREATE TABLE temp.stream_order (first TEXT, second TEXT, stream TEXT, "
                "PRIMARY KEY (first, second, stream)) WITHOUT ROWID"
            )
            connection.execute(
                "INSERT OR IGNORE INTO temp.stream_order SELECT order_first(stream), "
                "order_second(stream), stream FROM (SELECT DISTINCT stream FROM records)"
            )
            connection.executemany(
                "INSERT OR IGNORE INTO temp.stream_order VALUES (?, ?, ?)",
                ((*key(stream), stream) for stream in extra),
            )
        except sqlite3.Error as failure:
            raise opening.translate_error(self.path, failure) from None
        after: tuple[str, str, str] = ("", "", "")
        while page := self.query(
            "SELECT first, second, stream FROM temp.stream_order "
            "WHERE (first, second, stream) > (?, ?, ?) ORDER BY first, second, stream LIMIT 256",
            after,
        ):
            for row in page:
                yield row[2]
            after = tuple(page[-1])

    def streams_named(self, namespace: str, name: str) -> list[str]:
        """The live streams `group/kind/NAMESPACE/NAME#uid` of any group and kind, found by
        seeks on the stream index (two per kind), never a scan of it. Groups and kinds
        hold no "/" (Kubernetes names); a stream of another shape is kept when its whole
        name is `name` (and `namespace` is empty)."""
        found: list[str] = []
        after = ""
        while row := self.query(
            "SELECT stream FROM records WHERE stream >= ? ORDER BY stream LIMIT 1", (after,)
        ):
            stream = str(row[0][0])
            parts = stream.rpartition("#")[0].split("/")
            if len(parts) < 4:  # not `group/kind/namespace/name#uid`: its name is itself
                if not namespace and stream == name:
                    found.append(stream)
                after = stream + "\x00"
                continue
            prefix = "/".join(parts[:-2]) + "/"
            wanted = f"{prefix}{namespace}/{name}#"
            found += [
                str(r[0])
                for r in self.query(
                    "SELECT DISTINCT stream FROM records WHERE stream >= ? AND stream < ?",
                    (wanted, wanted[:-1] + "$"),  # "$" follows "#"
                )
            ]
            after = prefix[:-1] + "0"  # "0" follows "/": the next group and kind
        return found

    def count(self) -> int:
        """How many records the live journal holds."""
        return int(self.query("SELECT COUNT(*) FROM records")[0][0])

    def links(self) -> dict[int, str]:
        """The checksums of archived records whose successor is live, by position."""
        if self._links is None:
            self._links = dict(self.query_optional("SELECT position, checksum FROM chain_links"))
        return self._links

    def cuts(self) -> dict[str, int]:
        """Per compacted stream, the last version moved to an archive."""
        if self._cuts is None:
            self._cuts = dict(
                self.query_optional("SELECT stream, through_version FROM stream_cuts")
            )
        return self._cuts

    def cut_state(self, stream: str) -> tuple[int, str] | None:
        """The version and state text (canonical JSON) `stream` was cut at, if it was."""
        rows = self.query_optional(
            "SELECT through_version, state FROM stream_cuts WHERE stream = ?", (stream,)
        )
        return (int(rows[0][0]), str(rows[0][1])) if rows else None

    def first_position_after(self, at: str) -> int | None:
        """The first live position whose time (encoded `at` text) is after `at`."""
        rows = self.query(schema.SELECT_FIRST_AFTER, (at,))
        return None if rows[0][0] is None else int(rows[0][0])

    def checksum_at(self, position: int) -> str | None:
        """The stored checksum of the live record at `position`, if it is live."""
        rows = self.query("SELECT checksum FROM records WHERE position = ?", (position,))
        return str(rows[0][0]) if rows else None

    def segments(self) -> list[tuple[str, int, int, str]]:
        """The archive segments compaction wrote: file name (beside the journal), record
        count, last position and last checksum, oldest first."""
        return [
            (str(name), int(count), int(last), str(digest))
            for name, count, last, digest in self.query_optional(
                "SELECT name, records, last_position, last_checksum FROM archive_segments "
                "ORDER BY name"
            )
        ]

    def read_stream(self, stream: str) -> list[Record]:
        """The live records of `stream` in version order, verified (one index lookup)."""
        rows = self.query(SELECT_ONE_STREAM, (stream,))
        expected = self.cuts().get(stream, 0) + 1
        verified = self._decoder.verified
        records = []
        for row in rows:
            if row[2] != expected:
                raise CorruptJournal(self._where, f"{stream} version {expected} is missing")
            expected += 1
            previous = row[12]  # the predecessor's checksum, joined by position
            records.append(verified(self._previous(row) if previous is None else previous, row))
        return records

    def open_runs(self, names: Sequence[str]) -> list[str]:
        """The streams whose newest attempt of an effect named in `names` (the handler
        effects: provision, finalize) started and has no outcome — work a crash or a stop
        left in flight — in the order that attempt started. One SQL pass, no record
        decoded or verified: a hint for what to resume first, not a fold."""
        marks = ", ".join("?" * len(names))
        return [row[0] for row in self.query(SELECT_OPEN_RUNS.format(names=marks), tuple(names))]

    def newest_of_type(self, type_: str) -> list[Record]:
        """Per stream, its newest live record of type `type_` (streams without one are
        left out), in position order, verified against its predecessor. One pass over
        the records table: what a restart needs to know of every stream's last
        observation without folding any stream."""
        rows = self.query(SELECT_NEWEST_OF_TYPE, (type_,))
        return [self._decoder.verified(self._previous(row), row[:12]) for row in rows]

    def retrying_runs(self, names: Sequence[str]) -> list[str]:
        """The streams whose newest attempt of an effect named in `names` failed with a
        retry scheduled and no attempt after it (a run a stop left waiting for its
        retry), in the order the retries were scheduled. One SQL pass over the
        `RetryScheduled` records; like `open_runs`, a hint, not a fold."""
        keys = " OR ".join(["json_extract(r.data, '$.key') LIKE ?"] * len(names))
        marks = ", ".join("?" * len(names))
        parameters = (*(f"%:{name}" for name in names), *names)
        sql = SELECT_RETRYING_RUNS.format(keys=keys, names=marks)
        return [row[0] for row in self.query(sql, parameters)]

    def read_types(self, types: Sequence[str]) -> list[Record]:
        """The live records of the given types, in position order, verified."""
        marks = ", ".join("?" * len(types))
        rows = self.query(SELECT_TYPES.format(marks), tuple(types))
        return [self._decoder.verified(self._previous(row), row) for row in rows]

    def read_all(self, *, batch_size: int = BATCH) -> Iterator[Record]:
        """Every live record in position order, verified; a gap is allowed only where a
        compaction recorded the archived predecessor's checksum."""
        decode = self._decoder.verified
        position, previous = 0, GENESIS
        for rows in self.row_batches(batch_size=batch_size):
            for row in rows:
                if row[0] != position + 1:
                    previous = self._linked(position, row[0])
                position = row[0]
                yield decode(previous, row)
                previous = row[11]

    def row_batches(
        self, *, batch_size: int = CHECK_BATCH
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        """Every live stored row in position order, in lists of `batch_size`, unverified
        (`RowDecoder.check_chain` verifies them)."""
        yield from self._batches(
            f"SELECT {schema.COLUMNS} FROM records ORDER BY position", (), batch_size
        )

    def checksum_texts(
        self, first: int, last: int, *, batch_size: int = CHECK_BATCH
    ) -> Generator[list[tuple[int, str, bytes]], None, None]:
        """The live rows from position `first` through `last` in position order, each as
        (position, stored checksum, the text its checksum covers: see `CHECKSUM_TEXTS`),
        in lists of `batch_size`, unverified (`RowDecoder.check_text_chain` verifies)."""
        yield from self._batches(CHECKSUM_TEXTS, (first, last), batch_size)

    def _batches(
        self, sql: str, parameters: tuple[Any, ...], batch_size: int
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        """The rows of `sql` in lists of `batch_size`; a SQLite error as the journal's."""
        cursor = self._connection.execute(sql, parameters)
        try:
            while rows := cursor.fetchmany(batch_size):
                yield rows
        except sqlite3.Error as failure:
            raise opening.translate_error(self.path, failure) from None
        finally:
            with contextlib.suppress(sqlite3.ProgrammingError):  # the reader closed first
                cursor.close()

    def rows_with_previous(
        self, *, batch_size: int = BATCH
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """Every live stored row in position order, with the checksum it must chain to
        (not yet verified: the caller verifies, see `RowDecoder`)."""
        position, previous = 0, GENESIS
        for rows in self.row_batches(batch_size=batch_size):
            for row in rows:
                if row[0] != position + 1:
                    previous = self._linked(position, row[0])
                position = row[0]
                yield previous, row
                previous = row[11]

    def _linked(self, position: int, after_gap: int) -> str:
        """The archived checksum `after_gap` chains to, after live `position`.
        Errors: `CorruptJournal` when no compaction recorded it (a record is missing)."""
        linked = self.links().get(after_gap - 1)
        if linked is None:
            raise CorruptJournal(self._where, "a record is missing", position + 1)
        return linked

    def _previous(self, row: Sequence[Any]) -> str:
        if row[0] == 1:
            return GENESIS
        if row[12] is not None:
            return str(row[12])
        linked = self.links().get(row[0] - 1)
        if linked is None:
            raise CorruptJournal(self._where, "the record before is missing", row[0])
        return linked

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.Error as failure:
            raise opening.translate_error(self.path, failure) from None

    def _compacted(self) -> bool:
        """Whether the journal holds any of the tables a compaction creates."""
        if self._tables is None:
            self._tables = {
                row[0] for row in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
        return bool(self._tables & {"chain_links", "stream_cuts", "archive_segments"})

    def query_optional(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """Rows of a compaction table; none when the journal was never compacted."""
        if not self._compacted():
            return []
        try:
            return self._connection.execute(sql, parameters).fetchall()
        except sqlite3.OperationalError as failure:
            if "no such table" in str(failure):
                return []
            raise opening.translate_error(self.path, failure) from None
