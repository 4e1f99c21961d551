"""An in-memory stand-in for the engine's cluster writer: it keeps the objects applied
(server-side apply: create or replace, resourceVersion counting up), the status patches
and the Events, in order, so a test reads what a handler did without an API server.

It answers the same calls as the engine's `KubeWriter` (`apply`, `get`, `patch_status`,
`record_event`) with the same shapes; nothing here talks to the network.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

ObjectKey = tuple[str, str, str, str]
"""(apiVersion, kind, namespace, name)."""


class KindAddress(Protocol):
    """What the writer is told about a kind (the engine's `KindRef` has these)."""

    @property
    def api_version(self) -> str: ...

    @property
    def kind(self) -> str: ...


@dataclass
class MemoryCluster:
    """Objects by (apiVersion, kind, namespace, name), and every write in order."""

    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    """Each manifest as applied (with the namespace and ownerReference the engine set)."""
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    _versions: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _uids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def apply(self, kind: KindAddress, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace the object; return it live (uid kept, resourceVersion new)."""
        metadata = dict(manifest.get("metadata") or {})
        key = (kind.api_version, kind.kind, str(metadata.get("namespace") or ""),
               str(metadata["name"]))  # fmt: skip
        before = self.objects.get(key)
        metadata["uid"] = (before or {}).get("metadata", {}).get("uid") or self._uid()
        metadata["resourceVersion"] = str(next(self._versions))
        live = {**copy.deepcopy(dict(manifest)), "metadata": metadata}
        self.objects[key] = live
        self.applied.append(copy.deepcopy(dict(manifest)))
        return copy.deepcopy(live)

    async def get(self, kind: KindAddress, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None."""
        found = self.objects.get((kind.api_version, kind.kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    async def patch_status(
        self, kind: KindAddress, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Record `status` for `obj` (merged into the stored object when there is one)."""
        metadata = obj.get("metadata", {})
        self.statuses.append({"name": metadata.get("name"), "status": copy.deepcopy(dict(status))})
        key = (kind.api_version, kind.kind, str(metadata.get("namespace") or ""),
               str(metadata.get("name")))  # fmt: skip
        stored = self.objects.get(key)
        if stored is None:
            return None
        stored["status"] = {**(stored.get("status") or {}), **dict(status)}
        return copy.deepcopy(stored)

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
        """Record an Event about `involved`."""
        self.events.append(
            {
                "name": name,
                "involved": involved.get("metadata", {}).get("name"),
                "reason": reason,
                "message": message,
                "type": "Warning" if warning else "Normal",
            }
        )

    def children_of(self, owner_uid: str) -> list[dict[str, Any]]:
        """The stored objects whose controller ownerReference is `owner_uid`."""
        return [
            copy.deepcopy(obj)
            for obj in self.objects.values()
            if any(
                ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences", ())
            )
        ]

    def _uid(self) -> str:
        return f"memory-uid-{next(self._uids)}"
