"""The one door into the journal for resource streams: `StreamWriter` appends with the
expected version of the folded state, stamps the current span's ids, and advances the
fold in the same call; it also serves each stream's folded state (loaded once, then
advanced by reading only new records, with snapshots every N records).

The first load of a stream teaches the child ledger the manifests last applied and the
observation log the last observation journaled, and keeps the span ids of the newest
record a reconcile journaled (what the first reconcile after a restart links to).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from engine.clock import Clock, SystemClock
from engine.fsm import events as ev
from engine.fsm.fold import apply, fold
from engine.fsm.key import parse_key
from engine.fsm.state import ResourceState, evolve_state, to_snapshot
from engine.identity import StreamId
from engine.journal.record import NewEvent, Record
from engine.journal.store import Journal
from engine.runtime.reconcile.children import ChildLedger
from engine.runtime.reconcile.code_version import CODE_VERSION_FIELD
from engine.runtime.reconcile.repeats import RepeatCollapser
from engine.telemetry.spans import SpanIds, current_ids


class AppendGate(Protocol):
    """Asked before each append (replay uses one to hold the live loop to the recording).

    `admit` blocks until the append may go ahead, then asks `unless()`: True drops the
    append (admit returns False); it raises to refuse the append. `committed` follows
    each admitted append once the journal holds it."""

    async def admit(
        self, stream: str, events: Sequence[NewEvent], unless: Callable[[], bool] | None
    ) -> bool: ...

    def committed(self, stream: str) -> None: ...


class HistoryWatch(Protocol):
    """Told once per stream when its history reaches `limit` records."""

    limit: int

    async def exceeded(self, stream: str, records: int) -> None: ...


class ObservationSeed(Protocol):
    """Learns the last journaled observation of a stream when it is first loaded."""

    def seed(self, stream: str, records: list[Record]) -> None: ...


@dataclass
class _Folded:
    state: ResourceState
    snapshot_version: int
    journaled_link: SpanIds | None = None
    held: ResourceState | None = None
    """`state` with the events held back by the repeat collapser folded on (same version)."""
    position: int = 0
    """The position of the newest record this writer appended to the stream."""


class StreamWriter:
    """stream → folded `ResourceState`, and the only appender of resource streams.

    Guarantees: every append passes `expected_version` = the folded version, so a writer
    elsewhere (another process, another `StreamWriter`) that appended to the stream makes
    this append fail with the journal's `ConcurrencyError` instead of interleaving; appends
    to one stream from this writer are serialized (one in flight per stream), so its own
    callers never race each other; after `append` returns, `current(stream)` includes the
    appended records. Every event without span ids gets the current span's, and every
    event without a `code_version` field gets `code_version` (the operator's handler
    code version) when one is given.

    Consecutive identical failed attempts are collapsed (`RepeatCollapser`, unless
    `collapse_repeats` is False): the events it holds back are not journaled, yet
    `current(stream)` includes them (folded on the journaled state, at its version), and
    their `append` answers the position of the stream's newest journaled record.
    Assumption: one event loop.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        ledger: ChildLedger,
        snapshot_every: int = 50,
        gate: AppendGate | None = None,
        code_version: str | None = None,
        history: HistoryWatch | None = None,
        clock: Clock | None = None,
        collapse_repeats: bool = True,
    ) -> None:
        self._journal = journal
        self._clock: Clock = clock or SystemClock()
        self._repeats = RepeatCollapser() if collapse_repeats else None
        self._code_version = code_version
        self._history = history
        self._warned: set[str] = set()
        self._ledger = ledger
        self._snapshot_every = snapshot_every
        self._gate = gate
        self._seeds: list[ObservationSeed] = []
        self._folded: dict[str, _Folded] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}  # appends holding or awaiting each stream's lock

    @property
    def journal(self) -> Journal:
        """The journal behind the door (for reads; appends go through `append`)."""
        return self._journal

    def seed_observations(self, seed: ObservationSeed) -> None:
        """Teach `seed` each stream's last observation when the stream is first loaded."""
        self._seeds.append(seed)

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        *,
        unless: Callable[[], bool] | None = None,
    ) -> tuple[int, ...]:
        """Append `events` to `stream` atomically; their positions, in order.

        `unless` is asked at the moment of appending (after every earlier append to the
        stream has committed): True appends nothing and returns `()` (an observation
        that another caller journaled first, say).
        Errors: `ConcurrencyError` when another writer appended to the stream since this
        writer folded it; whatever the gate raises; the journal's errors.
        """
        stamped = [_stamped(event, self._code_version) for event in events]
        repeats = self._repeats
        if repeats is None or not stamped:
            return await self._append(stream, stamped, unless)
        if unless is not None and repeats.holding(stream) and unless():
            return ()
        plan = repeats.plan(stream, stamped)
        positions = await self._append(stream, list(plan.write), unless) if plan.write else ()
        if not plan.held:
            return positions[len(positions) - len(stamped) :]
        await self._hold(stream, stamped)
        return (self._folded[stream].position,) * len(stamped)

    def unjournaled(self, stream: str, key: str) -> tuple[int, int]:
        """(the highest attempt of `key` started, its waits the journal does not hold):
        what the collapsed repeats add to the key's journaled history."""
        return self._repeats.unjournaled(stream, key) if self._repeats is not None else (0, 0)

    def held_events(self, stream: str) -> int:
        """How many held events of `stream` the next append that ends its run journals."""
        return self._repeats.held_events(stream) if self._repeats is not None else 0

    def holding_streams(self) -> tuple[str, ...]:
        """The streams with events held back."""
        return self._repeats.holding_streams() if self._repeats is not None else ()

    def holding(self, stream: str) -> bool:
        """Whether events of `stream` are held back (identical failures going on)."""
        return self._repeats is not None and self._repeats.holding(stream)

    async def _hold(self, stream: str, events: Sequence[NewEvent]) -> None:
        """Fold `events` on the stream's state without journaling them (after any append
        of the stream in flight has committed)."""
        lock = self._locks.get(stream)
        if lock is None:
            lock = self._locks[stream] = asyncio.Lock()
        if lock.locked() or stream not in self._folded:
            async with lock:
                await self.current(stream)
        folded = self._folded[stream]
        base = folded.held or folded.state
        version, at = base.version, self._clock.now()
        state = base
        for event in events:
            state = apply(state, _unjournaled(stream, state.version + 1, at, event))
        folded.held = evolve_state(state, {"version": version})

    async def _append(
        self, stream: str, stamped: list[NewEvent], unless: Callable[[], bool] | None
    ) -> tuple[int, ...]:
        # the gate before the lock: a gate that holds this append back must not hold back
        # an earlier append to the same stream that it waits for
        if self._gate is not None and not await self._gate.admit(stream, stamped, unless):
            return ()
        lock = self._locks.get(stream)
        if lock is None:
            lock = self._locks[stream] = asyncio.Lock()
        self._users[stream] = self._users.get(stream, 0) + 1
        try:
            positions = await self._append_locked(lock, stream, stamped, unless)
        finally:
            self._users[stream] -= 1
            if not self._users[stream]:
                del self._users[stream]
                if stream not in self._folded:  # forgotten meanwhile: drop its lock too
                    self._locks.pop(stream, None)
        if self._history is not None and positions:
            await self._watch_history(stream, self._history)
        return positions

    async def _watch_history(self, stream: str, history: HistoryWatch) -> None:
        """Tell `history` once when the stream's records reach its limit (0: never)."""
        folded = self._folded.get(stream)
        if history.limit <= 0 or folded is None or stream in self._warned:
            return
        if folded.state.version < history.limit:
            return
        self._warned.add(stream)
        await history.exceeded(stream, folded.state.version)

    async def _append_locked(
        self,
        lock: asyncio.Lock,
        stream: str,
        stamped: Sequence[NewEvent],
        unless: Callable[[], bool] | None,
    ) -> tuple[int, ...]:
        async with lock:
            if self._gate is None and unless is not None and unless():
                return ()
            state = await self.current(stream)
            positions = await self._journal.append(stream, stamped, expected_version=state.version)
            if self._gate is not None:
                self._gate.committed(stream)
            await self.current(stream)  # advance the fold past what was just committed
            folded = self._folded.get(stream)
            if folded is not None and positions:
                folded.position = max(folded.position, positions[-1])
            return positions

    async def current(self, stream: str) -> ResourceState:
        """The state after every committed record of `stream`. Errors: `FoldError`."""
        folded = self._folded.get(stream)
        if folded is None:
            return await self._load(stream)
        if await self._journal.stream_version(stream) == folded.state.version:
            # nothing new: the journal knows its heads in memory
            return folded.held or folded.state
        tail = await self._journal.read_stream(stream, folded.state.version + 1)
        if tail:
            folded.state = _fold_on(folded.state, tail)
            folded.held = None  # what is journaled overwrites what was held (see repeats)
            if self._repeats is not None:
                for record in tail:
                    self._repeats.committed(record)
        return folded.held or folded.state

    async def _load(self, stream: str) -> ResourceState:
        snapshot = await self._journal.load_snapshot(stream)
        records = await self._journal.read_stream(stream)
        state = fold(records, snapshot=snapshot)
        loaded = self._folded.get(stream)
        if loaded is not None:
            # another caller loaded the stream while this one read: keep the newer fold
            # (a slower read must never put an older state back)
            if state.version > loaded.state.version:
                loaded.state = state
            return loaded.state
        self._folded[stream] = _Folded(
            state, snapshot.version if snapshot else 0, newest_reconcile_ids(records)
        )
        owner_uid = StreamId.parse(stream).uid
        for manifest in applied_manifests(records):
            self._ledger.applied(owner_uid, manifest, None)
        for seed in self._seeds:
            seed.seed(stream, records)
        return state

    async def journaled_link(self, stream: str) -> SpanIds | None:
        """The span ids of the newest record a reconcile journaled on `stream` before it
        was first loaded (e.g. before a restart or a leader change), or None: what the
        first reconcile of the stream in this process follows. Loads the stream when it
        is not loaded yet (errors: `FoldError`); otherwise reads nothing."""
        folded = self._folded.get(stream)
        if folded is None:
            await self._load(stream)
            folded = self._folded[stream]
        return folded.journaled_link

    def cached(self, stream: str) -> ResourceState | None:
        """The state last folded, without reading the journal."""
        folded = self._folded.get(stream)
        return (folded.held or folded.state) if folded is not None else None

    async def save_snapshot_if_due(self, stream: str) -> None:
        """Save a snapshot when `snapshot_every` records were folded since the last one."""
        folded = self._folded.get(stream)
        if folded is None or folded.state.version - folded.snapshot_version < self._snapshot_every:
            return
        await self._journal.save_snapshot(stream, folded.state.version, to_snapshot(folded.state))
        folded.snapshot_version = folded.state.version

    def forget(self, stream: str) -> None:
        """Drop what is kept of a closed stream (its lock once no append uses it)."""
        self._folded.pop(stream, None)
        if self._repeats is not None:
            self._repeats.forget(stream)
        if stream not in self._users:
            self._locks.pop(stream, None)


