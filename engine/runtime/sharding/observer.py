"""The watch sinks of a sharded replica: every change updates the objects' view (so a
shard acquired later starts from a warm cache), but only a key of a held shard is
journaled and enqueued; a child's change enqueues its owner, which the queue admits only
when the owner's shard is held."""

from __future__ import annotations

from collections.abc import Callable

from engine.identity import ObjectRef
from engine.journal.errors import FencedOut
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import Observer
from engine.runtime.sharding.fenced_journal import ShardNotHeld
from engine.watchers import Change, ChangeType


class ShardedObserver:
    """`primary` and `child`, like `Observer`'s, with keys of other shards kept in the
    view only."""

    def __init__(
        self, observer: Observer, *, view: PrimaryView, owns_key: Callable[[str], bool]
    ) -> None:
        self._observer, self._view, self._owns = observer, view, owns_key

    async def primary(self, change: Change) -> None:
        if self._owns(ObjectRef.of(change.obj).key):
            try:
                await self._observer.primary(change)
                return
            except (ShardNotHeld, FencedOut):
                pass  # handed off meanwhile: the new owner journals what it observes
        self._view.update(change.obj, exists=change.type is not ChangeType.DELETED)

    async def child(self, change: Change) -> None:
        await self._observer.child(change)
