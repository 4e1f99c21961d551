"""`MeteredJournal`: a `Journal` that reports each append's latency and, on request, the
journal's size to `EngineMetrics`; everything else is passed through unchanged."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.sqlite import SqliteJournal
from engine.journal.store import ANY_VERSION, Journal
from engine.telemetry.metrics import EngineMetrics

_SIDECARS = ("", "-wal")


class MeteredJournal:
    """Wraps `inner`; `append` observes `engine_journal_append_duration_seconds` (from call
    to commit, failed appends included); `record_size()` sets `engine_journal_size_bytes`
    and `engine_journal_records` (SQLite journals only: file plus WAL, and the head
    position). Same contract and errors as `inner`."""

    def __init__(self, inner: Journal, metrics: EngineMetrics) -> None:
        self.inner = inner
        self._metrics = metrics

    @property
    def term(self) -> int:
        return self.inner.term

    def set_term(self, term: int) -> None:
        self.inner.set_term(term)

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int = ANY_VERSION
    ) -> tuple[int, ...]:
        began = time.perf_counter()
        try:
            return await self.inner.append(stream, events, expected_version=expected_version)
        finally:
            self._metrics.observe_journal_append(time.perf_counter() - began)

    async def stream_version(self, stream: str) -> int:
        return await self.inner.stream_version(stream)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        return await self.inner.read_stream(stream, from_version)

    def read_all(self, from_position: int = 1, *, batch_size: int = 1000) -> AsyncIterator[Record]:
        return self.inner.read_all(from_position, batch_size=batch_size)

    def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        return self.inner.subscribe(from_position)

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        return await self.inner.find_by_key(idempotency_key)

    async def streams(self) -> list[str]:
        return await self.inner.streams()

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        await self.inner.save_snapshot(stream, version, state)

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        return await self.inner.load_snapshot(stream)

    async def close(self) -> None:
        await self.inner.close()

    def record_size(self) -> None:
        """Set the size gauges from the journal file (a cheap stat; no-op for other stores)."""
        inner = self.inner
        if not isinstance(inner, SqliteJournal):
            return
        size = 0
        for suffix in _SIDECARS:
            try:
                size += inner.path.with_name(inner.path.name + suffix).stat().st_size
            except OSError:
                continue  # no WAL yet, or the file is being replaced
        self._metrics.set_journal_size(size_bytes=size, records=inner.head.position)
