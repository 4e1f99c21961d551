"""Supervisors' notes to a key's next turn: what the stuck watchdog and the deadlock
reporter found, left here (and the key enqueued) instead of being written beside a
running reconcile. The reconciler drains a key's notes at the start of its turn and
journals, patches and posts there, so one worker per key covers every write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.journal.record import NewEvent
from engine.runtime.reconcile.objects import Entry


@dataclass(frozen=True, slots=True)
class Note:
    """One finding for one resource.

    - `stream`: the resource's journal stream; `records`: what to journal there, in
      order (e.g. `StuckDetected`, `HealingApplied`, an overdue effect given up);
    - `condition`: a supervisor status condition to hold and write, or None;
    - `reason`/`message`: a Warning Event to post (no Event when `reason` is empty);
    - `fallback`: the object as last seen, for a resource the view no longer holds (an
      owner kept by `foregroundDeletion` after the engine was done with it).
    """

    stream: str
    records: tuple[NewEvent, ...]
    condition: Mapping[str, str] | None = None
    reason: str = ""
    message: str = ""
    fallback: Entry | None = None
    give_up: NewEvent | None = None
    """An `EffectFailed` (given up) to journal after `records`, unless its key has
    succeeded by the turn (the stuck watchdog's `fail` healing)."""


class Inbox:
    """key (`namespace/name`) → notes not yet acted on, oldest first. One event loop."""

    def __init__(self) -> None:
        self._notes: dict[str, list[Note]] = {}

    def leave(self, key: str, note: Note) -> None:
        """Keep `note` for `key`'s next turn (the caller enqueues the key)."""
        self._notes.setdefault(key, []).append(note)

    def take(self, key: str) -> tuple[Note, ...]:
        """Every note left for `key`, removed from the inbox."""
        return tuple(self._notes.pop(key, ()))

    def pending(self, key: str) -> bool:
        return key in self._notes

    def __len__(self) -> int:
        return sum(len(notes) for notes in self._notes.values())
