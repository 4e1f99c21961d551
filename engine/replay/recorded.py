"""A read-only `Journal` over records already in memory: what the effect runner reads
its recorded answers from when replay re-runs one handler attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.store import ANY_VERSION


class ReadOnlyJournalError(RuntimeError):
    """Replay tried to write: it never should (no effect runs in replay)."""


class RecordedJournal:
    """The `Journal` contract over `records` (any streams, in position order); reads
    only. Every write raises `ReadOnlyJournalError`."""

    def __init__(self, records: Sequence[Record]) -> None:
        self._records = tuple(records)

    @property
    def term(self) -> int:
        return self._records[-1].term if self._records else 0

    def set_term(self, term: int) -> None:
        raise ReadOnlyJournalError("a replay does not take a leader term")

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int = ANY_VERSION
    ) -> tuple[int, ...]:
        raise ReadOnlyJournalError(f"a replay does not write (asked to append to {stream})")

    async def stream_version(self, stream: str) -> int:
        versions = [r.stream_version for r in self._records if r.stream == stream]
        return max(versions, default=0)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        return [r for r in self._records if r.stream == stream and r.stream_version >= from_version]

    async def read_all(
        self, from_position: int = 1, *, batch_size: int = 1000
    ) -> AsyncIterator[Record]:
        for record in self._records:
            if record.position >= from_position:
                yield record

    def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        return self.read_all(from_position)

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        return next((r for r in self._records if r.idempotency_key == idempotency_key), None)

    async def streams(self) -> list[str]:
        return sorted({r.stream for r in self._records})

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        raise ReadOnlyJournalError("a replay does not save snapshots")

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        return None

    async def close(self) -> None:
        return None
