"""The controller's watches: one watcher per watched kind (the primary with the label
selector, each child kind without), started together, synced together, stopped together.

The primary's changes can be held until a future is done (`start(..., primary_after=)`):
the controller lists while its start-up scan reads the journal, and hands the listed
objects to the observer only once the scan has seeded the observation log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from engine.clock import Clock
from engine.runtime.manager.settings import Settings
from engine.runtime.reconcile.observations import Observer
from engine.runtime.reconcile.operator import Operator
from engine.runtime.sharding.observer import ShardedObserver
from engine.watchers import Change, Kind, KubeResources, Sink, Watcher, WatcherConfig

LIST_PAGE_SIZE = 2000
"""Objects per LIST page of the controller's watches (the watcher's own default is 500).
A start lists every watched kind whole before its first reconcile; at 10,000 objects of
each of three kinds, pages of 2,000 cost the embedded API server half the CPU of pages
of 500 (a fifth of the requests) and the three lists a third less wall; each page is
still delivered before the next is asked for."""


class Watches:
    """The watchers of one operator and their tasks (`watchers`, `tasks`)."""

    def __init__(
        self,
        *,
        operator: Operator,
        settings: Settings,
        clock: Clock,
        on_restart: Callable[[Kind, Any], None],
    ) -> None:
        self._operator, self._settings, self._clock = operator, settings, clock
        self._on_restart = on_restart
        self.watchers: list[Watcher] = []
        self.tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        api: Any,
        observer: Observer | ShardedObserver,
        *,
        primary_after: asyncio.Future[Any] | None = None,
    ) -> None:
        """Start one watcher for the primary kind and one per child kind; with
        `primary_after`, no primary change reaches the observer before that future is
        done (done in any way: it only orders the start, its outcome is its owner's)."""
        settings = self._settings
        resources = KubeResources(api)
        resource = self._operator.resource
        primary: Sink = observer.primary
        if primary_after is not None:
            primary = _held_until(primary_after, primary)
        kinds = [(resource.kind_ref, primary, settings.label_selector)]
        for child in self._operator.children:
            kinds.append((child.kind_ref, observer.child, ""))
        for kind, sink, selector in kinds:
            config = WatcherConfig(
                sink=sink,
                namespaces=settings.namespaces,
                label_selector=selector,
                page_size=LIST_PAGE_SIZE,
                resync_period=settings.resync_seconds,
                inactivity_limit=settings.watch_inactivity_seconds,
                retry_after_cap=settings.retry_after_cap_seconds,
                clock=self._clock,
                on_restart=self._on_restart,
            )
            watcher = Watcher(kind, resources, config)
            self.watchers.append(watcher)
            self.tasks.append(asyncio.create_task(watcher.run(), name=f"watch-{kind.describe()}"))

    async def wait_synced(self, stop: asyncio.Event) -> bool:
        """Wait for every watcher's first list, or a stop; True when synced."""
        synced: asyncio.Future[list[bool]] = asyncio.gather(
            *(w.synced.wait() for w in self.watchers)
        )
        stopping: asyncio.Future[bool] = asyncio.create_task(stop.wait())
        waiting: set[asyncio.Future[Any]] = {synced, stopping}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not synced.done():
            synced.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await synced
            return False
        stopping.cancel()
        return True

    def relist(self) -> None:
        """Make every watcher relist (`Watcher.relist`): the API server was restored."""
        for watcher in self.watchers:
            watcher.relist()

    @property
    def relisting(self) -> bool:
        """Whether a watcher's relist after a restored API server is still going on."""
        return any(watcher.relisting for watcher in self.watchers)

    async def stop(self) -> None:
        """Cancel the watches and wait until they have ended."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _held_until(before: asyncio.Future[Any], sink: Sink) -> Sink:
    """`sink`, each change awaiting `before` first (at once once it is done)."""

    async def held(change: Change) -> None:
        if not before.done():
            await asyncio.wait({before})
        await sink(change)

    return held
