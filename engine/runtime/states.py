"""Folded states of the streams the reconciler works on, kept in memory and advanced
by reading only each stream's new records; snapshots every N records so a fold after a
restart starts late. The first load of a stream also teaches the child ledger the
manifests last applied, the observation log the last observation journaled, and keeps
the span ids of the newest record a reconcile journaled (the link after a restart).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.fsm import events as ev
from engine.fsm.fold import apply, fold
from engine.fsm.key import parse_key
from engine.fsm.state import ResourceState, to_snapshot
from engine.journal.record import Record
from engine.journal.store import Journal
from engine.runtime.children import ChildLedger
from engine.runtime.observer import ObservationLog
from engine.telemetry.spans import SpanIds


@dataclass
class _Folded:
    state: ResourceState
    snapshot_version: int
    journaled_link: SpanIds | None = None


class StreamStates:
    """stream → folded `ResourceState`. One event loop; one reconcile per stream at a
    time (the queue's promise), so no locking."""

    def __init__(
        self,
        journal: Journal,
        *,
        ledger: ChildLedger,
        log: ObservationLog,
        snapshot_every: int = 50,
    ) -> None:
        self._journal = journal
        self._ledger = ledger
        self._log = log
        self._snapshot_every = snapshot_every
        self._folded: dict[str, _Folded] = {}

    async def current(self, stream: str) -> ResourceState:
        """The state after every committed record of `stream`. Errors: `FoldError`."""
        folded = self._folded.get(stream)
        if folded is None:
            return await self._load(stream)
        if await self._journal.stream_version(stream) == folded.state.version:
            return folded.state  # nothing new: the journal knows its heads in memory
        tail = await self._journal.read_stream(stream, folded.state.version + 1)
        if tail:
            folded.state = _fold_on(folded.state, tail)
        return folded.state

    async def _load(self, stream: str) -> ResourceState:
        snapshot = await self._journal.load_snapshot(stream)
        records = await self._journal.read_stream(stream)
        state = fold(records, snapshot=snapshot)
        self._folded[stream] = _Folded(
            state, snapshot.version if snapshot else 0, newest_reconcile_ids(records)
        )
        owner_uid = stream.rpartition("#")[2]
        for manifest in applied_manifests(records):
            self._ledger.applied(owner_uid, manifest, None)
        self._log.seed(stream, records)
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
        return folded.state if folded is not None else None

    async def save_snapshot_if_due(self, stream: str) -> None:
        """Save a snapshot when `snapshot_every` records were folded since the last one."""
        folded = self._folded.get(stream)
        if folded is None or folded.state.version - folded.snapshot_version < self._snapshot_every:
            return
        await self._journal.save_snapshot(stream, folded.state.version, to_snapshot(folded.state))
        folded.snapshot_version = folded.state.version

    def forget(self, stream: str) -> None:
        self._folded.pop(stream, None)


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
    `applied` field of `apply.*` effect results)."""
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
        newest = max(newest, when)
        found.append((when, applied))
    return [manifest for when, manifest in found if when == newest]
