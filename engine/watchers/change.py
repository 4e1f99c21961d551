"""What a watcher hands its sink: one observed change, where it came from, and the cache."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from engine.watchers.resource import Kind


class ChangeType(StrEnum):
    """The kind of change; persisted by consumers, so values are schema (add, never rename)."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RESYNC = "resync"


class ChangeOrigin(StrEnum):
    """How the change was learnt: a watch event, a relist difference, or a periodic resync."""

    WATCH = "watch"
    RELIST = "relist"
    RESYNC = "resync"


class CacheView(Protocol):
    """Read-only access to a watcher's cache of objects, keyed by (namespace, name)."""

    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The cached object, or None."""
        ...

    def objects(self, namespace: str | None = None) -> list[Mapping[str, Any]]:
        """Every cached object (in `namespace` only, when given), sorted by key."""
        ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Change:
    """One change for the sink.

    `obj` is the object as the API server returned it (for a deletion: its last state; for
    a deletion found by a relist: the cached state). `previous` is the cached object before
    this change, or None. `cache` does **not** yet hold this change: the watcher applies it
    only after the sink returns, so a sink that raises leaves cache and resume point where
    they were and the change is delivered again. Treat `obj`, `previous` and `cache` as
    read-only.
    """

    type: ChangeType
    origin: ChangeOrigin
    resource: Kind
    obj: Mapping[str, Any]
    previous: Mapping[str, Any] | None
    cache: CacheView

    @property
    def namespace(self) -> str:
        """The object's namespace ("" when cluster-scoped)."""
        return str(self.obj.get("metadata", {}).get("namespace") or "")

    @property
    def name(self) -> str:
        """The object's name."""
        return str(self.obj.get("metadata", {}).get("name") or "")

    @property
    def resource_version(self) -> str:
        """The object's resourceVersion ("" when absent)."""
        return str(self.obj.get("metadata", {}).get("resourceVersion") or "")


Sink = Callable[[Change], Awaitable[None]]
"""The consumer: awaited once per change, in order, before the watcher moves on."""
