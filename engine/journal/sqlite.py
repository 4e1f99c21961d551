"""The durable journal on SQLite (aiosqlite, WAL): group commit, checksums, one writer.

Appends from any number of tasks go to one writer task, which drains everything
pending into one transaction, commits (one call on the writer's thread, `sqlite_commit`),
and only then answers each caller. Reads use a second connection (`sqlite_reader`), so
they never wait behind a commit. See docs/journal.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import aiosqlite

from engine.clock import Clock, SystemClock
from engine.failpoint import failpoint
from engine.journal import opening, schema
from engine.journal.batch import Head, PendingAppend, chain_for_import
from engine.journal.codec import (
    Row,
    encode_at,
    encode_event,
    encode_json,
    snapshot_checksum,
)
from engine.journal.errors import (
    JournalClosed,
    JournalError,
    JournalUnavailable,
    StaleTerm,
)
from engine.journal.files import (
    WriterLock,
    acquire_writer_lock,
    check_readable,
    prepare_writable,
    sqlite_uri,
    tighten_sidecars,
)
from engine.journal.group_commit import GroupCommit, Outcome
from engine.journal.head_marker import HeadMarker, check_marker, discard_marker, read_marker
from engine.journal.recent_rows import RecentRows
from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.sqlite_commit import CommitResult, commit_batch, write_rows
from engine.journal.sqlite_reader import RecordReader
from engine.journal.store import ANY_VERSION

Synchronous = Literal["FULL", "NORMAL"]
_T = TypeVar("_T")


class SqliteJournal:
    """A `Journal` in one SQLite file. Create it with `await SqliteJournal.open(path)`.

    Guarantees beyond the `Journal` contract: one writer per file (a second is refused
    with `JournalLocked`); files 0600, a created directory 0700; every read of the file
    verifies the checksum chain and raises `CorruptJournal` naming the position (a stream's
    newest rows this process committed are read back from memory).
    """

    def __init__(
        self,
        *,
        path: Path,
        reader: aiosqlite.Connection,
        writer: aiosqlite.Connection | None,
        lock: WriterLock | None,
        marker: HeadMarker | None,
        clock: Clock,
        redact: tuple[str, ...],
        head: Head,
        term: int,
    ) -> None:
        self._path = path
        self._where = str(path)
        self._reader = reader
        self._records = RecordReader(reader, path)
        self._writer = writer
        self._lock = lock
        self._marker = marker
        self._clock = clock
        self._redact = redact
        self._head = head
        self._term = term
        self._versions: dict[str, int] = {}
        self._recent = RecentRows()
        self._committed = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._closed = False
        self._broken = False
        self._group = None if writer is None else GroupCommit(self._commit, self._commit_failed)

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        synchronous: Synchronous = "FULL",
        redact: tuple[str, ...] = (),
        readonly: bool = False,
    ) -> SqliteJournal:
        """Open (creating and migrating when writable) the journal at `path`.

        `synchronous` is SQLite's setting for the writer: FULL (default) makes every
        acknowledged append survive power loss; NORMAL only process crashes.
        `readonly=True` takes no lock and never writes (for check, replay, export).
        A journal behind its head marker (committed records lost, `head_marker`) is
        refused as corrupt, and so is, when writable, one whose pages fail SQLite's
        quick_check (a cut tail, a zeroed page). Errors: `JournalUnavailable`,
        `JournalLocked`, `NotAJournal`, `SchemaTooNew`, `CorruptJournal`, each naming the
        path and what to do.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        where = Path(path)
        lock: WriterLock | None = None
        writer: aiosqlite.Connection | None = None
        reader: aiosqlite.Connection | None = None
        marker: HeadMarker | None = None
        try:
            if readonly:
                check_readable(where)
            else:
                created = prepare_writable(where)
                lock = acquire_writer_lock(where)
                if created:
                    discard_marker(where)  # a new file: an old marker speaks of another
                writer = await _connect(where, readonly=False)
                await opening.prepare_writer(writer, where, synchronous=synchronous)
                tighten_sidecars(where)
            reader = await _connect(where, readonly=True)
            if readonly:
                await opening.identify(reader, where, writable=False)
            else:
                await opening.check_pages(reader, where)
            marked = read_marker(where)
            head, term = await opening.load_head(reader, where)
            check_marker(where, head, marked)
            if writer is not None:
                marker = HeadMarker.open(where)
                marker.write(head)
        except BaseException as failure:
            for connection in (reader, writer):
                if connection is not None:
                    await connection.close()
            if marker is not None:
                marker.close()
            if lock is not None:
                lock.release()
            if isinstance(failure, sqlite3.Error):
                raise opening.translate_error(where, failure) from None
            if isinstance(failure, OSError):
                raise JournalUnavailable(
                    f"cannot access journal {where}: {failure.strerror}; "
                    "check the path and the permissions of its directories"
                ) from None
            raise
        return cls(
            path=where,
            reader=reader,
            writer=writer,
            lock=lock,
            marker=marker,
            clock=clock or SystemClock(),
            redact=tuple(redact),
            head=head,
            term=term,
        )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def term(self) -> int:
        return self._term

    @property
    def redacted_paths(self) -> tuple[str, ...]:
        """The dotted field paths this journal replaces by the redaction marker."""
        return self._redact

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    @property
    def head(self) -> Head:
        """The last committed record's position and checksum, as this process knows it."""
        return self._head

    def set_term(self, term: int) -> None:
        """Stamp `term` on later records. Errors: `StaleTerm` when `term` is lower."""
        if term < self._term:
            raise StaleTerm(self._term, term)
        self._term = term

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int = ANY_VERSION
    ) -> tuple[int, ...]:
        """Append `events` to `stream` atomically; return once they are committed."""
        self._ensure_writable()
        pending = PendingAppend(
            stream, tuple(encode_event(e, redact=self._redact) for e in events), expected_version
        )
        assert self._group is not None
        return await self._group.submit(pending)

    async def stream_version(self, stream: str) -> int:
        """The stream's last version, 0 when it has no records."""
        known = self._versions.get(stream)
        if known is not None:
            return known
        return await self._records.stream_version(stream)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order, verified (the
        rows this process committed last are served from memory: it computed their
        checksums itself)."""
        known = self._versions.get(stream)
        if known is not None:
            recent = self._recent.read(stream, from_version, known)
            if recent is not None:
                return recent
        return await self._records.read_stream(stream, from_version)

    def read_all(self, from_position: int = 1, *, batch_size: int = 1000) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, fetched in batches and
        verified (see `RecordReader.read_all`)."""
        return self._records.read_all(from_position, batch_size=batch_size)

    async def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        """Like `read_all`, then tail this process's commits as they happen.

        Wakes on each commit (no polling). Ends when the journal closes; a read-only
        journal has no commits to tail, so its subscription ends at the current end.
        """
        position = max(from_position, 1)
        while not self._closed:
            committed = self._committed
            try:
                async for record in self.read_all(position):
                    position = record.position + 1
                    yield record
            except JournalError:
                if self.closed:
                    return  # closed while reading: the end of the subscription
                raise
            if self._writer is None:
                return
            await committed.wait()

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        """The record carrying `idempotency_key`, if any (verified)."""
        return await self._records.find_by_key(idempotency_key)

    async def streams(self) -> list[str]:
        """Every stream that has at least one record, in order of first appearance."""
        return await self._records.streams()

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        """Keep `state` as of `version`; an older version never replaces a newer one.

        Errors: `ValueError` when `version` is beyond the stream's last version.
        """
        self._ensure_writable()
        if version < 1 or version > await self.stream_version(stream):
            raise ValueError(f"stream {stream!r} has no version {version} to snapshot")
        text = encode_json(state)
        assert self._writer is not None
        async with self._write_lock:
            await self._writer.execute(
                schema.UPSERT_SNAPSHOT,
                (stream, version, text, snapshot_checksum(stream, version, text)),
            )
            failpoint("snapshot.before_commit")
            await self._writer.commit()

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any. Errors: `CorruptJournal` on a bad one."""
        return await self._records.load_snapshot(stream)

    async def verify(self) -> int:
        """Check the whole file (see `RecordReader.verify`); return the record count."""
        return await self._records.verify()

    async def probe_commit(self) -> None:
        """Check that a commit could be made now, writing nothing: a write transaction that
        takes new pages (the size of a large batch) and is rolled back.

        Errors: the journal error a commit would meet (`JournalUnavailable` for a full
        disk, a read-only file or a busy database; `JournalClosed`).
        """
        self._ensure_writable()
        assert self._writer is not None
        async with self._write_lock:
            try:
                await _on_writer_thread(self._writer, _probe_write)
            except sqlite3.Error as error:
                raise opening.translate_error(self._path, error) from None

    async def import_records(self, records: Iterable[Record]) -> int:
        """Load exported records into this empty journal, keeping positions and checksums.

        Errors: `ValueError` when the journal is not empty; `CorruptJournal` when the
        records do not form an unbroken chain from position 1 (nothing is written then).
        """
        self._ensure_writable()
        assert self._writer is not None
        async with self._write_lock:
            if self._head.position != 0 or not (self._group is None or self._group.idle):
                raise ValueError(f"import needs an empty journal, and {self._where} has records")
            rows, head = chain_for_import(records, where=self._where)
            await self._write_rows(rows, head)
            self._head = head
            self._versions.clear()
            self._recent.clear()
            self._term = max([self._term, *(row.term for row in rows)])
        self._signal_commit()
        return len(rows)

    async def close(self) -> None:
        """Commit what is pending, then release the connections and the writer lock."""
        if self._closed:
            return
        self._closed = True
        if self._group is not None:
            await self._group.close()
        self._signal_commit()
        await self._reader.close()
        if self._writer is not None:
            await self._writer.close()  # the last connection checkpoints and removes the -wal
        if self._marker is not None:
            self._marker.close()
        if self._lock is not None:
            self._lock.release()

    async def _commit(self, appends: Sequence[PendingAppend]) -> Sequence[Outcome]:
        async with self._write_lock:
            assert self._writer is not None
            result = await _on_writer_thread(
                self._writer,
                functools.partial(
                    _commit_and_mark,
                    marker=self._marker,
                    appends=appends,
                    head=self._head,
                    known_versions=self._versions,
                    at=encode_at(self._clock.now()),
                    term=self._term,
                ),
            )
            self._versions.update(result.versions_read)
            plan = result.plan
            if plan.rows:
                failpoint("journal.after_commit", (row.type for row in plan.rows))
                self._head = plan.head
                self._versions.update(plan.versions)
                self._recent.committed(plan.rows)
        if plan.rows:
            self._signal_commit()
        return plan.outcomes

    async def _commit_failed(self, failure: BaseException) -> BaseException:
        self._versions.clear()
        self._recent.clear()
        try:
            self._head, _term = await opening.load_head(self._reader, self._path)
        except (JournalError, sqlite3.Error):
            self._broken = True  # a journal we cannot read back is not safe to write to
        if isinstance(failure, sqlite3.Error):
            return opening.translate_error(self._path, failure)
        return failure

    async def _write_rows(self, rows: Sequence[Row], head: Head) -> None:
        assert self._writer is not None
        assert self._marker is not None
        marker = self._marker

        def write_and_mark(connection: sqlite3.Connection) -> None:
            write_rows(connection, rows)
            marker.write(head)

        await _on_writer_thread(self._writer, write_and_mark)

    def _signal_commit(self) -> None:
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    def _ensure_writable(self) -> None:
        if self._closed:
            raise JournalClosed(f"journal {self._where} is closed; open it again")
        if self._broken:
            raise JournalUnavailable(
                f"journal {self._where} failed a commit and cannot be read back; "
                "restart the engine to reopen it"
            )
        if self._writer is None:
            raise JournalUnavailable(
                f"journal {self._where} was opened read-only; open it without readonly to write"
            )


_PROBE_BYTES = 64 * 1024
"""The probe's row: larger than a page, so it needs pages the file may not have."""