def _stamped(event: NewEvent, code_version: str | None) -> NewEvent:
    data = event.data
    if code_version is not None and CODE_VERSION_FIELD not in data:
        data = {**data, CODE_VERSION_FIELD: code_version}
    unstamped = event.trace_id is None and event.span_id is None
    ids = current_ids() if unstamped else None
    if ids is None:
        return event if data is event.data else replace(event, data=data)
    return NewEvent(event.type, data, event.schema, event.idempotency_key, *ids)


def _unjournaled(stream: str, version: int, at: datetime, event: NewEvent) -> Record:
    """`event` as the record it would have been (for the fold only: never stored)."""
    return Record(
        position=0,
        stream=stream,
        stream_version=version,
        type=event.type,
        schema=event.schema,
        at=at,
        data=event.data,
        idempotency_key=event.idempotency_key,
        trace_id=event.trace_id,
        span_id=event.span_id,
        term=0,
        checksum="",
    )


def _fold_on(state: ResourceState, tail: list[Record]) -> ResourceState:
    for record in tail:
        if record.stream_version > state.version:
            state = apply(state, record)
    return state


def newest_reconcile_ids(records: list[Record]) -> SpanIds | None:
    """The well-formed span ids of the newest record in `records` that a reconcile (or
    another engine operation) journaled; the watch sink's `Observed` records are skipped:
    their `observe` spans are not a step of the resource's reconciles."""
    for record in reversed(records):
        if record.type == ev.OBSERVED and record.data.get("watch_event") != "reconcile":
            continue
        ids = SpanIds.parse(record.trace_id, record.span_id)
        if ids is not None:
            return ids
    return None


def applied_manifests(records: list[Record]) -> list[Mapping[str, object]]:
    """The child manifests of the newest provisioning round found in `records` (the
    `applied` field of `apply.*` effect results): the round of the last one journaled
    (after a restore from a backup an older generation is the newest round)."""
    newest: tuple[int, int] = (-1, -1)
    found: list[tuple[tuple[int, int], Mapping[str, object]]] = []
    for record in records:
        if record.type != ev.EFFECT_SUCCEEDED:
            continue
        name = str(record.data.get("name") or "")
        result = record.data.get("result")
        parts = parse_key(str(record.data.get("key") or ""))
        if not name.startswith("apply.") or parts is None or not isinstance(result, Mapping):
            continue
        applied = result.get("applied")
        if not isinstance(applied, Mapping):
            continue
        when = (parts.generation, parts.n)
        newest = when
        found.append((when, applied))
    return [manifest for when, manifest in found if when == newest]
