"""Reading a journal file for replay: read-only, every checksum verified, streamed.

The only I/O of engine.replay besides the handler re-run; everything downstream is pure.
Every record in position order, streamed (`iter_records`); the per-stream reads of a
replay are `engine.replay.driver.StreamHistory`'s. Memory never grows with the file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record

BATCH = 5_000
Progress = Callable[[int], None]
"""Told how many records were read so far (every batch)."""


async def record_count(path: Path) -> int:
    """How many records the journal holds (its head position). Errors: `JournalError`."""
    with OfflineReader.open(path) as reader:
        return reader.head.position


def iter_records(path: Path, *, progress: Progress | None = None) -> Iterator[Record]:
    """Every live record of the journal at `path`, verified, in position order.

    Opens read-only (no lock, no writes), so it may run beside a live engine.
    Errors: `JournalError` (missing, foreign, corrupt or newer file), one clear line each.
    """
    with OfflineReader.open(path) as reader:
        count = 0
        for record in reader.read_all(batch_size=BATCH):
            yield record
            count += 1
            if progress is not None and count % BATCH == 0:
                progress(count)
        if progress is not None:
            progress(count)


async def read_records(path: Path, *, progress: Progress | None = None) -> AsyncIterator[Record]:
    """`iter_records` for async callers."""
    for record in iter_records(path, progress=progress):
        yield record


async def load_records(path: Path, *, progress: Progress | None = None) -> list[Record]:
    """All records of the journal at `path` (see `iter_records`)."""
    return list(iter_records(path, progress=progress))
