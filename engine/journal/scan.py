"""A sequential scan of a SQLite journal for `read_all`: one read-only stdlib sqlite3
connection, large batches, each verified against the checksum chain and decoded in one
tight loop. Blocking: the SQLite journal runs each batch in a worker thread.

The checksum of a row is recomputed from its stored text (no re-encoding of `data`),
exactly as `codec.row_checksum` does; see codec.py for the chain itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any

from engine.journal import schema
from engine.journal.errors import CorruptJournal
from engine.journal.record import Record

_NONE = "\x01"
_SEPARATOR = "\x00"


class Scan:
    """Records with position >= `start`, in order, `size` per `next_batch` call.

    `previous` is the checksum of the record before `start` (GENESIS for position 1).
    Not thread-safe: one caller at a time (any thread), then `close`.
    Errors (from `next_batch`): `CorruptJournal` naming `where` and the position;
    `sqlite3.Error` for the caller to translate.
    """

    def __init__(self, uri: str, *, where: str, start: int, previous: str) -> None:
        self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._where = where
        self._position = start
        self._previous = previous

    def next_batch(self, size: int) -> list[Record]:
        """The next up to `size` records, verified and decoded; empty at the end."""
        rows = self._connection.execute(schema.SELECT_FROM, (self._position, size)).fetchall()
        if not rows:
            return []
        records = self._decode(rows)
        self._position += len(rows)
        return records

    def _decode(self, rows: list[Any]) -> list[Record]:
        sha256 = hashlib.sha256
        loads = json.loads
        parse_at = datetime.fromisoformat
        join = _SEPARATOR.join
        none = _NONE
        previous = self._previous
        expected = self._position
        last_at_text: Any = None
        last_at: Any = None
        records: list[Record] = []
        append = records.append
        for row in rows:
            position, stream, version, kind, schema_, at, data, key, trace, span, term, digest = row
            if position != expected:
                raise CorruptJournal(self._where, "a record is missing", expected)
            text = join(
                (
                    previous,
                    str(position),
                    stream,
                    str(version),
                    kind,
                    str(schema_),
                    at,
                    none if key is None else key,
                    none if trace is None else trace,
                    none if span is None else span,
                    str(term),
                    data,
                )
            )
            if sha256(text.encode()).hexdigest() != digest:
                raise CorruptJournal(self._where, "the record's checksum does not match", position)
            try:
                if at != last_at_text:  # one commit stamps one time on all its records
                    last_at, last_at_text = parse_at(at), at
                decoded = loads(data)
            except ValueError as bad:
                raise CorruptJournal(
                    self._where, f"the record does not decode ({bad})", position
                ) from None
            append(
                Record(
                    position,
                    stream,
                    version,
                    kind,
                    schema_,
                    last_at,
                    decoded,
                    key,
                    trace,
                    span,
                    term,
                    digest,
                )
            )
            previous = digest
            expected += 1
        self._previous = previous
        return records

    def close(self) -> None:
        """Release the connection."""
        self._connection.close()


async def scan_records(
    uri: str, *, where: str, start: int, previous: str, batch_size: int
) -> AsyncIterator[Record]:
    """The records of a `Scan`, read in a worker thread of its own; the next batch is read
    while the caller handles this one. Errors: as `Scan.next_batch`."""
    # one thread runs the scan's batches and then its close, in that order, so a scan
    # abandoned mid-batch (cancelled, or the caller stopped early) closes safely
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-scan")
    loop = asyncio.get_running_loop()
    scan: Scan | None = None
    try:
        opened = partial(Scan, uri, where=where, start=start, previous=previous)
        scan = await loop.run_in_executor(worker, opened)
        pending = _submit(loop, worker, scan, batch_size)
        while True:
            batch = await pending
            if not batch:
                return
            pending = _submit(loop, worker, scan, batch_size)
            for record in batch:
                yield record
    finally:
        if scan is not None:
            worker.submit(scan.close)
        worker.shutdown(wait=False)


def _submit(
    loop: asyncio.AbstractEventLoop, worker: ThreadPoolExecutor, scan: Scan, size: int
) -> asyncio.Future[list[Record]]:
    """The scan's next batch, read by `worker`; its failure counts as seen even when the
    reader stopped before awaiting it (no "exception was never retrieved" noise)."""
    batch = loop.run_in_executor(worker, scan.next_batch, size)
    batch.add_done_callback(lambda done: done.cancelled() or done.exception())
    return batch
