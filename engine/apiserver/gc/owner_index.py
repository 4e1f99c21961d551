"""The collector's in-memory owner index: which objects a committed change may affect.

It holds uid → key for every live object, the `Node` of every object that matters to
garbage collection (it has owners, or is being deleted with `foregroundDeletion` or
`orphan`) and owner uid → dependent keys, so that after a change `gc.plan` runs over the
affected objects and the owners and dependents they consult instead of over everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.apiserver.gc import planning as gc


def matters(node: gc.Node) -> bool:
    """The object can get a GC action itself: it has owners, or it waits for dependents."""
    return bool(node.owners) or (
        node.deleting and (gc.FOREGROUND in node.finalizers or gc.ORPHAN in node.finalizers)
    )


class OwnerIndex:
    """uid → key of every live object; the GC-relevant nodes; owner uid → dependent keys.

    Contract: after `update` has been told every change since the objects it was built
    from (in commit order), `plan_for(affected keys, load)` returns exactly the actions
    `gc.plan` would return over every live object, provided the full plan was empty
    before those changes (a fixed point): a change can only affect the changed object,
    its owners (old and new) and, when it is deleted or being deleted, its dependents.
    """

    def __init__(self) -> None:
        self._key_of: dict[str, str] = {}
        self._tracked: dict[str, gc.Node] = {}
        self._dependents: dict[str, set[str]] = {}

    def key_of(self, uid: str) -> str | None:
        """The key of the live object with this uid, if any."""
        return self._key_of.get(uid)

    def add_uid(self, key: str, uid: str) -> None:
        """Record a live object's uid before its node is built (owners in the same batch)."""
        self._key_of[uid] = key

    def tracked_keys(self) -> list[str]:
        """The keys of every object that matters to GC."""
        return list(self._tracked)

    def untouched_by(self, key: str, metadata: Mapping[str, Any]) -> bool:
        """Whether a live object with this `metadata` at `key` changes nothing here but its
        uid's key (`add_uid`): it has no owners and is not being deleted, and was not
        tracked before, so `update` would affect no key (the common write, answered
        without building its node)."""
        return (
            not metadata.get("ownerReferences")
            and not metadata.get("deletionTimestamp")
            and key not in self._tracked
        )

    def update(self, key: str, node: gc.Node, *, deleted: bool) -> set[str]:
        """Record the object at `key` as `node` (its last state if `deleted`).

        Returns the keys whose planned actions may have changed: the object (if it matters
        now or did before), its old and new owners that matter, and, when it is deleted or
        being deleted, the objects that link to it.
        """
        old = self._tracked.pop(key, None)
        old_owners = {link.uid for link in old.owners} if old is not None else set()
        for uid in old_owners:
            keys = self._dependents.get(uid)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._dependents[uid]
        affected: set[str] = set()
        if deleted:
            if self._key_of.get(node.uid) == key:
                del self._key_of[node.uid]
        else:
            self._key_of[node.uid] = key
            if matters(node):
                self._tracked[key] = node
                affected.add(key)
                for link in node.owners:
                    self._dependents.setdefault(link.uid, set()).add(key)
        if deleted or node.deleting:
            affected |= self._dependents.get(node.uid, set())
        for uid in old_owners | {link.uid for link in node.owners}:
            owner = self._key_of.get(uid)
            if owner is not None and owner in self._tracked:
                affected.add(owner)
        return affected

    def plan_for(
        self, keys: Iterable[str], load: Callable[[str], gc.Node | None]
    ) -> list[gc.Action]:
        """`gc.plan` over the tracked objects among `keys`, consulting what they need.

        `load(key)` builds the node of a live object that is not tracked (an owner without
        owners of its own); it is called only for owners of the planned objects.
        """
        nodes = [self._tracked[key] for key in sorted(set(keys)) if key in self._tracked]
        context: dict[str, gc.Node] = {}
        for node in nodes:
            for link in node.owners:
                owner_key = self._key_of.get(link.uid)
                if owner_key is None or owner_key in context:
                    continue
                owner = self._tracked.get(owner_key) or load(owner_key)
                if owner is not None:
                    context[owner_key] = owner
            if node.deleting:
                for dependent in self._dependents.get(node.uid, ()):
                    context.setdefault(dependent, self._tracked[dependent])
        return gc.plan(nodes, context=context.values())
