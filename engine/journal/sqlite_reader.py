"""The SQLite journal's reader side: verified reads on the read-only connection.

Streams, the whole log in batches, idempotency keys, snapshots and the full-file check;
every record's checksum is verified against its predecessor's, also across a compaction
cut (`engine/journal/compaction.py`: an archived predecessor's checksum is in
`chain_links`, and a cut stream's live versions start after its cut).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from engine.journal import opening, schema
from engine.journal.codec import GENESIS, snapshot_checksum, verified_record
from engine.journal.errors import CorruptJournal
from engine.journal.record import Record, Snapshot


class RecordReader:
    """Reads of the journal file at `path` through `connection` (which it does not close)."""

    def __init__(self, connection: opening.SqlConnection, path: Path) -> None:
        self._connection = connection
        self._path = path
        self._where = str(path)
        self._cut: tuple[dict[int, str], dict[str, int]] | None = None

    async def _compaction(self) -> tuple[dict[int, str], dict[str, int]]:
        """The cut links and per-stream cut versions (empty for a never compacted file).

        Read once: compaction runs only with the writer lock, so never beside this open.
        """
        if self._cut is None:
            tables = {
                row[0]
                for row in await self._fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            links: dict[int, str] = {}
            cuts: dict[str, int] = {}
            if "chain_links" in tables:
                links = dict(await self._fetch("SELECT position, checksum FROM chain_links"))
            if "stream_cuts" in tables:
                cuts = dict(await self._fetch("SELECT stream, through_version FROM stream_cuts"))
            self._cut = (links, cuts)
        return self._cut

    async def stream_version(self, stream: str) -> int:
        """The stream's last committed version, 0 when it has no records."""
        rows = await self._fetch(
            "SELECT MAX(stream_version) FROM records WHERE stream = ?", (stream,)
        )
        return int(rows[0][0] or 0)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order, verified."""
        links, cuts = await self._compaction()
        start = max(from_version, 1, cuts.get(stream, 0) + 1)
        rows = await self._fetch(schema.SELECT_STREAM, (stream, start))
        records = []
        for expected, row in enumerate(rows, start=start):
            if row[2] != expected:
                raise CorruptJournal(self._where, f"{stream} version {expected} is missing")
            records.append(self._verified_joined(row, links))
        return records

    async def read_all(
        self, from_position: int = 1, *, batch_size: int = 1000
    ) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, fetched in batches.

        Each record's checksum is verified against its predecessor's, and a missing
        position raises `CorruptJournal`.
        """
        links, _cuts = await self._compaction()
        position = max(from_position, 1)
        previous: str | None = GENESIS if position == 1 else None
        where = self._where
        while True:
            rows = await self._fetch(schema.SELECT_FROM, (position, batch_size))
            if not rows:
                return
            if previous is None and rows[0][0] == position:
                previous = links.get(position - 1) or await self._checksum_at(position - 1)
            for row in rows:
                if row[0] != position:
                    linked = links.get(row[0] - 1)
                    if linked is None:
                        raise CorruptJournal(where, "a record is missing", position)
                    previous, position = linked, row[0]  # archived by a compaction
                assert previous is not None
                record = verified_record(where, previous, row)
                previous = row[11]
                position += 1
                yield record

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        """The record carrying `idempotency_key`, if any (verified)."""
        links, _cuts = await self._compaction()
        rows = await self._fetch(schema.SELECT_KEY, (idempotency_key,))
        return self._verified_joined(rows[0], links) if rows else None

    async def streams(self) -> list[str]:
        """Every stream that has at least one record, in order of first appearance."""
        rows = await self._fetch(
            "SELECT stream FROM records GROUP BY stream ORDER BY MIN(position)"
        )
        return [row[0] for row in rows]

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any. Errors: `CorruptJournal` on a bad one."""
        rows = await self._fetch(
            "SELECT version, state, checksum FROM snapshots WHERE stream = ?", (stream,)
        )
        if not rows:
            return None
        version, text, digest = rows[0]
        if snapshot_checksum(stream, version, text) != digest:
            raise CorruptJournal(self._where, f"the snapshot of {stream} fails its checksum")
        return Snapshot(stream, version, json.loads(text))

    async def verify(self) -> int:
        """Check the whole file: SQLite's quick_check, every record's checksum chain, the
        chain head, every snapshot. Return the record count.

        Errors: `CorruptJournal` naming the first problem (and position, where one).
        """
        problems = [row[0] for row in await self._fetch("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise CorruptJournal(self._where, "SQLite quick_check: " + "; ".join(problems[:3]))
        count = 0
        async for _ in self.read_all(batch_size=5000):
            count += 1
        head, _term = await opening.load_head(self._connection, self._path)
        if head.position < count:
            raise CorruptJournal(self._where, "records beyond the chain head", head.position + 1)
        for stream in [row[0] for row in await self._fetch("SELECT stream FROM snapshots")]:
            await self.load_snapshot(stream)
        return count

    async def _checksum_at(self, position: int) -> str:
        rows = await self._fetch("SELECT checksum FROM records WHERE position = ?", (position,))
        if not rows:
            raise CorruptJournal(self._where, "a record is missing", position)
        return str(rows[0][0])

    def _verified_joined(self, row: Any, links: dict[int, str]) -> Record:
        previous = GENESIS if row[0] == 1 else (row[12] or links.get(row[0] - 1))
        if previous is None:
            raise CorruptJournal(self._where, "the record before is missing", row[0])
        return verified_record(self._where, previous, row[:12])

    async def _fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self._connection.execute_fetchall(sql, parameters))
        except sqlite3.Error as failure:
            raise opening.translate_error(self._path, failure) from None