def _probe_write(connection: sqlite3.Connection) -> None:
    try:
        connection.execute(
            "INSERT OR REPLACE INTO snapshots (stream, version, state, checksum) "
            "VALUES ('', 0, zeroblob(?), '')",
            (_PROBE_BYTES,),
        )
    finally:
        if connection.in_transaction:
            connection.rollback()


def _commit_and_mark(
    connection: sqlite3.Connection,
    *,
    marker: HeadMarker | None,
    appends: Sequence[PendingAppend],
    head: Head,
    known_versions: Mapping[str, int],
    at: str,
    term: int,
) -> CommitResult:
    """`commit_batch`, then the head marker moved to the committed head (writer's thread)."""
    result = commit_batch(
        connection, appends, head=head, known_versions=known_versions, at=at, term=term
    )
    if result.plan.rows and marker is not None:
        marker.write(result.plan.head)
    return result


async def _on_writer_thread(
    connection: aiosqlite.Connection, function: Callable[[sqlite3.Connection], _T]
) -> _T:
    """`function(the sqlite3 connection)` run on `connection`'s own thread: one round trip.

    `_execute` is the dispatch each of aiosqlite's public methods goes through; the
    caller's context goes along, so failpoints armed in a test apply on that thread too.
    """
    context = contextvars.copy_context()
    raw: sqlite3.Connection = connection._conn
    result = await connection._execute(context.run, function, raw)  # type: ignore[no-untyped-call]
    return cast(_T, result)


async def _connect(path: Path, *, readonly: bool) -> aiosqlite.Connection:
    return await aiosqlite.connect(
        sqlite_uri(path, readonly=readonly),
        uri=True,
        isolation_level=None if readonly else "IMMEDIATE",
    )
