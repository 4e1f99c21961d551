"""An in-memory index over the store for the controllers, kept current by a storage
listener: uid ↔ key, controller uid → the keys it controls, orphan Pods and every key of
each namespace. Lets a controller find its objects without scanning the store."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from engine.apiserver.controllers.pod_facts import controller_uid


def split_key(key: str) -> tuple[str, str, str, str]:
    """`{group}/{plural}/{namespace}/{name}` → its four parts."""
    group, plural, namespace, name = key.split("/", 3)
    return group, plural, namespace, name


class WorkloadIndex:
    """Lookups the controllers need; `update` after every committed change."""

    def __init__(self) -> None:
        self._uid_key: dict[str, str] = {}
        self._key_uid: dict[str, str] = {}
        self._controller: dict[str, str] = {}
        self._controlled: dict[str, set[str]] = {}
        self._orphan_pods: dict[str, set[str]] = {}
        self._namespace_keys: dict[str, set[str]] = {}
        self._kind_keys: dict[tuple[str, str], set[str]] = {}

    def rebuild(self, objects: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Index every stored object afresh."""
        for table in (self._uid_key, self._key_uid, self._controller, self._controlled,
                      self._orphan_pods, self._namespace_keys, self._kind_keys):  # fmt: skip
            table.clear()
        for key, obj in objects:
            self.update(key, obj, deleted=False)

    def update(self, key: str, obj: Mapping[str, Any], *, deleted: bool) -> str | None:
        """Record the change of `key` to `obj` (or its removal); the controller uid it had."""
        _, plural, namespace, _ = split_key(key)
        previous = self._controller.pop(key, None)
        if previous is not None:
            self._controlled.get(previous, set()).discard(key)
        old_uid = self._key_uid.pop(key, None)
        if old_uid is not None and self._uid_key.get(old_uid) == key:
            del self._uid_key[old_uid]
        orphans = self._orphan_pods.setdefault(namespace, set())
        orphans.discard(key)
        kind_keys = self._kind_keys.setdefault((plural, namespace), set())
        in_namespace = self._namespace_keys.setdefault(namespace, set())
        if deleted:
            kind_keys.discard(key)
            in_namespace.discard(key)
            return previous
        kind_keys.add(key)
        if namespace:
            in_namespace.add(key)
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        self._uid_key[uid] = key
        self._key_uid[key] = uid
        owner = controller_uid(obj)
        if owner:
            self._controller[key] = owner
            self._controlled.setdefault(owner, set()).add(key)
        elif plural == "pods":
            orphans.add(key)
        return previous

    def key_of(self, uid: str) -> str | None:
        """The key of the object with `uid`, if stored."""
        return self._uid_key.get(uid)

    def controller_of(self, key: str) -> str | None:
        """The controller uid of the object at `key`, if any."""
        return self._controller.get(key)

    def controlled_by(self, uid: str, *, plural: str) -> list[str]:
        """Keys of the `plural` objects whose controller has `uid`."""
        return sorted(k for k in self._controlled.get(uid, ()) if split_key(k)[1] == plural)

    def orphan_pods(self, namespace: str) -> list[str]:
        """Keys of the Pods in `namespace` that no controller owns."""
        return sorted(self._orphan_pods.get(namespace, ()))

    def of_kind(self, plural: str, namespace: str) -> list[str]:
        """Keys of the `plural` objects in `namespace` ("" for cluster-scoped ones)."""
        return sorted(self._kind_keys.get((plural, namespace), ()))

    def in_namespace(self, namespace: str) -> list[str]:
        """Keys of every object in `namespace`."""
        return sorted(self._namespace_keys.get(namespace, ()))
