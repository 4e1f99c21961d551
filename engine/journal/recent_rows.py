"""The newest rows this process committed, per stream, kept in memory so that reading a
stream's tail right after appending to it (what a reconcile does after each of its own
appends) needs no round trip to the reader thread and no re-verification of rows whose
checksums this process computed itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from engine.journal.codec import Row, decode_row
from engine.journal.record import Record


class RecentRows:
    """stream → its newest committed rows (consecutive versions, at most `per_stream`),
    for at most `streams` streams (least recently written dropped first).

    Guarantee: `read` answers only when the rows it holds reach from the asked version
    to `last_version` without a gap; otherwise it returns None and the caller reads the
    file. A row is decoded once, on its first read; later reads share that `Record`
    (frozen; nothing in the engine changes a record's data).
    """

    def __init__(self, *, per_stream: int = 8, streams: int = 4096) -> None:
        self._per_stream = per_stream
        self._streams = streams
        self._rows: OrderedDict[str, list[_Held]] = OrderedDict()

    def committed(self, rows: Sequence[Row]) -> None:
        """Remember `rows`, just committed in this order."""
        for row in rows:
            held = self._rows.get(row.stream)
            if held is None or held[-1].row.stream_version + 1 != row.stream_version:
                held = self._rows[row.stream] = []
            held.append(_Held(row))
            if len(held) > self._per_stream:
                del held[0]
            self._rows.move_to_end(row.stream)
        while len(self._rows) > self._streams:
            self._rows.popitem(last=False)

    def read(self, stream: str, from_version: int, last_version: int) -> list[Record] | None:
        """The records of `stream` from `from_version` on, when the rows held cover them
        up to `last_version` (the stream's committed version); else None."""
        held = self._rows.get(stream)
        if not held or held[-1].row.stream_version != last_version:
            return None
        start = max(from_version, 1)
        first = held[0].row.stream_version
        if start < first:
            return None
        return [kept.record() for kept in held[start - first :]]

    def clear(self) -> None:
        """Forget everything (after a failed commit or an import)."""
        self._rows.clear()


class _Held:
    """One committed row and its record, decoded on first use."""

    __slots__ = ("_record", "row")

    def __init__(self, row: Row) -> None:
        self.row = row
        self._record: Record | None = None

    def record(self) -> Record:
        if self._record is None:
            self._record = decode_row(self.row)
        return self._record
