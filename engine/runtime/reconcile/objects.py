"""The reconciler's view of the primary objects: the newest state of each, from the
watch and from the engine's own writes, indexed by key (`namespace/name`) and by uid.

The watcher's cache advances only after its sink returns, and the engine's own writes
reach the watch later still; this view takes whichever is newer, so a reconcile never
acts on an object older than one it has already seen (and never GETs before a PATCH).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from engine.identity import ObjectRef


def is_newer(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether `candidate` is at least as new as `current` (two states of one name).

    resourceVersions are opaque in general; when both are decimal integers (etcd's
    revisions, the embedded server's counter) the larger is newer, whatever the uids
    (a late DELETED of an old child loses to its re-created successor). Otherwise the
    candidate is taken as newer: it arrived later.
    """
    new_rv = str(candidate.get("metadata", {}).get("resourceVersion") or "")
    old_rv = str(current.get("metadata", {}).get("resourceVersion") or "")
    if new_rv.isdigit() and old_rv.isdigit():
        return int(new_rv) >= int(old_rv)
    return True


@dataclass(frozen=True, slots=True)
class Entry:
    """One primary object as last known; `exists` False once it was reported deleted."""

    obj: Mapping[str, Any]
    exists: bool = True

    @property
    def uid(self) -> str:
        return str(self.obj.get("metadata", {}).get("uid") or "")


class PrimaryView:
    """Key → newest `Entry`; uid → key. Synchronous, in memory, one event loop."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._by_uid: dict[str, str] = {}

    def update(self, obj: Mapping[str, Any], *, exists: bool = True) -> Entry:
        """Record `obj` unless the view already holds a newer state of it; return the
        entry now held. A deletion (`exists=False`) of the same uid always wins."""
        key = ObjectRef.of(obj).key
        current = self._entries.get(key)
        stale = current is not None and (not current.exists or not is_newer(obj, current.obj))
        if current is not None and exists and current.uid == _uid(obj) and stale:
            return current
        entry = Entry(obj=obj, exists=exists)
        if current is not None and current.uid != entry.uid:
            self._by_uid.pop(current.uid, None)
        self._entries[key] = entry
        if entry.uid:
            self._by_uid[entry.uid] = key
        return entry

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def key_of_uid(self, uid: str) -> str | None:
        """The key of the object with `uid`, if the view holds it."""
        return self._by_uid.get(uid)

    def forget(self, key: str, uid: str) -> None:
        """Drop `key` when it still holds `uid` (a closed stream: the object is gone)."""
        entry = self._entries.get(key)
        if entry is not None and entry.uid == uid:
            del self._entries[key]
            self._by_uid.pop(uid, None)

    def keys(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("uid") or "")
