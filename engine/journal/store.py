"""The journal contract every backend implements (SQLite for real, memory for tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from engine.journal.record import NewEvent, Record, Snapshot

ANY_VERSION = -1
"""`expected_version` value that skips the optimistic-concurrency check."""


class Journal(Protocol):
    """A durable, ordered, checksummed log of records grouped into streams.

    Guarantees:
    - `position` is global, strictly increasing and gap-free for committed records;
      `stream_version` counts from 1 per stream, gap-free.
    - `append` returns only after its records are committed (durable under the store's
      `synchronous` setting).
    - An idempotency key is unique: a repeat writes nothing and returns the first
      record's position. If every event of a batch is such a repeat, the call succeeds
      without checking `expected_version` (a retry after an ambiguous acknowledgement).
    - Every record is stamped with the current `term` (the leader's fencing token).
    Errors: `ConcurrencyError` when `expected_version` (0 = the stream must be empty) is
    not the stream's version; `CorruptJournal` when a read meets a bad checksum.
    """

    @property
    def term(self) -> int: ...

    def set_term(self, term: int) -> None:
        """Stamp `term` on every later record; a lower term than the current is refused."""
        ...

    async def append(
        self, stream: str, events: Sequence[NewEvent], *, expected_version: int = ANY_VERSION
    ) -> tuple[int, ...]:
        """Append `events` to `stream` atomically; return their positions in order."""
        ...

    async def stream_version(self, stream: str) -> int:
        """The stream's last version, 0 when it has no records."""
        ...

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order."""
        ...

    def read_all(self, from_position: int = 1, *, batch_size: int = 1000) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, fetched in batches."""
        ...

    def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        """Like `read_all`, then tail new records as they commit (no busy polling)."""
        ...

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        """The record carrying `idempotency_key`, if any."""
        ...

    async def streams(self) -> list[str]:
        """Every stream that has at least one record."""
        ...

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        """Store the folded state of `stream` as of `version` (replacing an older one)."""
        ...

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any."""
        ...

    async def close(self) -> None:
        """Flush pending appends and release the file and its lock."""
        ...
