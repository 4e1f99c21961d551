"""What a restart learns from a SQLite journal before its watches list anything, in three
queries and without folding a stream: the streams with a handler run open (started with
no outcome, or waiting for its retry: their keys go first), and every other stream's
last journaled observation (so the first list of an object that did not change since
appends nothing and folds nothing).

The streams in flight are left out of the seed on purpose: their relist is journaled
as before (an `Observed` `added` for an object the journal already knows), which is how
`engine replay --verify` tells that a new process took over the open run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.fsm import events as ev
from engine.fsm.key import FINALIZE, PROVISION
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record


@dataclass(frozen=True)
class StartScan:
    """`in_flight`: the streams whose newest handler attempt has no outcome (in the order
    those attempts started), then those whose newest attempt failed with a retry due;
    `observed`: the newest `Observed` record of every other
    stream whose name starts with `prefix`."""

    in_flight: tuple[str, ...]
    observed: tuple[Record, ...]


def _runs_to_resume(reader: OfflineReader) -> tuple[str, ...]:
    """The streams whose handler run is open: an attempt started with no outcome, then
    those waiting for a retry (each once)."""
    handlers = (PROVISION, FINALIZE)
    found = reader.open_runs(handlers) + reader.retrying_runs(handlers)
    return tuple(dict.fromkeys(found))


def open_runs(path: Path) -> list[str]:
    """The streams of the journal at `path` with a handler run open (two queries)."""
    with OfflineReader.open(path) as reader:
        return list(_runs_to_resume(reader))


def scan(path: Path, prefix: str) -> StartScan:
    """Read the journal at `path` (read-only, verified rows); see `StartScan`.
    Errors: the `JournalError`s of `OfflineReader`."""
    with OfflineReader.open(path) as reader:
        in_flight = _runs_to_resume(reader)
        skipped = set(in_flight)
        observed = tuple(
            record
            for record in reader.newest_of_type(ev.OBSERVED)
            if record.stream.startswith(prefix) and record.stream not in skipped
        )
    return StartScan(in_flight=in_flight, observed=observed)
