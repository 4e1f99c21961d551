"""What a restart learns from a SQLite journal before its watches list anything, in three
queries and without folding a stream: the streams with a handler run open (started with
no outcome, or waiting for its retry: their keys go first), and every other stream's
last journaled observation (so the first list of an object that did not change since
appends nothing and folds nothing).

The streams in flight are left out of the seed on purpose: their relist is journaled
as before (an `Observed` `added` for an object the journal already knows), which is how
`engine replay --verify` tells that a new process took over the open run.

`begin` starts the same scan in a thread of its own before anything else of the start
(`engine run` calls it once the settings and the operator are known, so the scan's SQL
runs while the rest of the engine is imported and connects); the controller uses its
answer only if the journal it then opens has the head the scan read (`StartScan.head`),
and scans again otherwise.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from engine.fsm import events as ev
from engine.fsm.key import FINALIZE, PROVISION
from engine.journal.batch import Head
from engine.journal.location import is_postgres, sqlite_path
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record
from engine.runtime.manager.settings import Settings

JOURNAL_FILE = "journal.db"


@dataclass(frozen=True)
class StartScan:
    """`in_flight`: the streams whose newest handler attempt has no outcome (in the order
    those attempts started), then those whose newest attempt failed with a retry due;
    `observed`: the newest `Observed` record of every other
    stream whose name starts with `prefix`; `head`: the journal's last record when it
    was read."""

    in_flight: tuple[str, ...]
    observed: tuple[Record, ...]
    head: Head = field(default_factory=Head)


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
    return StartScan(in_flight=in_flight, observed=observed, head=reader.head)


def journal_file(settings: Settings) -> Path | None:
    """The SQLite journal file an engine with `settings` opens (`journal_url`, else
    `<state_dir>/journal.db`), or None for a PostgreSQL journal.
    Errors: the `JournalUnavailable` of `sqlite_path` for a URL of another scheme."""
    url = settings.journal_url
    if url and is_postgres(url):
        return None
    return sqlite_path(url) if url else settings.state_dir / JOURNAL_FILE


@dataclass(frozen=True)
class EarlyScan:
    """A scan of every stream (`scan(path, "")`) begun by `begin`: `result` is done
    once it has read the journal (or failed: its error is the caller's to ignore or
    raise; the controller then scans as if none had been begun)."""

    path: Path
    result: Future[StartScan]


def begin(path: Path | None) -> EarlyScan | None:
    """Start `scan(path, "")` in a daemon thread now; None when there is no SQLite
    journal file at `path` yet (a first start has nothing to scan)."""
    if path is None or not path.is_file():
        return None
    result: Future[StartScan] = Future()

    def run() -> None:
        if not result.set_running_or_notify_cancel():
            return
        try:
            result.set_result(scan(path, ""))
        except BaseException as failure:  # handed to whoever waits for it
            result.set_exception(failure)

    threading.Thread(target=run, name="start-scan", daemon=True).start()
    return EarlyScan(path=path, result=result)
