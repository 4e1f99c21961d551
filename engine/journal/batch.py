"""Planning a commit: turn pending appends into chained rows, pure and backend-neutral.

Both backends call `plan_batch` with what they know (the chain head, the versions of the
touched streams, the positions of already-used idempotency keys) and write its rows in
one transaction. One append's `ConcurrencyError` never affects the others in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from engine.journal.codec import GENESIS, EncodedEvent, Row, make_row, row_checksum, row_of
from engine.journal.errors import ConcurrencyError, CorruptJournal, FencedOut, JournalError
from engine.journal.record import Record
from engine.journal.store import ANY_VERSION


@dataclass(frozen=True, slots=True)
class Head:
    """The last committed record: its position (0 when empty) and checksum."""

    position: int = 0
    checksum: str = GENESIS


@dataclass(frozen=True, slots=True)
class Fence:
    """An append's claim to write for `shard` as of `term` (a sharded replica's token).

    The append is refused when a higher term is recorded for the shard; an accepted one
    records its term, so every older owner is refused from then on.
    """

    shard: str
    term: int


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """One caller's `append`, encoded and waiting for the next commit."""

    stream: str
    events: tuple[EncodedEvent, ...]
    expected_version: int
    fence: Fence | None = None


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What to write and what to answer each caller (positions, or the error to raise)."""

    rows: tuple[Row, ...]
    outcomes: tuple[tuple[int, ...] | JournalError, ...]
    head: Head
    versions: Mapping[str, int]
    keys: Mapping[str, int]
    shard_terms: Mapping[str, int]
    """The shard terms the batch's fenced appends raised (to record with the rows)."""


def keys_of(appends: Sequence[PendingAppend]) -> set[str]:
    """Every idempotency key the batch mentions (to look up before planning)."""
    return {
        event.idempotency_key
        for append in appends
        for event in append.events
        if event.idempotency_key is not None
    }


def shards_of(appends: Sequence[PendingAppend]) -> set[str]:
    """Every shard a fenced append of the batch names (to look up before planning)."""
    return {append.fence.shard for append in appends if append.fence is not None}


def plan_batch(
    appends: Sequence[PendingAppend],
    *,
    head: Head,
    versions: Mapping[str, int],
    existing_keys: Mapping[str, int],
    at: str,
    term: int,
    shard_terms: Mapping[str, int] | None = None,
) -> BatchPlan:
    """Plan one transaction for `appends`, in order.

    Assumptions: `versions` holds the current version of every stream in `appends`
    (0 for a new stream); `existing_keys` maps each already-committed key of the batch
    to its position; `shard_terms` the recorded term of every shard a fence names.
    Returns the rows, one outcome per append (positions, `ConcurrencyError` or
    `FencedOut`), the new head, and the versions, keys and shard terms the batch changed.
    """
    rows: list[Row] = []
    outcomes: list[tuple[int, ...] | JournalError] = []
    new_versions: dict[str, int] = {}
    keys: dict[str, int] = {}
    recorded = dict(shard_terms or {})
    raised: dict[str, int] = {}
    position, previous = head.position, head.checksum
    for append in appends:
        fence = append.fence
        if fence is not None:
            known_term = recorded.get(fence.shard, 0)
            if known_term > fence.term:
                outcomes.append(FencedOut(fence.shard, fence.term, known_term))
                continue
        version = new_versions.get(append.stream, versions.get(append.stream, 0))
        answers: list[int | None] = []
        fresh: list[EncodedEvent] = []
        for event in append.events:
            key = event.idempotency_key
            known = None if key is None else keys.get(key, existing_keys.get(key))
            answers.append(known)
            if known is None:
                fresh.append(event)
        if fresh and append.expected_version not in (ANY_VERSION, version):
            outcomes.append(ConcurrencyError(append.stream, append.expected_version, version))
            continue
        positions: list[int] = []
        batch_keys: dict[str, int] = {}
        for event, known in zip(append.events, answers, strict=True):
            key = event.idempotency_key
            if known is None and key is not None and key in batch_keys:
                known = batch_keys[key]  # the same key twice in one append
            if known is not None:
                positions.append(known)
                continue
            position += 1
            version += 1
            row = make_row(
                previous,
                position=position,
                stream=append.stream,
                stream_version=version,
                event=event,
                at=at,
                term=term,
            )
            rows.append(row)
            previous = row.checksum
            positions.append(position)
            if key is not None:
                batch_keys[key] = position
        keys.update(batch_keys)
        new_versions[append.stream] = version
        outcomes.append(tuple(positions))
        if fence is not None and fence.term > recorded.get(fence.shard, 0):
            recorded[fence.shard] = raised[fence.shard] = fence.term
    return BatchPlan(
        rows=tuple(rows),
        outcomes=tuple(outcomes),
        head=Head(position, previous),
        versions=new_versions,
        keys=keys,
        shard_terms=raised,
    )


def chain_for_import(records: Iterable[Record], *, where: str) -> tuple[list[Row], Head]:
    """The rows of exported `records`, checked to chain unbroken from position 1.

    Errors: `CorruptJournal` naming `where` and the first position that has a gap or
    fails its checksum.
    """
    rows: list[Row] = []
    previous = GENESIS
    for expected, record in enumerate(records, start=1):
        row = row_of(record)
        if row.position != expected:
            raise CorruptJournal(where, "the imported records have a gap", expected)
        if row_checksum(previous, row) != row.checksum:
            raise CorruptJournal(where, "an imported record fails its checksum", expected)
        previous = row.checksum
        rows.append(row)
    return rows, Head(len(rows), previous)
