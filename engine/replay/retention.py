"""Which closed history a compaction may archive, decided by folding every stream.

Two kinds of cut: a stream Deleted longer ago than the retention goes whole; a
long-lived stream loses the superseded middle of its history, up to its newest snapshot
but never into its current generation (whose effect keys and spec the engine still
reads), once that is at least `min_history` records. Each cut is checked: folding the
kept tail from the state at the cut gives exactly the state of the whole stream.
Also `history_size`, a per-stream check the runtime can call to see when to compact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.fsm import events as ev
from engine.fsm.fold import apply
from engine.fsm.state import ResourceState, from_snapshot, to_snapshot
from engine.fsm.table import DELETED
from engine.journal.codec import encode_json
from engine.journal.compaction import StreamCut
from engine.journal.offline_reader import OfflineReader
from engine.journal.record import Record
from engine.journal.store import Journal
from engine.replay.timeline import INITIAL

MIN_HISTORY = 200
"""Default: a live stream is cut only when this many records would go."""


@dataclass(frozen=True, slots=True)
class HistorySize:
    """A stream's history: its records and how many a restart folds (past its snapshot)."""

    stream: str
    records: int
    since_snapshot: int

    def exceeds(self, limit: int) -> bool:
        """More than `limit` records to fold on a restart: time to compact or snapshot."""
        return self.since_snapshot > limit


async def history_size(journal: Journal, stream: str) -> HistorySize:
    """The size of `stream`'s history in `journal` (two cheap reads: version, snapshot)."""
    version = await journal.stream_version(stream)
    snapshot = await journal.load_snapshot(stream)
    return HistorySize(stream, version, version - (snapshot.version if snapshot else 0))


def _start(reader: OfflineReader, stream: str) -> ResourceState:
    cut = reader.cut_state(stream)
    return INITIAL if cut is None else from_snapshot(json.loads(cut[1]))


def _current_generation_from(records: Sequence[Record], generation: int) -> int | None:
    """The version of the first record about `generation` (its first observation)."""
    for record in records:
        if record.type == ev.OBSERVED and record.data.get("generation") == generation:
            return record.stream_version
    return None


def plan_stream(
    reader: OfflineReader,
    stream: str,
    *,
    deleted_before: datetime,
    min_history: int = MIN_HISTORY,
) -> StreamCut | None:
    """The cut for one stream, or None when nothing of it is closed yet.

    Errors: `JournalError`, `FoldError` (a stream that cannot be folded is not cut: the
    caller sees the error).
    """
    records = reader.read_stream(stream)
    if not records:
        return None
    start = _start(reader, stream)
    states = [start]
    for record in records:
        states.append(apply(states[-1], record))
    final = states[-1]
    if final.state == DELETED:
        if records[-1].at < deleted_before:
            return StreamCut(stream, records[-1].stream_version, None)
        return None
    snapshot = reader.query("SELECT version FROM snapshots WHERE stream = ?", (stream,))
    if not snapshot:
        return None
    limit = int(snapshot[0][0])
    current = _current_generation_from(records, final.generation)
    if current is not None:
        limit = min(limit, current - 1)
    first = records[0].stream_version
    if limit - first + 1 < min_history:
        return None
    kept = encode_json(to_snapshot(states[limit - first + 1]))
    refolded = from_snapshot(json.loads(kept))  # what a reader starts from after the cut
    for record in records[limit - first + 1 :]:
        refolded = apply(refolded, record)
    if to_snapshot(refolded) != to_snapshot(final):  # never cut what would fold otherwise
        return None
    return StreamCut(stream, limit, kept)


def plan_compaction(
    reader: OfflineReader,
    *,
    retention: timedelta,
    now: datetime,
    min_history: int = MIN_HISTORY,
) -> list[StreamCut]:
    """Every stream's cut (streams with nothing closed are left out), one stream at a
    time, so memory holds one stream. Errors: as `plan_stream`."""
    cuts = []
    for stream in reader.streams():
        cut = plan_stream(reader, stream, deleted_before=now - retention, min_history=min_history)
        if cut is not None:
            cuts.append(cut)
    return cuts
