"""The supervisor's status conditions (`Stuck`, `Deadlocked`): kept per resource so every
status patch of the reconciler carries them, and written at once when they appear.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.effects.errors import PermanentError, RetryableError
from engine.identity import Kind
from engine.runtime.reconcile.objects import Entry, PrimaryView
from engine.runtime.reconcile.ports import ClusterWriter

log = logging.getLogger(__name__)

STUCK = "Stuck"
DEADLOCKED = "Deadlocked"
SUPERVISOR_TYPES = (STUCK, DEADLOCKED)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


class SupervisorConditions:
    """key (`namespace/name`) → its supervisor conditions by type. One event loop."""

    def __init__(self) -> None:
        self._by_key: dict[str, dict[str, dict[str, str]]] = {}

    def of(self, key: str) -> tuple[Mapping[str, str], ...]:
        """The conditions to keep on `key`'s status, in type order."""
        found = self._by_key.get(key)
        if not found:
            return ()
        return tuple(found[kind] for kind in SUPERVISOR_TYPES if kind in found)

    def set(self, key: str, condition: Mapping[str, str], *, now: datetime) -> None:
        """Hold `condition` (a dict with `type`, `status`, `reason`, `message`) for `key`;
        its `lastTransitionTime` is kept while the condition stays the same type."""
        held = self._by_key.setdefault(key, {})
        before = held.get(condition["type"])
        since = before["lastTransitionTime"] if before is not None else _stamp(now)
        held[condition["type"]] = {**condition, "lastTransitionTime": since}

    def clear(self, key: str, kind: str | None = None) -> bool:
        """Drop `key`'s condition of type `kind` (all when None); True if one was held."""
        held = self._by_key.get(key)
        if not held:
            return False
        if kind is None:
            del self._by_key[key]
            return True
        dropped = held.pop(kind, None) is not None
        if not held:
            del self._by_key[key]
        return dropped

    def count(self, kind: str) -> int:
        """Resources holding a condition of type `kind` (for the gauges)."""
        return sum(1 for held in self._by_key.values() if kind in held)


async def patch_conditions(
    writer: ClusterWriter,
    kind: Kind,
    view: PrimaryView,
    key: str,
    held: SupervisorConditions,
    *,
    fallback: Entry | None = None,
) -> None:
    """Write `key`'s status conditions now: the object's own (not the supervisor's types)
    followed by those `held`. Best effort: a failed write is logged, and the next status
    patch of the reconciler carries the conditions anyway. `fallback`: the object as last
    known, for a key the view no longer holds (the engine is done with it, but it still
    exists, e.g. held by `foregroundDeletion`)."""
    entry = view.get(key) or fallback
    if entry is None or not entry.exists:
        return
    status: Mapping[str, Any] = entry.obj.get("status") or {}
    own = [
        dict(c)
        for c in status.get("conditions") or ()
        if isinstance(c, Mapping) and c.get("type") not in SUPERVISOR_TYPES
    ]
    body = {"conditions": own + [dict(c) for c in held.of(key)]}
    try:
        updated = await writer.patch_status(kind, entry.obj, body)
    except (RetryableError, PermanentError) as error:
        log.warning("could not write the conditions of %r: %s", key, error)
        return
    if updated is not None:
        view.update(updated)
