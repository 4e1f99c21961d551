"""Children the engine applied, and drift: a child deleted, or changed so that a field
the engine set differs from what it applied (server-set fields are not compared).

The ledger holds, per owner uid, the manifest last applied for each child and the
child's newest live state (from the apply's answer and from the child watchers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.runtime.reconcile.objects import WriteOrder, resource_version

_SERVER_METADATA = frozenset({"ownerReferences", "namespace", "name", "resourceVersion", "uid"})


@dataclass(frozen=True, slots=True)
class ChildId:
    """Which child: apiVersion, kind, namespace, name."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ChildId:
        metadata = obj.get("metadata", {})
        return cls(
            api_version=str(obj.get("apiVersion") or ""),
            kind=str(obj.get("kind") or ""),
            namespace=str(metadata.get("namespace") or ""),
            name=str(metadata.get("name") or ""),
        )


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller owner (ownerReference with controller=true)."""
    for reference in obj.get("metadata", {}).get("ownerReferences") or ():
        if isinstance(reference, Mapping) and reference.get("controller") is True:
            uid = reference.get("uid")
            return str(uid) if uid else None
    return None


def differs(live: Mapping[str, Any], applied: Mapping[str, Any]) -> bool:
    """Whether any field of `applied` has another value in `live` (pure).

    Mappings are compared key by key (keys only in `live` are the server's or another
    manager's and do not count); lists and scalars must be equal. In `metadata` only
    labels and annotations are compared; ownerReferences, name and namespace are set by
    the engine itself.
    """
    for key, want in applied.items():
        if key == "metadata" and isinstance(want, Mapping):
            have_meta = live.get("metadata") or {}
            for part, wanted in want.items():
                if part in _SERVER_METADATA:
                    continue
                if _differs_value(have_meta.get(part), wanted):
                    return True
            continue
        if _differs_value(live.get(key), want):
            return True
    return False


def _differs_value(have: Any, want: Any) -> bool:
    if isinstance(want, Mapping):
        if not isinstance(have, Mapping):
            return bool(want)
        return any(_differs_value(have.get(k), v) for k, v in want.items() if v is not None)
    if want is None:
        return False
    if isinstance(want, list) and any(isinstance(item, Mapping) for item in want):
        # a list of objects (containers, ports) gains server defaults inside each item:
        # the same items in the same order, each compared as a mapping
        if not isinstance(have, list) or len(have) != len(want):
            return True
        return any(_differs_value(h, w) for h, w in zip(have, want, strict=True))
    return bool(have != want)


class ChildLedger:
    """Owner uid → the manifests applied for it; child → its newest live state (from the
    apply's answer and the child watchers). In memory, one event loop."""

    def __init__(self) -> None:
        self._applied: dict[str, dict[ChildId, Mapping[str, Any]]] = {}
        self._live: dict[ChildId, Mapping[str, Any]] = {}
        self._order: WriteOrder[ChildId] = WriteOrder()

    def applied(
        self, owner_uid: str, manifest: Mapping[str, Any], live: Mapping[str, Any] | None
    ) -> None:
        """The engine applied `manifest` for `owner_uid`; the API server answered `live`
        (None when the answer is not at hand: a result recorded before a restart)."""
        child = ChildId.of(manifest)
        self._applied.setdefault(owner_uid, {})[child] = manifest
        if live is not None:
            current = self._live.get(child)
            held = None if current is None else resource_version(current)
            if self._order.written(child, resource_version(live), held):
                self._live[child] = live

    def live(self, child: ChildId) -> Mapping[str, Any] | None:
        """The newest live state seen of `child` (None: not seen, or deleted)."""
        return self._live.get(child)

    def knows(self, owner_uid: str) -> bool:
        """Whether any child applied for `owner_uid` is recorded."""
        return owner_uid in self._applied

    def observed(
        self, obj: Mapping[str, Any], *, deleted: bool, listed: bool = False
    ) -> str | None:
        """A child watcher saw `obj` (deleted or not; `listed`: found by a relist); return
        its controller owner's uid (None when it has none).

        The watch's order decides (`WriteOrder`): an event from before the engine's own
        apply of the child loses to the apply's answer (a late DELETED of an old child
        loses to its re-created successor); a deletion of the uid held always wins."""
        owner = controller_uid(obj)
        if owner is None:
            return None
        child = ChildId.of(obj)
        current = self._live.get(child)
        newer = self._order.watched(child, resource_version(obj), listed=listed)
        same_uid = current is not None and _uid(current) == _uid(obj)
        if deleted and (newer or same_uid):
            self._live.pop(child, None)
            self._order.restart(child)
        elif not deleted and newer:
            self._live[child] = obj
        return owner

    def holds(self, obj: Mapping[str, Any]) -> bool:
        """Whether the live copy held for this child is `obj`'s very version (same uid
        and resourceVersion): the watch's echo of the engine's own apply."""
        current = self._live.get(ChildId.of(obj))
        if current is None:
            return False
        metadata, held = obj.get("metadata", {}), current.get("metadata", {})
        version = metadata.get("resourceVersion")
        return bool(version) and (metadata.get("uid"), version) == (
            held.get("uid"),
            held.get("resourceVersion"),
        )

    def drift(self, owner_uid: str) -> bool:
        """Whether a child applied for `owner_uid` is gone or differs from its manifest."""
        for child, manifest in self._applied.get(owner_uid, {}).items():
            live = self._live.get(child)
            if live is None or differs(live, manifest):
                return True
        return False

    def server_went_back(self) -> None:
        """The API server was restored from a backup: see `WriteOrder.went_back`."""
        self._order.went_back()

    def forget(self, owner_uid: str) -> None:
        """Drop an owner whose stream is closed (its children go with it)."""
        for child in self._applied.pop(owner_uid, {}):
            self._live.pop(child, None)
            self._order.forget(child)


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("uid") or "")
