"""The PostgreSQL journal's reader side: verified reads on their own connection.

Streams, the whole log in batches, idempotency keys, snapshots, shard terms and the full
check; every record's checksum is verified against its predecessor's. Each statement
sees every transaction committed before it began, and appends commit in position order
(they queue on the chain head's row lock), so no read sees a later position before an
earlier one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg

from engine.journal import postgres_opening as opening
from engine.journal import postgres_schema as schema
from engine.journal.batch import Head
from engine.journal.codec import GENESIS, snapshot_checksum, verified_record
from engine.journal.errors import CorruptJournal
from engine.journal.record import Record, Snapshot


class PostgresReader:
    """Reads of the journal `where` through its own autocommit `connection` to `dsn`.

    A connection the server dropped fails the read under way, and is opened again for
    the next one.
    """

    def __init__(self, connection: psycopg.AsyncConnection[Any], *, dsn: str, where: str) -> None:
        self._connection = connection
        self._dsn = dsn
        self._where = where
        self._closed = False

    async def close(self) -> None:
        """Close the connection; later reads fail with the journal's error."""
        self._closed = True
        await self._connection.close()

    async def stream_version(self, stream: str) -> int:
        """The stream's last committed version, 0 when it has no records."""
        rows = await self.fetch(
            "SELECT MAX(stream_version) FROM records WHERE stream = %s", (stream,)
        )
        return int(rows[0][0] or 0)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order, verified."""
        start = max(from_version, 1)
        rows = await self.fetch(schema.SELECT_STREAM, (stream, start))
        records = []
        for expected, row in enumerate(rows, start=start):
            if row[2] != expected:
                raise CorruptJournal(self._where, f"{stream} version {expected} is missing")
            records.append(self._verified_joined(row))
        return records

    async def read_all(
        self, from_position: int = 1, *, batch_size: int = 1000
    ) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, fetched in batches;
        a bad checksum or a missing position raises `CorruptJournal`."""
        position = max(from_position, 1)
        previous: str | None = GENESIS if position == 1 else None
        where = self._where
        while True:
            rows = await self.fetch(schema.SELECT_FROM, (position, batch_size))
            if not rows:
                return
            if previous is None:
                previous = await self._checksum_at(position - 1)
            for row in rows:
                if row[0] != position:
                    raise CorruptJournal(where, "a record is missing", position)
                record = verified_record(where, previous, row)
                previous = row[11]
                position += 1
                yield record

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        """The record carrying `idempotency_key`, if any (verified)."""
        rows = await self.fetch(schema.SELECT_KEY, (idempotency_key,))
        return self._verified_joined(rows[0]) if rows else None

    async def streams(self) -> list[str]:
        """Every stream that has at least one record, in order of first appearance."""
        rows = await self.fetch("SELECT stream FROM records GROUP BY stream ORDER BY MIN(position)")
        return [row[0] for row in rows]

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any. Errors: `CorruptJournal` on a bad one."""
        rows = await self.fetch(
            "SELECT version, state, checksum FROM snapshots WHERE stream = %s", (stream,)
        )
        if not rows:
            return None
        version, text, digest = rows[0]
        if snapshot_checksum(stream, version, text) != digest:
            raise CorruptJournal(self._where, f"the snapshot of {stream} fails its checksum")
        return Snapshot(stream, version, json.loads(text))

    async def shard_term(self, shard: str) -> int:
        """The highest term a fenced append recorded for `shard` (0 when none did)."""
        rows = await self.fetch("SELECT term FROM shard_terms WHERE shard = %s", (shard,))
        return int(rows[0][0]) if rows else 0

    async def head(self) -> Head:
        """The chain head as committed. Errors: `CorruptJournal` when it disagrees with
        the last record."""
        await self.fetch("SELECT 1")  # reconnects when the server dropped the connection
        try:
            head, _term = await opening.load_head(self._connection, self._where)
        except psycopg.Error as failure:
            raise opening.translate_error(self._where, failure) from None
        return head

    async def verify(self) -> int:
        """Check every record's checksum chain, the chain head and every snapshot; return
        the record count. Errors: `CorruptJournal` naming the first problem."""
        count = 0
        async for _ in self.read_all(batch_size=5000):
            count += 1
        head = await self.head()
        if head.position < count:
            raise CorruptJournal(self._where, "records beyond the chain head", head.position + 1)
        for stream in [row[0] for row in await self.fetch("SELECT stream FROM snapshots")]:
            await self.load_snapshot(stream)
        return count

    async def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """The rows of one statement. Errors: the journal's error for a psycopg one."""
        if self._connection.closed and not self._closed:
            self._connection = await opening.connect(self._dsn, where=self._where, role="reader")
        try:
            cursor = await self._connection.execute(sql, parameters)
            return await cursor.fetchall()
        except psycopg.Error as failure:
            raise opening.translate_error(self._where, failure) from None

    async def _checksum_at(self, position: int) -> str:
        rows = await self.fetch("SELECT checksum FROM records WHERE position = %s", (position,))
        if not rows:
            raise CorruptJournal(self._where, "a record is missing", position)
        return str(rows[0][0])

    def _verified_joined(self, row: Any) -> Record:
        previous = GENESIS if row[0] == 1 else row[12]
        if previous is None:
            raise CorruptJournal(self._where, "the record before is missing", row[0])
        return verified_record(self._where, previous, row[:12])
