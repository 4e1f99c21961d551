"""An in-memory journal with the SQLite store's semantics, for tests and offline tools.

Records are kept as encoded, checksummed rows (the same codec as the SQLite store), so
checksums, idempotency, concurrency errors and redaction behave identically, and an
export from one backend imports into the other. Nothing survives the process.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from engine.clock import Clock, SystemClock
from engine.journal.batch import Fence, Head, PendingAppend, chain_for_import, plan_batch
from engine.journal.codec import (
    GENESIS,
    Row,
    encode_at,
    encode_event,
    encode_json,
    row_checksum,
    verified_record,
)
from engine.journal.errors import CorruptJournal, JournalClosed, StaleTerm
from engine.journal.record import NewEvent, Record, Snapshot
from engine.journal.store import ANY_VERSION

_WHERE = "<memory>"


class MemoryJournal:
    """A `Journal` held in memory. See `engine.journal.store.Journal` for the contract.

    `clock` stamps `at` (default: the system clock); `redact` lists dotted field paths
    whose values are replaced by "<redacted>" before a record is kept.
    """

    def __init__(self, *, clock: Clock | None = None, redact: tuple[str, ...] = ()) -> None:
        self._clock: Clock = clock or SystemClock()
        self._redact = tuple(redact)
        self._rows: list[Row] = []
        self._versions: dict[str, int] = {}
        self._keys: dict[str, int] = {}
        self._stream_positions: dict[str, list[int]] = {}
        self._snapshots: dict[str, tuple[int, str]] = {}
        self._shard_terms: dict[str, int] = {}
        self._term = 0
        self._closed = False
        self._committed = asyncio.Event()

    @property
    def term(self) -> int:
        return self._term

    @property
    def redacted_paths(self) -> tuple[str, ...]:
        """The dotted field paths this journal replaces by the redaction marker."""
        return self._redact

    def set_term(self, term: int) -> None:
        """Stamp `term` on later records. Errors: `StaleTerm` when `term` is lower."""
        if term < self._term:
            raise StaleTerm(self._term, term)
        self._term = term

    @property
    def head(self) -> Head:
        """The last record's position and checksum (position 0 when empty)."""
        if not self._rows:
            return Head()
        last = self._rows[-1]
        return Head(last.position, last.checksum)

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int = ANY_VERSION,
        fence: Fence | None = None,
    ) -> tuple[int, ...]:
        """Append `events` to `stream` atomically; return their positions in order.

        `fence` (shard, term) makes the append fail with `FencedOut` when a higher term
        is recorded for the shard, and records its term otherwise.
        """
        self._ensure_open()
        pending = PendingAppend(
            stream,
            tuple(encode_event(e, redact=self._redact) for e in events),
            expected_version,
            fence,
        )
        await asyncio.sleep(0)  # let other tasks interleave, as they would with a real store
        self._ensure_open()
        plan = plan_batch(
            [pending],
            head=self.head,
            versions=self._versions,
            existing_keys=self._keys,
            at=encode_at(self._clock.now()),
            term=self._term,
            shard_terms=self._shard_terms,
        )
        outcome = plan.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        for row in plan.rows:
            self._rows.append(row)
            self._stream_positions.setdefault(row.stream, []).append(row.position)
        self._versions.update(plan.versions)
        self._keys.update(plan.keys)
        self._shard_terms.update(plan.shard_terms)
        if plan.rows:
            self._signal_commit()
        return outcome

    async def stream_version(self, stream: str) -> int:
        """The stream's last version, 0 when it has no records."""
        return self._versions.get(stream, 0)

    async def read_stream(self, stream: str, from_version: int = 1) -> list[Record]:
        """The stream's records with version >= `from_version`, in order, verified."""
        positions = self._stream_positions.get(stream, [])
        return [self._record_at(p) for p in positions[max(from_version, 1) - 1 :]]

    async def read_all(
        self, from_position: int = 1, *, batch_size: int = 1000
    ) -> AsyncIterator[Record]:
        """Every record with position >= `from_position`, in order, verified."""
        position = max(from_position, 1)
        while position <= len(self._rows):
            end = min(position + batch_size, len(self._rows) + 1)
            for p in range(position, end):
                yield self._record_at(p)
            position = end
            await asyncio.sleep(0)

    async def subscribe(self, from_position: int = 1) -> AsyncIterator[Record]:
        """Like `read_all`, then tail new records as they commit; ends when closed."""
        position = max(from_position, 1)
        while True:
            committed = self._committed
            while position <= len(self._rows):
                yield self._record_at(position)
                position += 1
            if self._closed:
                return
            await committed.wait()

    async def find_by_key(self, idempotency_key: str) -> Record | None:
        """The record carrying `idempotency_key`, if any."""
        position = self._keys.get(idempotency_key)
        return None if position is None else self._record_at(position)

    async def streams(self) -> list[str]:
        """Every stream that has at least one record, in order of first appearance."""
        return list(self._stream_positions)

    async def shard_term(self, shard: str) -> int:
        """The highest term a fenced append recorded for `shard` (0 when none did)."""
        return self._shard_terms.get(shard, 0)

    async def save_snapshot(self, stream: str, version: int, state: Mapping[str, Any]) -> None:
        """Keep `state` as of `version`; an older version never replaces a newer one.

        Errors: `ValueError` when `version` is beyond the stream's last version.
        """
        self._ensure_open()
        if version < 1 or version > self._versions.get(stream, 0):
            raise ValueError(f"stream {stream!r} has no version {version} to snapshot")
        current = self._snapshots.get(stream)
        if current is None or current[0] <= version:
            self._snapshots[stream] = (version, encode_json(state))

    async def load_snapshot(self, stream: str) -> Snapshot | None:
        """The newest snapshot of `stream`, if any (a fresh copy)."""
        kept = self._snapshots.get(stream)
        if kept is None:
            return None
        return Snapshot(stream, kept[0], json.loads(kept[1]))

    async def verify(self) -> int:
        """Check the whole checksum chain; return the record count.

        Errors: `CorruptJournal` naming the first bad position.
        """
        previous = GENESIS
        for expected, row in enumerate(self._rows, start=1):
            if row.position != expected:
                raise CorruptJournal(_WHERE, "a record is missing", expected)
            if row_checksum(previous, row) != row.checksum:
                raise CorruptJournal(_WHERE, "the record's checksum does not match", expected)
            previous = row.checksum
        return len(self._rows)

    async def import_records(self, records: Iterable[Record]) -> int:
        """Load exported records into this empty journal, keeping positions and checksums.

        Errors: `ValueError` when the journal is not empty; `CorruptJournal` when the
        records do not form an unbroken chain from position 1.
        """
        self._ensure_open()
        if self._rows:
            raise ValueError("import needs an empty journal")
        rows, _head = chain_for_import(records, where=_WHERE)
        for row in rows:
            self._rows.append(row)
            self._stream_positions.setdefault(row.stream, []).append(row.position)
            self._versions[row.stream] = row.stream_version
            if row.idempotency_key is not None:
                self._keys[row.idempotency_key] = row.position
            self._term = max(self._term, row.term)
        self._signal_commit()
        return len(rows)

    async def close(self) -> None:
        """Refuse later writes and end every subscription."""
        self._closed = True
        self._signal_commit()

    def _record_at(self, position: int) -> Record:
        row = self._rows[position - 1]
        previous = self._rows[position - 2].checksum if position > 1 else GENESIS
        return verified_record(_WHERE, previous, row)

    def _signal_commit(self) -> None:
        committed, self._committed = self._committed, asyncio.Event()
        committed.set()

    def _ensure_open(self) -> None:
        if self._closed:
            raise JournalClosed("the in-memory journal is closed; create a new one")
