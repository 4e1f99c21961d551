"""The durable journal on PostgreSQL (psycopg 3, async): group commit, checksums, many
writer processes.

Appends from any number of tasks go to one writer task per process, which drains
everything pending into one transaction (`postgres_commit`) and only then answers each
caller; processes sharing the database serialise on the chain head's row lock. Reads
use a second connection (`postgres_reader`); a third LISTENs, so `subscribe` wakes on
every process's commits without polling. See docs/journal-postgres.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import psycopg

from engine.clock import Clock, SystemClock
from engine.failpoint import failpoint
from engine.journal import postgres_opening as opening
from engine.journal import postgres_schema as schema
from engine.journal.batch import Fence, Head, PendingAppend
from engine.journal.codec import encode_at, encode_event, encode_json, snapshot_checksum
from engine.journal.errors import JournalClosed, JournalError, JournalUnavailable, StaleTerm
from engine.journal.group_commit import GroupCommit, Outcome
from engine.journal.postgres_commit import commit_batch, import_rows
from engine.journal.postgres_listener import CommitListener
from engine.journal.postgres_reader import PostgresReader
from engine.journal.recent_rows import RecentRows
from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.store import ANY_VERSION


class PostgresJournal:
    """A `Journal` in one PostgreSQL schema. Create it with `await PostgresJournal.open(url)`.

    Guarantees beyond the `Journal` contract: any number of processes may append at once
    (positions stay gap-free and in commit order); `append` takes an optional `fence`;
    every read verifies the checksum chain and raises `CorruptJournal` naming the position.
    """

    def __init__(
        self,
        *,
        dsn: str,
        where: str,
        reader: psycopg.AsyncConnection[Any],
        writer: psycopg.AsyncConnection[Any] | None,
        clock: Clock,
        redact: tuple[str, ...],
        head: Head,
        term: int,
        schema_name: str,
    ) -> None:
        self._dsn = dsn
        self._where = where
        self._records = PostgresReader(reader, dsn=dsn, where=where)
        self._writer = writer
        self._clock = clock
        self._redact = redact
        self._head = head
        self._term = term
        self._committed = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._closed = False
        self._own_versions: dict[str, int] = {}
        self._recent = RecentRows()
        self._group = None if writer is None else GroupCommit(self._commit, self._commit_failed)
        self._listener = (
            None
            if writer is None
            else CommitListener(
                dsn=dsn, where=where, schema_name=schema_name, on_commit=self._signal_commit
            )
        )

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        clock: Clock | None = None,
        redact: tuple[str, ...] = (),
        readonly: bool = False,
    ) -> PostgresJournal:
        """Open (creating and migrating when writable) the journal at the URL `dsn`.

        The journal lives in the connection's current schema (`options=-csearch_path=…`
        in the URL picks another than `public`). `readonly=True` never writes.
        Errors: `JournalUnavailable` (unreachable, refused login, bad URL), `NotAJournal`
        (tables of another program), `SchemaTooNew`, `CorruptJournal`; one line each.
        """
        where = opening.describe(dsn)
        reader = writer = None
        try:
            reader = await opening.connect(dsn, where=where, role="reader")
            if readonly:
                await opening.identify(reader, where, writable=False)
            else:
                writer = await opening.connect(dsn, where=where, role="writer")
                await opening.migrate(writer, where)
            head, term = await opening.load_head(reader, where)
            cursor = await reader.execute("SELECT current_schema()")
            row = await cursor.fetchone()
            assert row is not None
        except BaseException as failure:
            for connection in (reader, writer):
                if connection is not None:
                    await connection.close()
            if isinstance(failure, psycopg.Error):
                raise opening.translate_error(where, failure) from None
            raise
        return cls(
            dsn=dsn,
            where=where,
            reader=reader,
            writer=writer,
            clock=clock or SystemClock(),
            redact=tuple(redact),
            head=head,
            term=term,
            schema_name=str(row[0]),
        )

    @property
    def where(self) -> str:
        """The journal's name in messages: its URL without the password."""
        return self._where

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
        """The last record this process committed or read at open (others may be past it)."""
        return self._head

    def set_term(self, term: int) -> None:
        """Stamp `term` on later records. Errors: `StaleTerm` when `term` is lower."""
        if term < self._term:
            raise StaleTerm(self._term, term)
        self._term = term

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int = ANY_VERSION,
        fence: Fence | None = None,
    ) -> tuple[int, ...]:
        """Append `events` to `stream` atomically; return once they are committed.

        `fence` (shard, term): the append transaction refuses it with `FencedOut` when a
        higher term is recorded for the shard, and records its term otherwise.
        """
        self._ensure_writable()
        pending = PendingAppend(
            stream,
            tuple(encode_event(e, redact=self._redact) for e in events),
            expected_version,
            fence,
        )
        assert self._group is not None
        return await self._group.submit(pending)

    async def stream_version(self, stream: str) -> int:
        """The stream's last committed version, 0 when it has no records."""
        return await self._records.stream_version(stream)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order, verified."""
        return await self._records.read_stream(stream, from_version)

    def committed_version(self, stream: str) -> int | None:
        """The version this process's last commit to `stream` left it at (None when this
        process has not written it). Other processes may have appended since: only a
        caller that knows it is the stream's one writer (a shard's fenced owner) may take
        it for the stream's version."""
        return self._own_versions.get(stream)

    def recent_tail(self, stream: str, from_version: int, last_version: int) -> list[Record] | None:
        """The records of `stream` from `from_version` to `last_version` from this
        process's own recent commits, without a round trip; None when they do not cover
        that range. Like `committed_version`, for a caller that knows `last_version` is
        the stream's committed version."""
        return self._recent.read(stream, from_version, last_version)

    def read_all(self, from_position: int = 1, *, batch_size: int = 1000) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, fetched in batches and
        verified."""
        return self._records.read_all(from_position, batch_size=batch_size)

    async def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        """Like `read_all`, then tail the commits of every process as they happen.

        Wakes on each commit notification (LISTEN/NOTIFY, no polling). Ends when the
        journal closes; a read-only journal's subscription ends at the current end.
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

    async def shard_term(self, shard: str) -> int:
        """The highest term a fenced append recorded for `shard` (0 when none did)."""
        return await self._records.shard_term(shard)

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        """Keep `state` as of `version`; an older version never replaces a newer one.

        Errors: `ValueError` when `version` is beyond the stream's last version.
        """
        self._ensure_writable()
        if version < 1 or version > await self.stream_version(stream):
            raise ValueError(f"stream {stream!r} has no version {version} to snapshot")
        text = encode_json(state)
        async with self._write_lock:
            writer = await self._ready_writer()
            try:
                await writer.execute(
                    schema.UPSERT_SNAPSHOT,
                    (stream, version, text, snapshot_checksum(stream, version, text)),
                )
            except psycopg.Error as failure:
                raise opening.translate_error(self._where, failure) from None

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any. Errors: `CorruptJournal` on a bad one."""
        return await self._records.load_snapshot(stream)

    async def verify(self) -> int:
        """Check every record and snapshot (see `PostgresReader.verify`); return the count."""
        return await self._records.verify()

    async def import_records(self, records: Iterable[Record]) -> int:
        """Load exported records into this empty journal, keeping positions and checksums.

        Errors: `ValueError` when the journal is not empty; `CorruptJournal` when the
        records do not form an unbroken chain from position 1 (nothing is written then).
        """
        self._ensure_writable()
        loaded = list(records)
        async with self._write_lock:
            writer = await self._ready_writer()
            try:
                head = await import_rows(writer, loaded, where=self._where)
            except psycopg.Error as failure:
                raise opening.translate_error(self._where, failure) from None
            if head is None:
                raise ValueError(f"import needs an empty journal, and {self._where} has records")
            self._head = head
            self._term = max([self._term, *(record.term for record in loaded)])
        self._signal_commit()
        return len(loaded)

    async def close(self) -> None:
        """Commit what is pending, then stop listening and close the connections."""
        if self._closed:
            return
        self._closed = True
        if self._group is not None:
            await self._group.close()
        if self._listener is not None:
            await self._listener.stop()
        self._signal_commit()
        await self._records.close()
        if self._writer is not None:
            await self._writer.close()

    async def _commit(self, appends: Sequence[PendingAppend]) -> Sequence[Outcome]:
        async with self._write_lock:
            writer = await self._ready_writer()
            plan = await commit_batch(
                writer, appends, at=encode_at(self._clock.now()), term=self._term
            )
            if plan.rows:
                failpoint("journal.after_commit", (row.type for row in plan.rows))
                self._head = plan.head
                self._own_versions.update(plan.versions)
                self._recent.committed(plan.rows)
        if plan.rows:
            self._signal_commit()
        return plan.outcomes

    async def _commit_failed(self, failure: BaseException) -> BaseException:
        self._own_versions.clear()  # the commit's outcome is not known here
        self._recent.clear()
        with contextlib.suppress(JournalError, psycopg.Error):  # the head as committed
            self._head = await self._records.head()
        if isinstance(failure, psycopg.Error):
            return opening.translate_error(self._where, failure)
        return failure

    async def _ready_writer(self) -> psycopg.AsyncConnection[Any]:
        """The writer connection, opened again when the server dropped it."""
        assert self._writer is not None
        if self._writer.closed:
            self._writer = await opening.connect(self._dsn, where=self._where, role="writer")
        return self._writer

    def _signal_commit(self) -> None:
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    def _ensure_writable(self) -> None:
        if self._closed:
            raise JournalClosed(f"journal {self._where} is closed; open it again")
        if self._writer is None:
            raise JournalUnavailable(
                f"journal {self._where} was opened read-only; open it without readonly to write"
            )
