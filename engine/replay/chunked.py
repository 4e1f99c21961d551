"""A whole replay's text made over worker processes, chunk by chunk, written in order.

Each stream's timeline depends on that stream's records alone, so the ordered streams
(`StreamHistory.streams`) are cut into chunks of `CHUNK` streams and each chunk is read,
verified, folded (`stream_timelines`: the fold of the live engine, unchanged) and
rendered as text in one of the worker processes; this process only lists the streams
and writes the texts in their order. At most a few chunks are in flight, so memory
stays independent of the journal's size, in every process.

A worker hands its chunk's text over as a file in a spool directory in memory
(`/dev/shm` where there is one), which this process reads in one call and removes: a
whole replay's text (hundreds of megabytes) crossing the result pipe cost this process,
which shares the cores with the workers, several times the CPU (pipe-sized reads, the
pickle's copies). Where the file cannot be written (a full or missing spool) the text
crosses the pipe as before.

The workers are forked when the pool is made (`ChunkPool`), before this process opens
the journal or starts a thread, and each opens the journal read-only itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import count, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.fsm.errors import FsmError
from engine.journal.errors import JournalError
from engine.replay.driver import StreamHistory, stream_timelines
from engine.replay.render_json import resources_text
from engine.replay.render_table import table_text
from engine.replay.source import Progress
from engine.replay.timeline import EVERYTHING, Window

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult, Pool

CHUNK = 250
"""Streams per task: large enough that a task's overhead is small, small enough that a
few in flight hold little."""
IN_FLIGHT = 2
"""Chunks waiting or being made per worker."""
WORKERS_ABOVE = 100_000
"""Journals of more records than this are replayed over workers; smaller ones here."""
FORMATS = ("json", "table")
SPOOL_PARENT = Path("/dev/shm")
"""Where the spool directory of chunk texts is made when it exists (memory, not disk);
else the system's temporary directory."""


def default_workers() -> int:
    """One worker per core this process may run on, at most 2."""
    return max(1, min(2, len(os.sched_getaffinity(0))))


@dataclass(frozen=True, slots=True)
class Rendering:
    """What a worker makes of each chunk: `fmt` (json or table) at `width`, over
    `window`."""

    fmt: str
    width: int
    window: Window = EVERYTHING


_history: StreamHistory | None = None
"""The worker process's own reader of the journal (`_open_in_worker`)."""
_spool: Path | None = None
"""The directory the worker writes its chunks' texts into (`ChunkPool`'s)."""


def _open_in_worker(path: Path, spool: Path) -> None:
    global _history, _spool  # one reader per worker process, for its lifetime
    # `Pool.terminate` ends the workers with SIGTERM. The CLI's handler, inherited with
    # the fork, would turn it into SystemExit at the worker's next bytecode, so a signal
    # landing just before the worker blocks on the task queue's lock (which terminate
    # holds) was never acted on: the worker slept there and the replay, its output
    # written, never exited. The default action ends the worker wherever it is.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _history = StreamHistory(path)
    _spool = spool


Outcome = tuple[str | bytes, int] | tuple[str, str, str]
"""What a worker sends back for a chunk: the spool file holding its text (or the text
itself) and how many records it folded; or the error that stopped it."""


def _render_chunk(streams: list[str], rendering: Rendering, number: int) -> Outcome:
    """In a worker: chunk `number`'s text as UTF-8 in the spool file named by its number
    (the text itself when that file cannot be written) and how many records it folded;
    or the module, class and text of the error that stopped it (sent as data: the
    engine's errors are not picklable). This process writes the bytes to stdout
    unchanged."""
    assert _history is not None
    assert _spool is not None
    try:
        timelines = list(stream_timelines(_history, streams, window=rendering.window))
        if rendering.fmt == "json":
            text = resources_text(timelines)
        else:
            text = "".join([table_text(t, width=rendering.width) for t in timelines])
        records = sum(timeline.records for timeline in timelines)
    except (FsmError, JournalError) as failure:
        return type(failure).__module__, type(failure).__qualname__, str(failure)
    encoded = text.encode()
    spooled = _spool / str(number)
    try:
        with open(spooled, "wb") as out:
            out.write(encoded)
    except OSError:  # a full or vanished spool: through the pipe instead
        with contextlib.suppress(OSError):
            spooled.unlink()
        return encoded, records
    return str(spooled), records


def _result(outcome: Outcome) -> tuple[bytes, int]:
    """A chunk's text (read from its spool file, which is removed) and records, or the
    worker's error raised again here."""
    if len(outcome) == 2:
        text, records = outcome
        if isinstance(text, bytes):
            return text, records
        spooled = Path(text)
        encoded = spooled.read_bytes()
        spooled.unlink()
        return encoded, records
    module, name, text = outcome
    kind: Any = getattr(importlib.import_module(module), name)
    failure = kind.__new__(kind)
    failure.args = (text,)  # the same one line the worker's error reads
    raise failure


def _spool_parent() -> str | None:
    """`SPOOL_PARENT` when this process may write there, else None (the default)."""
    return str(SPOOL_PARENT) if os.access(SPOOL_PARENT, os.W_OK | os.X_OK) else None


class ChunkPool:
    """`workers` processes that replay the journal at `path`, `chunk` streams at a time.
    Make it before opening the journal here; use as a context manager."""

    def __init__(self, path: Path, workers: int, *, chunk: int = CHUNK) -> None:
        from multiprocessing import get_context  # here: a replay of one resource needs none

        self._spool = Path(tempfile.mkdtemp(prefix="engine-replay-", dir=_spool_parent()))
        try:
            self._pool: Pool = get_context("fork").Pool(
                workers, initializer=_open_in_worker, initargs=(path, self._spool)
            )
        except BaseException:
            shutil.rmtree(self._spool, ignore_errors=True)
            raise
        self._workers = workers
        self._chunk = chunk

    @property
    def spool(self) -> Path:
        """The directory the workers hand their chunks' texts over in (removed on exit)."""
        return self._spool

    def __enter__(self) -> ChunkPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.terminate()
        self._pool.join()
        shutil.rmtree(self._spool, ignore_errors=True)  # the chunks a stop left unread

    def texts(
        self,
        streams: Iterable[str],
        rendering: Rendering,
        *,
        progress: Progress | None = None,
    ) -> Iterator[str]:
        """`encoded`, decoded: the rendered text of `streams`, one piece per chunk."""
        for piece in self.encoded(streams, rendering, progress=progress):
            yield piece.decode()

    def encoded(
        self,
        streams: Iterable[str],
        rendering: Rendering,
        *,
        progress: Progress | None = None,
    ) -> Iterator[bytes]:
        """The rendered text of `streams` as UTF-8, one piece per chunk, in their order
        (a JSON piece is `render_json.resources_text`'s, for `json_document_utf8`).

        Errors: the `JournalError` or `FsmError` a worker met (its one line)."""
        source = iter(streams)
        pending: deque[AsyncResult[Any]] = deque()
        done = 0
        numbers = count()
        while True:
            while len(pending) < IN_FLIGHT * self._workers:
                chunk = list(islice(source, self._chunk))
                if not chunk:
                    break
                task = (chunk, rendering, next(numbers))
                pending.append(self._pool.apply_async(_render_chunk, task))
            if not pending:
                return
            text, records = _result(pending.popleft().get())
            done += records
            if progress is not None:
                progress(done)
            yield text
