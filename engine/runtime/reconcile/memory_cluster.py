"""An in-memory `ClusterWriter`: the API server's answers to the engine's writes, for
tests, the test kit and replay. It applies each write as the API server would
(finalizers, the status subresource, deletion once the last finalizer goes,
server-side apply of children) and remembers what was written; it sends nothing.

Two ways to number versions: a counter (a small stand-in cluster), or a function that
names the resourceVersion the real server answered (replay reads it from the journal).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.clock import Clock
from engine.identity import Kind, ObjectRef

Versions = Callable[[Mapping[str, Any]], str | None]
"""The resourceVersion to give `obj` after a write (None: keep a counter's)."""


@dataclass(frozen=True, slots=True)
class PostedEvent:
    """One Kubernetes Event the engine posted."""

    involved: ObjectRef
    name: str
    reason: str
    message: str
    warning: bool


def with_finalizer(obj: Mapping[str, Any], finalizer: str, *, present: bool) -> dict[str, Any]:
    """A copy of `obj` with `finalizer` added (`present`) or removed (pure)."""
    updated = copy.deepcopy(dict(obj))
    metadata = updated.setdefault("metadata", {})
    finalizers = [f for f in metadata.get("finalizers") or () if f != finalizer]
    if present:
        finalizers.append(finalizer)
    metadata["finalizers"] = finalizers
    return updated


def with_status(obj: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with `status` merge-patched into its status (RFC 7386; pure)."""
    updated = copy.deepcopy(dict(obj))
    updated["status"] = _merge(dict(updated.get("status") or {}), status)
    return updated


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), dict):
            target[key] = _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class MemoryCluster:
    """The objects the engine wrote, by (kind, namespace, name), and every Event it posted.

    Guarantees: each write returns a new copy with a new resourceVersion (from
    `versions` when given, else a counter); removing the last finalizer of an object with
    a `deletionTimestamp` deletes it (the write returns its final state, as the API
    server does); the objects passed in are never changed. Assumption: one event loop.
    """

    def __init__(self, *, clock: Clock, versions: Versions | None = None) -> None:
        self._clock = clock
        self._versions = versions
        self._counter = itertools.count(1)
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: list[PostedEvent] = []
        self.applied: list[dict[str, Any]] = []
        self.requests = 0

    def objects(self) -> list[dict[str, Any]]:
        """Every object held now (children and primaries the engine wrote)."""
        return [copy.deepcopy(o) for o in self._objects.values()]

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._objects.get((kind.describe(), namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def put(self, kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store `obj` as a client's create or update would (a new resourceVersion); not
        one of the engine's writes, so not counted in `requests`."""
        stored = copy.deepcopy(dict(obj))
        stored.setdefault("metadata", {})["resourceVersion"] = str(next(self._counter))
        self._objects[_key(kind, stored)] = stored
        return copy.deepcopy(stored)

    def remove(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        """Delete `obj` outright (a client's delete of an object with no finalizers)."""
        self._objects.pop(_key(kind, obj), None)

    async def add_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any]:
        return self._store(kind, with_finalizer(obj, finalizer, present=True))

    async def remove_finalizer(
        self, kind: Kind, obj: Mapping[str, Any], finalizer: str
    ) -> Mapping[str, Any] | None:
        updated = with_finalizer(obj, finalizer, present=False)
        metadata = updated["metadata"]
        stored = self._store(kind, updated)
        if metadata.get("deletionTimestamp") and not metadata["finalizers"]:
            # the last finalizer went: the API server deletes the object and answers with
            # its final state
            self._objects.pop(_key(kind, updated), None)
        return stored

    async def patch_status(
        self, kind: Kind, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        return self._store(kind, with_status(obj, status))

    async def apply(self, kind: Kind, manifest: Mapping[str, Any]) -> Mapping[str, Any]:
        current = self._objects.get(_key(kind, manifest))
        live = copy.deepcopy(dict(manifest))
        metadata = live.setdefault("metadata", {})
        metadata["uid"] = (current or {}).get("metadata", {}).get("uid") or _uid(live)
        self.applied.append(copy.deepcopy(live))
        return self._store(kind, live)

    async def record_event(
        self,
        involved: Mapping[str, Any],
        *,
        name: str,
        reason: str,
        message: str,
        warning: bool = False,
        now: datetime | None = None,
    ) -> None:
        self.requests += 1
        self.events.append(PostedEvent(ObjectRef.of(involved), name, reason, message, warning))

    def _store(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        version = self._versions(obj) if self._versions is not None else None
        obj["metadata"]["resourceVersion"] = version or str(next(self._counter))
        self._objects[_key(kind, obj)] = obj
        return copy.deepcopy(obj)


def _key(kind: Kind, obj: Mapping[str, Any]) -> tuple[str, str, str]:
    ref = ObjectRef.of(obj)
    return (kind.describe(), ref.namespace, ref.name)


def _uid(obj: Mapping[str, Any]) -> str:
    ref = ObjectRef.of(obj)
    return f"uid-{ref.namespace}-{ref.name}"
