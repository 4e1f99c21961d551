"""The reconciler's view of the primary objects: the newest state of each, from the
watch and from the engine's own writes, indexed by key (`namespace/name`) and by uid.

The watcher's cache advances only after its sink returns, and the engine's own writes
reach the watch later still; this view takes whichever is newer, by the order of the
server's events (`WriteOrder`, never by comparing resourceVersions as numbers), so a
reconcile never acts on an object older than one it has already seen (and never GETs
before a PATCH).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from engine.identity import ObjectRef

K = TypeVar("K", bound=Hashable)


_SEEN = 16
"""How many of the resourceVersions the watch delivered are remembered per key (a repeat
of the last one, as a resync delivers, is not remembered again)."""


class WriteOrder(Generic[K]):
    """Orders the engine's own write answers against the watch, comparing resourceVersions
    only for equality (they are opaque: an API server restored from a backup sends smaller
    ones, and a number says nothing about order).

    The watch delivers a key's changes in the server's order, so once the engine's write
    answered with resourceVersion X, every watch event of that key before X's own event is
    older than the write and loses to it (the key *awaits* X); X's event, a relist (the
    server's current state) or a change of uid ends the wait. An answer whose X the watch
    has already delivered is news only if the view still holds X. A watch event whose
    resourceVersion the watch delivered before something newer is a repeat (a watch
    resumed from too far back, a replaying proxy) and never news.
    """

    def __init__(self) -> None:
        self._awaiting: dict[K, str] = {}
        self._seen: dict[K, deque[str]] = {}

    def written(self, key: K, version: str, held: str | None) -> bool:
        """Whether the answer (resourceVersion `version`) of a write replaces the state held
        (resourceVersion `held`, None when nothing is held); the key then awaits it."""
        seen = self._seen.get(key)
        if version and seen is not None and version in seen:
            return held is None or held == version
        if version:
            self._awaiting[key] = version
        return True

    def watched(self, key: K, version: str, *, listed: bool) -> bool:
        """Whether a change the watch delivered replaces the state held (`listed`: it comes
        from a relist, the server's current state)."""
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = deque(maxlen=_SEEN)
        if not listed and version and version in seen and seen[-1] != version:
            return False  # delivered before, and something newer since: a repeat, never news
        if not seen or seen[-1] != version:
            seen.append(version)
        awaiting = self._awaiting.get(key)
        if awaiting is None:
            return True
        if listed or version == awaiting:
            del self._awaiting[key]
            return True
        return False

    def went_back(self) -> None:
        """Forget every resourceVersion seen and awaited: the API server was restored from
        a backup (a watch's resume point was too large for it), so it hands out versions
        again that the watch delivered before, and they say nothing about order now. The
        relist that follows brings each key's current state."""
        self._awaiting.clear()
        self._seen.clear()

    def restart(self, key: K) -> None:
        """Forget what was awaited for `key` (another uid now has the name)."""
        self._awaiting.pop(key, None)

    def forget(self, key: K) -> None:
        self._awaiting.pop(key, None)
        self._seen.pop(key, None)


def resource_version(obj: Mapping[str, Any]) -> str:
    """The object's resourceVersion ("" when absent), an opaque string."""
    return str(obj.get("metadata", {}).get("resourceVersion") or "")


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
        self._order: WriteOrder[str] = WriteOrder()

    def update(self, obj: Mapping[str, Any], *, exists: bool = True) -> Entry:
        """Record `obj`, the API server's answer to one of the engine's own writes (or,
        with `exists=False`, the object found gone), unless the view already holds a newer
        state of it; return the entry now held. A deletion of the same uid always wins."""
        key = ObjectRef.of(obj).key
        current = self._entries.get(key)
        if current is not None and exists and current.uid == _uid(obj):
            if not current.exists:
                return current
            if not self._order.written(key, resource_version(obj), resource_version(current.obj)):
                return current
        elif exists:
            self._order.restart(key)
            self._order.written(key, resource_version(obj), None)
        return self._hold(key, current, Entry(obj=obj, exists=exists))

    def observed(
        self, obj: Mapping[str, Any], *, exists: bool = True, listed: bool = False
    ) -> Entry:
        """Record `obj` as the watch delivered it (`listed`: found by a relist), unless the
        engine's own write of it is newer; return the entry now held. A deletion of the
        same uid always wins. A status that is not an object (no API server serves one)
        is held as none written yet."""
        if not isinstance(obj.get("status") or {}, Mapping):
            obj = {name: value for name, value in obj.items() if name != "status"}
        key = ObjectRef.of(obj).key
        current = self._entries.get(key)
        newer = self._order.watched(key, resource_version(obj), listed=listed)
        if current is not None and current.uid == _uid(obj):
            if exists and (not current.exists or not newer):
                return current
        else:
            self._order.restart(key)
        return self._hold(key, current, Entry(obj=obj, exists=exists))

    def listing(self, obj: Mapping[str, Any], *, exists: bool = True) -> Entry:
        """The entry `observed(obj, exists=exists, listed=True)` would hold, without holding
        it (a relist is the server's current state: it replaces whatever is held, except
        that a deletion of the same uid still wins)."""
        if not isinstance(obj.get("status") or {}, Mapping):
            obj = {name: value for name, value in obj.items() if name != "status"}
        current = self._entries.get(ObjectRef.of(obj).key)
        if current is not None and current.uid == _uid(obj) and exists and not current.exists:
            return current
        return Entry(obj=obj, exists=exists)

    def _hold(self, key: str, current: Entry | None, entry: Entry) -> Entry:
        if current is not None and current.uid != entry.uid:
            self._by_uid.pop(current.uid, None)
        self._entries[key] = entry
        if entry.uid:
            self._by_uid[entry.uid] = key
        return entry

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def server_went_back(self) -> None:
        """The API server was restored from a backup: see `WriteOrder.went_back`."""
        self._order.went_back()

    def key_of_uid(self, uid: str) -> str | None:
        """The key of the object with `uid`, if the view holds it."""
        return self._by_uid.get(uid)

    def forget(self, key: str, uid: str) -> None:
        """Drop `key` when it still holds `uid` (a closed stream: the object is gone)."""
        entry = self._entries.get(key)
        if entry is not None and entry.uid == uid:
            del self._entries[key]
            self._by_uid.pop(uid, None)
            self._order.forget(key)

    def keys(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("uid") or "")
