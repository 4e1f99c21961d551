"""The watch sinks of a sharded replica: every change updates the objects' view (so a
shard acquired later starts from a warm cache), but only a key of a held shard is
journaled and enqueued; a child's change enqueues its owner, which the queue admits only
when the owner's shard is held.

The primary sink does not hold the watch while a key's observation is journaled: each
held key's changes are journaled in order by a task of their own (a chain per key), so
the observations of many keys share the journal's group commits instead of paying one
commit each, one after another. At most `in_flight` changes wait at once (then the sink
waits for room). An observation that cannot be journaled is tried again (backing off)
until a newer change of the same key supersedes it or the shard is handed off; the key
is enqueued only after its observation is journaled, as with the plain sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from engine.identity import ObjectRef
from engine.journal.errors import FencedOut
from engine.runtime.reconcile.objects import PrimaryView
from engine.runtime.reconcile.observations import Observer
from engine.runtime.sharding.fenced_journal import ShardNotHeld
from engine.watchers import Change, ChangeOrigin, ChangeType

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 0.2
RETRY_CAP_SECONDS = 5.0


class ShardedObserver:
    """`primary` and `child`, like `Observer`'s, with keys of other shards kept in the
    view only; `await stop()` after the watches stopped (waits, bounded, for the
    observations still being journaled)."""

    def __init__(
        self,
        observer: Observer,
        *,
        view: PrimaryView,
        owns_key: Callable[[str], bool],
        in_flight: int = 512,
    ) -> None:
        self._observer, self._view, self._owns = observer, view, owns_key
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._newest: dict[str, Change] = {}
        self._room = asyncio.Semaphore(in_flight)

    async def primary(self, change: Change) -> None:
        key = ObjectRef.of(change.obj).key
        if not self._owns(key) and key not in self._chains:
            self._keep(change)
            return
        await self._room.acquire()
        self._newest[key] = change
        task = asyncio.create_task(self._journal(key, change, self._chains.get(key)))
        self._chains[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))

    async def child(self, change: Change) -> None:
        await self._observer.child(change)

    def pending(self) -> int:
        """Keys whose latest change is still being journaled."""
        return len(self._chains)

    async def stop(self, within: float = 5.0) -> None:
        chains = list(self._chains.values())
        if chains:
            _done, late = await asyncio.wait(chains, timeout=within)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _keep(self, change: Change) -> None:
        # as the watch delivered it (not `update`, the path of the engine's own write
        # answers: a key would then await that version, and once its shard was acquired
        # every later watch event of it would lose to the stale entry)
        self._view.observed(
            change.obj,
            exists=change.type is not ChangeType.DELETED,
            listed=change.origin is ChangeOrigin.RELIST,
        )

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        self._room.release()
        if self._chains.get(key) is task:
            del self._chains[key]
            self._newest.pop(key, None)

    async def _journal(self, key: str, change: Change, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # this key's earlier changes first, in order
        delay = RETRY_FIRST_SECONDS
        while True:
            if not self._owns(key):
                self._keep(change)
                return
            try:
                await self._observer.primary(change)
                return
            except (ShardNotHeld, FencedOut):
                self._keep(change)  # handed off meanwhile: the new owner journals it
                return
            except Exception as failed:  # the journal is away: try again unless superseded
                if self._newest.get(key) is not change:
                    self._keep(change)
                    return
                log.warning(
                    "could not journal the observation of %s (%s); trying again in %gs",
                    key,
                    type(failed).__name__,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_CAP_SECONDS)
