"""The live view's read model: per resource its state, generation and last event,
kept up to date by the reconciler and the observer, read with `snapshot()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ResourceView:
    """One resource as the live view shows it.

    `state` is the folded state machine state; `phase` what its status says; `last_event`
    a short text of the last thing the engine journaled or did for it; `created` its
    creationTimestamp (text, as the API server gave it) for an AGE column.
    """

    namespace: str
    name: str
    uid: str
    state: str
    generation: int
    last_event: str
    updated_at: datetime
    created: str = ""
    phase: str | None = None


class ResourceViews:
    """Key → `ResourceView`; synchronous and cheap (called on every journal append).

    Each change takes the next serial number, so a reader polling for what changed
    (`changed_since`) touches only the views that changed, not every resource."""

    def __init__(self) -> None:
        self._views: dict[str, ResourceView] = {}
        self._serial = 0
        self._changed: dict[str, int] = {}  # key → serial of its last change, oldest first

    def _mark(self, key: str) -> None:
        self._serial += 1
        self._changed.pop(key, None)
        self._changed[key] = self._serial

    def note(
        self,
        key: str,
        obj: Mapping[str, Any],
        *,
        event: str,
        at: datetime,
        state: str | None = None,
    ) -> None:
        """Record that `event` happened to the resource `obj` (state when known)."""
        metadata = obj.get("metadata", {})
        status = obj.get("status") or {}
        current = self._views.get(key)
        uid = str(metadata.get("uid") or "")
        phase = status.get("phase") if isinstance(status.get("phase"), str) else None
        if current is None or current.uid != uid:  # a new view, made once (a listing's)
            self._views[key] = ResourceView(
                namespace=str(metadata.get("namespace") or ""),
                name=str(metadata.get("name") or ""),
                uid=uid,
                state=state or "Pending",
                generation=int(metadata.get("generation") or 0),
                last_event=event,
                updated_at=at,
                created=str(metadata.get("creationTimestamp") or ""),
                phase=phase or None,
            )
            self._mark(key)
            return
        self._views[key] = replace(
            current,
            state=state or current.state,
            generation=int(metadata.get("generation") or current.generation),
            last_event=event,
            updated_at=at,
            phase=phase or current.phase,
        )
        self._mark(key)

    def set_state(self, key: str, state: str) -> None:
        """Update only the state of a known resource."""
        current = self._views.get(key)
        if current is not None and current.state != state:
            self._views[key] = replace(current, state=state)
            self._mark(key)

    def snapshot(self) -> tuple[ResourceView, ...]:
        """Every resource, sorted by namespace and name."""
        return tuple(sorted(self._views.values(), key=lambda v: (v.namespace, v.name)))

    def changed_since(self, serial: int) -> tuple[int, tuple[ResourceView, ...]]:
        """The serial of the newest change, and the views changed after `serial` (0:
        every view), sorted by namespace and name."""
        changed: list[ResourceView] = []
        for key in reversed(self._changed):
            if self._changed[key] <= serial:
                break
            changed.append(self._views[key])
        changed.sort(key=lambda v: (v.namespace, v.name))
        return self._serial, tuple(changed)

    def count(self, *, state: str, phase: str) -> int:
        """Resources in `state` whose status says `phase` (no copy, no sort)."""
        return sum(1 for v in self._views.values() if v.state == state and v.phase == phase)

    def counts(self) -> dict[str, int]:
        """Resources per state (for the `engine_resources` gauge)."""
        counts: dict[str, int] = {}
        for view in self._views.values():
            counts[view.state] = counts.get(view.state, 0) + 1
        return counts
