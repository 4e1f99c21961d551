"""The whole journal as lanes: one per stream, plus the deadlocks found across them
(pure; fed records in position order, from a file or live as they are appended)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.fsm import events as ev
from engine.journal.record import Record
from engine.ui.lanes import Lane, StreamName, seconds_between


@dataclass(frozen=True, slots=True)
class Deadlock:
    """A wait-for cycle the supervisor journaled (members as `ns/name`, in wait order)."""

    at: float
    position: int
    cycle: tuple[str, ...]


@dataclass(slots=True)
class Picture:
    """Lanes by stream, the journal's first time (`origin`) and its last record."""

    lanes: dict[str, Lane] = field(default_factory=dict)
    deadlocks: list[Deadlock] = field(default_factory=list)
    origin: datetime | None = None
    end: float = 0.0
    last_position: int = 0
    records: int = 0

    def add(self, record: Record) -> Lane:
        """Fold one more record into its lane; the lane it changed.

        Errors: `FoldError` for a record that cannot be folded.
        """
        if self.origin is None:
            self.origin = record.at
        at = seconds_between(self.origin, record.at)
        lane = self.lanes.get(record.stream)
        if lane is None:
            lane = self.lanes[record.stream] = Lane(StreamName.of(record.stream))
        lane.add(record, at)
        self.end = max(self.end, at)
        self.last_position = record.position
        self.records += 1
        if record.type == ev.DEADLOCK_DETECTED:
            # members are streams (or `ns/name` keys): lanes are found by label
            cycle = tuple(StreamName.of(str(s)).label for s in record.data.get("cycle") or ())
            # one cycle is journaled once per member: draw it once
            if cycle and not any(set(d.cycle) == set(cycle) for d in self.deadlocks):
                self.deadlocks.append(Deadlock(at, record.position, cycle))
        return lane

    def ordered(self) -> list[Lane]:
        """The lanes sorted by namespace, name and stream (the page's order)."""
        return sorted(
            self.lanes.values(),
            key=lambda lane: (lane.resource.namespace, lane.resource.name, lane.resource.stream),
        )

    def lanes_of(self, label: str) -> list[Lane]:
        """The lanes of one resource `ns/name` (every stream, a re-created object too)."""
        return [lane for lane in self.ordered() if lane.resource.label == label]
