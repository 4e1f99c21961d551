"""`Watcher`: list + watch of one kind, kept in a cache, every change awaited by a sink.

One stream per namespace in scope (or one for all namespaces), each driven by the pure
state machine in `state.py`; this module only performs the I/O each state asks for.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from engine.watchers.backoff import retry_after_seconds
from engine.watchers.cache import Difference, ObjectCache, ObjectKey, object_key
from engine.watchers.change import Change, ChangeOrigin, ChangeType
from engine.watchers.client import ApiStatusError, KubeResources, TransportError, WatchStream
from engine.watchers.config import WatcherConfig
from engine.watchers.event import Bookmark, ObjectEvent, Skipped, StreamError, parse_watch_line
from engine.watchers.resource import Kind
from engine.watchers.watch_state import (
    INITIAL,
    BackingOff,
    Failed,
    Listed,
    Listing,
    Outcome,
    RestartReason,
    StreamClosed,
    Waited,
    WatcherState,
    next_step,
)

logger = logging.getLogger(__name__)

ALL_NAMESPACES = ""
"""The scope name of a watch across all namespaces (and of cluster-scoped kinds)."""


def failure_for_status(
    code: int,
    *,
    retry_after: float | None,
    resource_version: str | None,
    progressed: bool,
    too_large: bool = False,
) -> Failed:
    """The `Failed` outcome for an HTTP or in-stream status `code` (pure); `too_large`:
    the status refuses a resourceVersion the server has not reached."""
    if code == 410:
        reason = RestartReason.EXPIRED
    elif too_large:
        reason = RestartReason.TOO_LARGE
    elif code == 429:
        reason = RestartReason.THROTTLED
    elif code >= 500:
        reason = RestartReason.SERVER_ERROR
    else:
        reason = RestartReason.CLIENT_ERROR
    return Failed(reason, resource_version, progressed, retry_after)


class Watcher:
    """Lists and watches `kind` and hands every change to `config.sink`.

    Expected flow: `run()` lists (delivering ADDED, or after a 410 only the real
    differences), sets `synced` once every scope has listed, then watches from the list's
    resourceVersion; bookmarks move the resume point and deliver nothing.
    Guarantees: changes of one object reach the sink in order, one at a time, and the
    cache and resume point advance only after the sink returned; a 410, or a resume point
    the server has not reached (504 `ResourceVersionTooLarge`: restored from a backup),
    causes exactly one relist, whose differences go to the sink as after a 410; other
    failures back off (Retry-After honoured up to the cap) and resume from the last
    delivered resourceVersion; unusable lines are skipped with a warning.
    `run()` returns only by cancellation (and then closes its connections).
    """

    def __init__(self, kind: Kind, resources: KubeResources, config: WatcherConfig) -> None:
        self.kind = kind
        self.cache = ObjectCache()
        self.synced = asyncio.Event()
        self.last_event_monotonic: float | None = None
        self.skipped_lines = 0
        self._resources = resources
        self._config = config
        self._restarts: Counter[RestartReason] = Counter()
        self._states: dict[str, WatcherState] = {}
        self._resume: dict[str, str] = {}
        self._listed: set[str] = set()
        self._resync_due: dict[str, float] = {}
        self._sink_lock = asyncio.Lock()
        self._relist_wanted: set[str] = set()
        """Scopes to relist before they watch again (`relist`)."""
        self._relisting: set[str] = set()
        """Scopes asked to relist, or refused as too large, whose list has not completed."""
        self._wakers: dict[str, asyncio.Future[None]] = {}

    @property
    def scopes(self) -> tuple[str, ...]:
        """The namespaces watched, or (ALL_NAMESPACES,)."""
        if self.kind.namespaced and self._config.namespaces:
            return self._config.namespaces
        return (ALL_NAMESPACES,)

    @property
    def relisting(self) -> bool:
        """Whether a relist asked for (`relist`) or caused by a too-large resume point has
        not completed in every scope yet."""
        return bool(self._relisting)

    def relist(self) -> None:
        """Relist every scope soon: a watch going on ends (`RestartReason.RELIST`) and one
        about to start lists first. For when the API server was restored from a backup
        (another kind's watch was refused as too large, or found its resume point
        compacted by a restore that bumped the revision): this kind's watch may resume
        without an error once the restored server's versions pass its resume point, and
        then would never see the restored state."""
        for scope in self.scopes:
            self._relist_wanted.add(scope)
            self._relisting.add(scope)
            waker = self._wakers.get(scope)
            if waker is not None and not waker.done():
                waker.set_result(None)

    @property
    def restarts(self) -> Mapping[RestartReason, int]:
        """How many times a list or watch was restarted, by reason."""
        return dict(self._restarts)

    @property
    def states(self) -> Mapping[str, WatcherState]:
        """The current state of each scope's stream."""
        return dict(self._states)

    @property
    def resource_versions(self) -> Mapping[str, str]:
        """Each scope's resume point: the last resourceVersion delivered or bookmarked."""
        return dict(self._resume)

    async def run(self) -> None:
        """List and watch every scope until cancelled."""
        async with asyncio.TaskGroup() as group:
            for scope in self.scopes:
                group.create_task(self._run_scope(scope), name=f"watch {self.kind.describe()}")

    async def _run_scope(self, scope: str) -> None:
        step = INITIAL
        while True:
            self._states[scope] = step.state
            outcome: Outcome
            match step.state:
                case BackingOff(delay=delay):
                    await asyncio.sleep(delay)
                    outcome = Waited()
                case Listing():
                    self._relist_wanted.discard(scope)
                    outcome = await self._list(scope)
                case _:
                    outcome = await self._watch(scope, step.state.resource_version)
            if isinstance(outcome, Failed):
                self._record_restart(scope, outcome)
            step = next_step(
                step,
                outcome,
                policy=self._config.backoff,
                jitter_unit=self._config.jitter_source(),
            )

    def _record_restart(self, scope: str, failure: Failed) -> None:
        self._restarts[failure.reason] += 1
        if failure.reason is RestartReason.TOO_LARGE:
            self._relisting.add(scope)
        logger.info(
            "restarting %s watch of %s: %s",
            self.kind.describe(),
            scope or "all namespaces",
            failure.reason.value,
        )
        if self._config.on_restart is not None:
            self._config.on_restart(self.kind, failure.reason)

    def _status_failure(
        self, error: ApiStatusError, resource_version: str | None, progressed: bool
    ) -> Failed:
        logger.warning("%s: %s", self.kind.describe(), error)
        retry_after = retry_after_seconds(error.retry_after, now=self._config.clock.now())
        if retry_after is not None:
            retry_after = min(retry_after, self._config.retry_after_cap)
        return failure_for_status(
            error.code,
            retry_after=retry_after,
            resource_version=resource_version,
            progressed=progressed,
            too_large=error.too_large,
        )

    async def _deliver(
        self, change_type: ChangeType, origin: ChangeOrigin, obj: Mapping[str, Any]
    ) -> bool:
        key = object_key(obj)
        if key is None:
            return True
        async with self._sink_lock:
            change = Change(
                type=change_type,
                origin=origin,
                resource=self.kind,
                obj=obj,
                previous=self.cache.get(*key),
                cache=self.cache,
            )
            try:
                await self._config.sink(change)
            except Exception:
                logger.exception(
                    "the sink failed on %s %s/%s; it will be delivered again",
                    change_type.value,
                    key[0],
                    key[1],
                )
                return False
            self.cache.apply(change_type, obj)
        return True

    async def _list(self, scope: str) -> Outcome:
        """List `scope` page by page, each page's differences delivered before the next
        page is asked for (the sink's work overlaps the server's next page), then the
        deletions of the objects no page named. A list cut short (410, a transport
        error, a sink failure) delivers no deletion; its restart finds the objects
        already delivered unchanged."""
        continue_token, version = "", ""
        seen: set[ObjectKey] = set()
        try:
            while True:
                page = await self._resources.list_page(
                    self.kind,
                    namespace=scope or None,
                    label_selector=self._config.label_selector,
                    limit=self._config.page_size,
                    continue_token=continue_token,
                    request_timeout=self._config.request_timeout,
                )
                listed = self.cache.listed_differences(self._named(page.items), seen)
                if not await self._deliver_all(listed):
                    return Failed(RestartReason.SINK_FAILED)
                version, continue_token = page.resource_version, page.continue_token
                if not continue_token:
                    break
        except ApiStatusError as error:
            return self._status_failure(error, None, progressed=False)
        except TransportError as error:
            logger.warning("%s: %s", self.kind.describe(), error)
            return Failed(RestartReason.CONNECTION_ERROR)
        if not await self._deliver_all(self.cache.absent_from(seen, namespace=scope or None)):
            return Failed(RestartReason.SINK_FAILED)
        self._resume[scope] = version
        self._listed.add(scope)
        self._relisting.discard(scope)
        if self._config.resync_period is not None:
            loop_time = asyncio.get_running_loop().time()
            self._resync_due.setdefault(scope, loop_time + self._config.resync_period)
        if self._listed.issuperset(self.scopes):
            self.synced.set()
        return Listed(version)

    def _named(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        named = [item for item in items if object_key(item) is not None]
        if len(named) < len(items):
            self.skipped_lines += len(items) - len(named)
            logger.warning("%s: skipped listed objects without a name", self.kind.describe())
        return named

    async def _deliver_all(self, differences: list[Difference]) -> bool:
        for difference in differences:
            if not await self._deliver(difference.type, ChangeOrigin.RELIST, difference.obj):
                return False
        return True

    async def _resync(self, scope: str) -> bool:
        for obj in self.cache.objects(scope or None):
            if not await self._deliver(ChangeType.RESYNC, ChangeOrigin.RESYNC, obj):
                return False
        return True

    def _is_duplicate(self, event: ObjectEvent) -> bool:
        key = object_key(event.obj)
        entry = self.cache.entry(key) if key else None
        return (
            event.type is not ChangeType.DELETED
            and entry is not None
            and entry.resource_version == event.resource_version
        )

    async def _watch(self, scope: str, version: str) -> Outcome:
        if scope in self._relist_wanted:
            return Failed(RestartReason.RELIST, version)
        try:
            stream = await self._resources.open_watch(
                self.kind,
                namespace=scope or None,
                label_selector=self._config.label_selector,
                resource_version=version,
                timeout_seconds=self._config.watch_timeout_seconds,
                connect_timeout=self._config.request_timeout,
            )
        except ApiStatusError as error:
            return self._status_failure(error, version, progressed=False)
        except TransportError as error:
            logger.warning("%s: %s", self.kind.describe(), error)
            return Failed(RestartReason.CONNECTION_ERROR, version)
        try:
            return await self._consume(scope, stream, version)
        finally:
            stream.close()

    async def _consume(self, scope: str, stream: WatchStream, version: str) -> Outcome:
        loop = asyncio.get_running_loop()
        limit = self._config.inactivity_limit
        inactive_at = loop.time() + limit
        progressed = False
        pending: asyncio.Future[bytes] | None = None
        waker = self._wakers[scope] = loop.create_future()
        try:
            while True:
                if waker.done():  # `relist` was asked
                    return Failed(RestartReason.RELIST, version, progressed)
                resync_at = self._resync_due.get(scope, float("inf"))
                line = None
                if pending is None and loop.time() < resync_at:
                    line = stream.ready_line()  # received already: no task, no wait
                if line is None:
                    if pending is None:
                        pending = asyncio.ensure_future(stream.readline())
                    timeout = max(min(inactive_at, resync_at) - loop.time(), 0.0)
                    done, _ = await asyncio.wait(
                        {pending, waker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if waker.done():
                        continue  # the relist, at the top of the loop
                    if not done:
                        if loop.time() >= resync_at:
                            if not await self._resync(scope):
                                return Failed(RestartReason.SINK_FAILED, version, progressed)
                            period = self._config.resync_period or 0.0
                            self._resync_due[scope] = loop.time() + period
                        elif loop.time() >= inactive_at:
                            logger.warning(
                                "%s: no event or bookmark for %.1f s; restarting the watch",
                                self.kind.describe(),
                                limit,
                            )
                            return Failed(RestartReason.INACTIVE, version, progressed)
                        continue
                    line, pending = pending.result(), None
                if not line:
                    return StreamClosed(version)
                inactive_at = loop.time() + limit
                self.last_event_monotonic = self._config.clock.monotonic()
                if not line.strip():
                    continue
                match parse_watch_line(line, self.kind):
                    case Skipped(why=why):
                        self.skipped_lines += 1
                        logger.warning("%s: skipped %s", self.kind.describe(), why)
                    case Bookmark(resource_version=bookmarked):
                        version, progressed = bookmarked, True
                        self._resume[scope] = version
                    case StreamError() as error:
                        logger.warning("%s: watch error %s", self.kind.describe(), error)
                        retry_after = error.retry_after_seconds
                        if retry_after is not None:
                            retry_after = min(retry_after, self._config.retry_after_cap)
                        return failure_for_status(
                            error.code,
                            retry_after=retry_after,
                            resource_version=version,
                            progressed=progressed,
                            too_large=error.too_large,
                        )
                    case ObjectEvent() as event:
                        if not self._is_duplicate(event) and not await self._deliver(
                            event.type, ChangeOrigin.WATCH, event.obj
                        ):
                            return Failed(RestartReason.SINK_FAILED, version, progressed)
                        version, progressed = event.resource_version, True
                        self._resume[scope] = version
        except TransportError as error:
            logger.warning("%s: %s", self.kind.describe(), error)
            return Failed(RestartReason.CONNECTION_ERROR, version, progressed)
        finally:
            if self._wakers.get(scope) is waker:
                del self._wakers[scope]
            if pending is not None and not pending.done():
                pending.cancel()
                pending.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[bytes]) -> None:
    if not future.cancelled():
        future.exception()
