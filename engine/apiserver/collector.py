"""The garbage collector task: after committed changes (debounced) it asks `gc.plan` what
to do next and applies the actions through the normal write paths, until nothing is left.

Owners of a namespaced dependent must be in its namespace or cluster-scoped; a reference
to an owner elsewhere counts as dangling, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from engine.apiserver import gc
from engine.apiserver.context import ApiContext
from engine.apiserver.deletion import DeleteOptions, delete_object
from engine.apiserver.errors import ApiError
from engine.apiserver.registry import ResourceType
from engine.apiserver.storage import Change, StaleWrite
from engine.apiserver.writes import commit_prepared

_ELSEWHERE = "@elsewhere"
_MAX_ROUNDS = 10_000


def _relevant(change: Change) -> bool:
    if change.type == "DELETED":
        return True
    meta = change.body.get("metadata") or {}
    if meta.get("ownerReferences"):
        return True
    finalizers = meta.get("finalizers") or ()
    return gc.FOREGROUND in finalizers or gc.ORPHAN in finalizers


class Collector:
    """Runs `plan` → apply until a fixed point whenever the owner graph may have changed."""

    def __init__(self, ctx: ApiContext) -> None:
        self._ctx = ctx
        self._wake = asyncio.Event()
        self._wake.set()  # one pass at start: the stored graph may need work after a restart
        ctx.store.add_listener(self._on_changes)

    def _on_changes(self, changes: Sequence[Change]) -> None:
        if any(_relevant(change) for change in changes):
            self._wake.set()

    async def run(self) -> None:
        """Collect forever (cancel to stop)."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._ctx.settings.gc_debounce)
            self._wake.clear()
            await self.collect()

    async def collect(self) -> None:
        """Apply planned actions until `plan` returns none."""
        for _ in range(_MAX_ROUNDS):
            actions = gc.plan(self._nodes())
            if not actions:
                return
            before = self._ctx.store.revision
            for action in actions:
                with contextlib.suppress(StaleWrite):
                    await self._apply(action)
            if self._ctx.store.revision == before:  # nothing applied: wait for the next change
                return

    def _nodes(self) -> list[gc.Node]:
        objects = list(self._ctx.store.all_objects())
        where: dict[str, str] = {}
        for _, obj in objects:
            meta = obj["metadata"]
            where[meta.get("uid", "")] = meta.get("namespace", "")
        nodes = []
        for key, obj in objects:
            meta = obj["metadata"]
            namespace = meta.get("namespace", "")
            links = []
            for ref in meta.get("ownerReferences") or ():
                uid = str(ref.get("uid", ""))
                owner_ns = where.get(uid)
                if namespace and owner_ns not in (None, "", namespace):
                    uid += _ELSEWHERE
                links.append(
                    gc.OwnerLink(uid=uid, block_owner_deletion=bool(ref.get("blockOwnerDeletion")))
                )
            nodes.append(
                gc.Node(
                    key=key,
                    uid=str(meta.get("uid", "")),
                    owners=tuple(links),
                    finalizers=tuple(meta.get("finalizers") or ()),
                    deleting=bool(meta.get("deletionTimestamp")),
                )
            )
        return nodes

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
