"""A stream whose history passes a size threshold (setting `history_warn_records`; as
Temporal warns at 10,240 events): a Warning Event on the resource and the `/metrics`
figures, once per stream per process. A long history costs every restart's fold and
every replay; the usual cause is a loop (a resource waiting for another, a step failing
again and again), else a long life that `engine journal compact` can cut.
"""

from __future__ import annotations

from typing import Protocol

from engine.clock import Clock
from engine.identity import StreamId
from engine.runtime.reconcile.event_recorder import EventRecorder
from engine.runtime.reconcile.objects import PrimaryView

REASON = "HistoryTooLong"


class HistoryMetrics(Protocol):
    def count_history_warning(self, kind: str, records: int) -> None: ...


class HistoryWarnings:
    """The stream writer's `HistoryWatch`: posts the Warning Event and counts it."""

    def __init__(
        self,
        *,
        limit: int,
        objects: PrimaryView,
        events: EventRecorder,
        clock: Clock,
        metrics: HistoryMetrics | None = None,
    ) -> None:
        self.limit = limit
        self._objects = objects
        self._events = events
        self._clock = clock
        self._metrics = metrics

    async def exceeded(self, stream: str, records: int) -> None:
        """`stream` holds `records` records, at least `limit`."""
        ident = StreamId.parse(stream)
        if self._metrics is not None:
            self._metrics.count_history_warning(ident.kind, records)
        key = self._objects.key_of_uid(ident.uid)
        entry = self._objects.get(key) if key is not None else None
        if entry is None:
            return
        await self._events.post(
            entry.obj,
            suffix="history",
            reason=REASON,
            message=(
                f"the journal holds {records} records of this resource (the warning is at "
                f"{self.limit}): look for a loop with `engine why`, or cut old history "
                "with `engine journal compact`"
            ),
            warning=True,
            now=self._clock.now(),
        )
