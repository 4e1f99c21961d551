"""The reflector cache: the last known state of every watched object, and the pure
difference between that state and a fresh list (what a relist must report)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.watchers.change import ChangeType

ObjectKey = tuple[str, str]
"""(namespace, name); the namespace is "" for cluster-scoped objects."""


def object_key(obj: Mapping[str, Any]) -> ObjectKey | None:
    """The object's key, or None when it has no name (such an object cannot be cached)."""
    metadata = obj.get("metadata")
    # a decoded object's dict is answered before the Mapping ABC's (slower) check: this
    # runs several times for every object of every list
    if not isinstance(metadata, (dict, Mapping)):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    namespace = metadata.get("namespace") or ""
    return (str(namespace), name)


def _metadata_field(obj: Mapping[str, Any], field_name: str) -> str:
    metadata = obj.get("metadata")
    if not isinstance(metadata, (dict, Mapping)):
        return ""
    return str(metadata.get(field_name) or "")


@dataclass(frozen=True)
class CachedObject:
    """An object with the two fields the cache compares on."""

    obj: Mapping[str, Any]
    resource_version: str
    uid: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> CachedObject:
        return cls(
            obj=obj,
            resource_version=_metadata_field(obj, "resourceVersion"),
            uid=_metadata_field(obj, "uid"),
        )


@dataclass(frozen=True)
class Difference:
    """One real difference between the cache and a list: what to report, about which object."""

    type: ChangeType
    obj: Mapping[str, Any]


class ObjectCache:
    """Objects by (namespace, name). Only the watcher writes to it (`apply`); everyone else
    reads it through `CacheView`. Not thread-safe; one event loop."""

    def __init__(self) -> None:
        self._objects: dict[ObjectKey, CachedObject] = {}

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._objects

    def get(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The cached object, or None."""
        entry = self._objects.get((namespace, name))
        return entry.obj if entry else None

    def entry(self, key: ObjectKey) -> CachedObject | None:
        """The cached entry (object, resourceVersion, uid), or None."""
        return self._objects.get(key)

    def objects(self, namespace: str | None = None) -> list[Mapping[str, Any]]:
        """Every cached object, sorted by key; only `namespace`'s when given."""
        return [
            entry.obj
            for key, entry in sorted(self._objects.items())
            if namespace is None or key[0] == namespace
        ]

    def apply(self, change_type: ChangeType, obj: Mapping[str, Any]) -> None:
        """Record a change: added/modified/resync store the object, deleted removes it.

        Errors: `ValueError` for an object without a name.
        """
        key = object_key(obj)
        if key is None:
            raise ValueError("cannot cache an object without metadata.name")
        if change_type is ChangeType.DELETED:
            self._objects.pop(key, None)
        else:
            self._objects[key] = CachedObject.of(obj)

    def relist_differences(
        self, listed: Iterable[Mapping[str, Any]], *, namespace: str | None = None
    ) -> list[Difference]:
        """What a fresh list changes relative to the cache, limited to `namespace` when given.

        Guarantees (pure; the cache is not modified):
        - a listed object with no cached entry → ADDED;
        - same key and uid, different resourceVersion → MODIFIED; same resourceVersion → nothing;
        - same key, different uid (deleted and re-created meanwhile) → DELETED of the cached
          object, then ADDED of the listed one;
        - a cached object (in scope) absent from the list → DELETED carrying its cached state;
        - listed objects keep list order; deletions of absent objects follow, sorted by key.
        Assumptions: listed objects all have a name (see `object_key`); nameless ones are ignored.
        """
        seen: set[ObjectKey] = set()
        return self.listed_differences(listed, seen) + self.absent_from(seen, namespace=namespace)

    def listed_differences(
        self, listed: Iterable[Mapping[str, Any]], seen: set[ObjectKey]
    ) -> list[Difference]:
        """`relist_differences` of one page of a list, without the deletions (a page does
        not say what is absent); each listed key is added to `seen`, for `absent_from`
        once the last page is in."""
        differences: list[Difference] = []
        for obj in listed:
            key = object_key(obj)
            if key is None:
                continue
            seen.add(key)
            cached = self._objects.get(key)
            if cached is None:  # the first list: nothing to compare
                differences.append(Difference(ChangeType.ADDED, obj))
            elif cached.uid != _metadata_field(obj, "uid"):
                differences.append(Difference(ChangeType.DELETED, cached.obj))
                differences.append(Difference(ChangeType.ADDED, obj))
            elif cached.resource_version != _metadata_field(obj, "resourceVersion"):
                differences.append(Difference(ChangeType.MODIFIED, obj))
        return differences

    def absent_from(
        self, seen: set[ObjectKey], *, namespace: str | None = None
    ) -> list[Difference]:
        """DELETED, with its cached state, for each cached object (in `namespace` when
        given) whose key is not in `seen`, sorted by key."""
        return [
            Difference(ChangeType.DELETED, self._objects[key].obj)
            for key in sorted(self._objects)
            if key not in seen and (namespace is None or key[0] == namespace)
        ]
