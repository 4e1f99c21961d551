"""The garbage collector task: after committed changes (debounced) it asks `gc.plan` what
to do next for the objects those changes affected (found through `OwnerIndex`) and applies
the actions through the normal write paths, until nothing is left. A full pass over every
object runs at start and every `gc_full_interval` seconds as a safety net.

Owners of a namespaced dependent must be in its namespace or cluster-scoped; a reference
to an owner elsewhere counts as dangling, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from engine.apiserver.gc import planning as gc
from engine.apiserver.gc.owner_index import OwnerIndex
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError
from engine.apiserver.store.resource_types import ResourceType
from engine.apiserver.store.storage import Change, StaleWrite
from engine.apiserver.verbs.deletion import DeleteOptions, delete_object
from engine.apiserver.verbs.writes import commit_prepared

_ELSEWHERE = "@elsewhere"
_MAX_ROUNDS = 10_000


class Collector:
    """Runs `plan` → apply until a fixed point whenever the owner graph may have changed.

    The index is rebuilt from storage at start and on every full pass, and kept up to
    date by a storage listener in between; `_dirty` holds the keys changes affected.
    """

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._index = OwnerIndex()
        self._dirty: set[str] = set()
        self._full_due = 0.0  # monotonic time of the next full pass; 0: at once
        self._wake = asyncio.Event()
        self._wake.set()  # one pass at start: the stored graph may need work after a restart
        self._rebuild_index()
        ctx.store.add_listener(self._on_changes)

    def _on_changes(self, changes: Sequence[Change]) -> None:
        index = self._index
        for change in changes:
            if change.type != "DELETED":
                index.add_uid(change.key, str(change.body["metadata"].get("uid", "")))
        for change in changes:
            deleted = change.type == "DELETED"
            if not deleted and index.untouched_by(change.key, change.body["metadata"]):
                continue  # its uid is recorded above; nothing else of the index moves
            node = self._node(change.key, change.body)
            self._dirty |= index.update(change.key, node, deleted=deleted)
        if self._dirty:
            self._wake.set()

    async def run(self) -> None:
        """Collect forever (cancel to stop)."""
        while True:
            timeout = max(0.0, self._full_due - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            await asyncio.sleep(self._ctx.settings.gc_debounce)
            self._wake.clear()
            if time.monotonic() >= self._full_due:
                await self.collect()
            else:
                await self._collect_dirty()

    async def collect(self) -> None:
        """A full pass: rebuild the index, plan over every object, then settle what moved."""
        self._full_due = time.monotonic() + self._ctx.settings.gc_full_interval
        self._rebuild_index()
        self._dirty.clear()
        if await self._apply_all(gc.plan(self._all_nodes())):
            await self._collect_dirty()

    async def _collect_dirty(self) -> None:
        """Plan over the keys changes affected, apply, repeat until nothing is left."""
        for _ in range(_MAX_ROUNDS):
            if not self._dirty:
                return
            keys, self._dirty = self._dirty, set()
            if not await self._apply_all(self._index.plan_for(keys, self._load)):
                return  # nothing applied: wait for the next change

    async def _apply_all(self, actions: Sequence[gc.Action]) -> bool:
        """Apply `actions`; whether anything was written."""
        before = self._ctx.store.revision
        for action in actions:
            with contextlib.suppress(StaleWrite):
                await self._apply(action)
        return self._ctx.store.revision != before

    def _rebuild_index(self) -> None:
        self._index = OwnerIndex()
        objects = list(self._ctx.store.all_objects())
        for key, obj in objects:
            self._index.add_uid(key, str(obj["metadata"].get("uid", "")))
        for key, obj in objects:
            self._index.update(key, self._node(key, obj), deleted=False)

    def _all_nodes(self) -> list[gc.Node]:
        return [self._node(key, obj) for key, obj in self._ctx.store.all_objects()]

    def _load(self, key: str) -> gc.Node | None:
        obj = self._ctx.store.get(key)
        return None if obj is None else self._node(key, obj)

    def _node(self, key: str, obj: dict[str, Any]) -> gc.Node:
        """`obj` as a node; links to owners in another namespace get the `@elsewhere` mark."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        links = []
        for ref in meta.get("ownerReferences") or ():
            uid = str(ref.get("uid", ""))
            if namespace and self._owner_namespace(uid) not in (None, "", namespace):
                uid += _ELSEWHERE
            links.append(
                gc.OwnerLink(uid=uid, block_owner_deletion=bool(ref.get("blockOwnerDeletion")))
            )
        return gc.Node(
            key=key,
            uid=str(meta.get("uid", "")),
            owners=tuple(links),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
        )

    def _owner_namespace(self, uid: str) -> str | None:
        owner_key = self._index.key_of(uid)
        owner = None if owner_key is None else self._ctx.store.get(owner_key)
        return None if owner is None else str(owner["metadata"].get("namespace", ""))

    def _type_of(self, key: str) -> ResourceType | None:
        for rtype in self._ctx.registry.storage_types():
            if key.startswith(rtype.prefix(None)):
                return rtype
        return None

    async def _apply(self, action: gc.Action) -> None:
        store = self._ctx.store
        old = store.get(action.key)
        if old is None:
            return
        if isinstance(action, gc.DeleteObject):
            rtype = self._type_of(action.key)
            if rtype is not None:
                with contextlib.suppress(ApiError):
                    await delete_object(
                        self._ctx, rtype, action.key, DeleteOptions(policy=action.propagation)
                    )
            return
        meta: dict[str, Any] = dict(old["metadata"])
        if isinstance(action, gc.RemoveOwnerLinks):
            gone = {uid.removesuffix(_ELSEWHERE) for uid in action.owner_uids}
            kept = [r for r in meta.get("ownerReferences") or () if r.get("uid") not in gone]
            if kept:
                meta["ownerReferences"] = kept
            else:
                meta.pop("ownerReferences", None)
        else:
            finalizers = [f for f in meta.get("finalizers") or () if f != action.finalizer]
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
        await commit_prepared(self._ctx, action.key, old, {**old, "metadata": meta}, dry_run=False)
