"""Reading a journal file for replay: read-only, every checksum verified, in position order.

The only I/O of engine.replay besides the handler re-run; everything downstream is pure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal

BATCH = 5_000
Progress = Callable[[int], None]
"""Told how many records were read so far (every batch)."""


async def record_count(path: Path) -> int:
    """How many records the journal holds (its head position). Errors: `JournalError`."""
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        return journal.head.position
    finally:
        await journal.close()


async def read_records(path: Path, *, progress: Progress | None = None) -> AsyncIterator[Record]:
    """Every record of the journal at `path`, verified, in position order.

    Opens read-only (no lock, no writes), so it may run beside a live engine.
    Errors: `JournalError` (missing, foreign, corrupt or newer file), one clear line each.
    """
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        count = 0
        async for record in journal.read_all(batch_size=BATCH):
            yield record
            count += 1
            if progress is not None and count % BATCH == 0:
                progress(count)
        if progress is not None:
            progress(count)
    finally:
        await journal.close()


async def load_records(path: Path, *, progress: Progress | None = None) -> list[Record]:
    """All records of the journal at `path` (see `read_records`)."""
    return [record async for record in read_records(path, progress=progress)]
