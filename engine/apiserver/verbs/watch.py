"""Watch streams: replay from a resourceVersion (or a synthetic snapshot), then live
changes, one JSON event per line, with bookmarks and a clean close at timeoutSeconds.

No gap and no duplicate at the replay/live boundary: the stream subscribes to live
changes before it reads the backlog and drops live changes it has already replayed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from engine.apiserver.admission.chain import in_version
from engine.apiserver.http.target import Target
from engine.apiserver.store.api_context import ApiContext
from engine.apiserver.store.errors import ApiError, dumps, status_body
from engine.apiserver.store.storage import CLOSED, Change, Compacted
from engine.apiserver.verbs import table_output as table
from engine.apiserver.verbs.reads import (
    Selection,
    parse_selection,
    present,
    require_reached,
    table_of,
)

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(raw: str) -> bool:
    """Like Go's strconv.ParseBool; ApiError 400 for anything else."""
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ApiError(400, f"invalid boolean value {raw!r}")


class _EventLines:
    """Event lines encoded once for every watcher that sends the same object.

    Each watcher of a kind sees the stored object itself (when it needs no conversion
    and no late defaults), so the line for (event type, object) is the same for all of
    them: it is found by the object's identity. An entry holds its object, so the id
    cannot be reused while it is cached; stored objects are never changed in place.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lines: dict[tuple[int, str], tuple[Mapping[str, Any], bytes]] = {}

    def line(self, kind: str, obj: Mapping[str, Any]) -> bytes:
        key = (id(obj), kind)
        found = self._lines.get(key)
        if found is not None and found[0] is obj:
            return found[1]
        encoded = dumps({"type": kind, "object": obj}) + b"\n"
        if len(self._lines) >= self._limit:
            self._lines.clear()
        self._lines[key] = (obj, encoded)
        return encoded


EVENT_LINES = _EventLines(limit=1024)


class _Stream:
    """One watcher's view: which keys it has shown, and how to render an event."""

    def __init__(
        self, ctx: ApiContext, target: Target, selection: Selection, *, as_table: bool
    ) -> None:
        self.ctx = ctx
        self.target = target
        self.selection = selection
        self.as_table = as_table
        self.prefix = target.rtype.prefix(target.namespace)
        self.visible: set[str] = set()
        self.converts = bool(target.rtype.storage_version)  # a CRD: maybe another version

    async def shown(self, change: Change) -> Change:
        """`change` with its object in this watch's version (custom resources only)."""
        if not self.converts or not change.key.startswith(self.prefix):
            return change
        body = (await in_version(self.ctx, self.target.rtype, [change.body]))[0]
        return change if body is change.body else dataclasses.replace(change, body=body)

    def event(self, change: Change) -> bytes | None:
        """The event line this watcher sends for `change`, or None."""
        if not change.key.startswith(self.prefix):
            return None
        if change.type == "DELETED":
            if not self.selection.matches(change.body) and change.key not in self.visible:
                return None
            self.visible.discard(change.key)
            return self.render("DELETED", change.body)
        if self.selection.matches(change.body):
            kind = "ADDED" if change.type == "ADDED" else "MODIFIED"
            self.visible.add(change.key)
            return self.render(kind, change.body)
        if change.key in self.visible:  # stopped matching: gone from this watcher's view
            self.visible.discard(change.key)
            return self.render("DELETED", change.body)
        return None

    def render(self, kind: str, obj: Mapping[str, Any]) -> bytes:
        """The event line (JSON and a newline) of `kind` for `obj`."""
        shown = present(self.target.rtype, obj)
        if self.as_table:
            rv = str(shown["metadata"].get("resourceVersion", ""))
            table_event = table_of(
                self.target.rtype, [shown], now=self.ctx.now(), resource_version=rv
            )
            return dumps({"type": kind, "object": table_event}) + b"\n"
        return EVENT_LINES.line(kind, shown)

    def bookmark(self, rv: int) -> dict[str, Any]:
        rtype = self.target.rtype
        obj = {
            "kind": rtype.kind,
            "apiVersion": rtype.group_version,
            "metadata": {"resourceVersion": str(rv)},
        }
        return {"type": "BOOKMARK", "object": obj}


async def serve_watch(
    ctx: ApiContext, request: web.Request, target: Target, query: Mapping[str, str]
) -> web.StreamResponse:
    """Stream watch events for `target` until timeoutSeconds, disconnect or shutdown."""
    store = ctx.store
    selection = parse_selection(query)
    bookmarks = (
        parse_bool(query["allowWatchBookmarks"]) if query.get("allowWatchBookmarks") else False
    )
    timeout = float(query.get("timeoutSeconds") or 0) or None
    requested = query.get("resourceVersion", "")
    if requested and not requested.isdigit():
        raise ApiError(400, f"invalid resourceVersion {requested!r}")
    if requested and int(requested) > store.revision:
        await require_reached(store, requested)  # else 504 ResourceVersionTooLarge
    stream = _Stream(
        ctx, target, selection, as_table=table.wants_table(request.headers.get("Accept", ""))
    )
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    queue = store.subscribe()
    try:
        backlog: list[bytes] = []
        if requested in ("", "0"):
            progress = store.revision
            selected = [(k, o) for k, o in store.items(stream.prefix) if selection.matches(o)]
            objs = [o for _, o in selected]
            if stream.converts:
                objs = await in_version(ctx, target.rtype, objs)
            for (key, _), obj in zip(selected, objs, strict=True):
                stream.visible.add(key)
                backlog.append(stream.render("ADDED", obj))
        else:
            progress = int(requested)
            try:
                changes = await store.changes_since(progress)
            except Compacted as old:
                await response.prepare(request)
                error = status_body(410, str(old), reason="Expired")
                await response.write(dumps({"type": "ERROR", "object": error}) + b"\n")
                return response
            await _seed_visible(stream, changes, since=progress)
            for change in changes:
                progress = change.rv
                event = stream.event(await stream.shown(change))
                if event is not None:
                    backlog.append(event)
        await response.prepare(request)
        if backlog:
            await response.write(b"".join(backlog))
        await _stream_live(ctx, request, response, stream, queue, progress=progress,
                           bookmarks=bookmarks, timeout=timeout)  # fmt: skip
    except ConnectionResetError:
        pass
    except ApiError as failed:  # a conversion webhook failed: one ERROR event, then close
        if not response.prepared:
            raise
        await response.write(dumps({"type": "ERROR", "object": failed.status()}) + b"\n")
    finally:
        store.unsubscribe(queue)
    return response


async def _stream_live(
    ctx: ApiContext,
    request: web.Request,
    response: web.StreamResponse,
    stream: _Stream,
    queue: asyncio.Queue[Change],
    *,
    progress: int,
    bookmarks: bool,
    timeout: float | None,  # noqa: ASYNC109 - the watch's own timeoutSeconds, not a call timeout
) -> None:
    loop_start = time.monotonic()
    deadline = loop_start + timeout if timeout else None
    interval = ctx.settings.bookmark_interval
    next_bookmark = loop_start + interval
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            if bookmarks:
                await response.write(dumps(stream.bookmark(_settled(ctx, queue, progress))) + b"\n")
            return
        if bookmarks and now >= next_bookmark:
            await response.write(dumps(stream.bookmark(_settled(ctx, queue, progress))) + b"\n")
            next_bookmark = now + interval
        wake = min(x for x in (deadline, next_bookmark if bookmarks else None, now + 1.0) if x)
        try:
            if queue.empty():  # else take it at once: a timer per event would cost more
                async with asyncio.timeout(max(0.0, wake - now)):
                    change = await queue.get()
            else:
                change = queue.get_nowait()
        except TimeoutError:
            if request.transport is None or request.transport.is_closing():
                return
            continue
        if change.type == CLOSED:
            return
        if change.rv <= progress:
            continue
        progress = change.rv
        lines = []
        for pending in (change, *_drain(queue)):
            if pending.type == CLOSED:
                return
            if pending.rv <= progress and pending is not change:
                continue
            progress = pending.rv
            line = stream.event(await stream.shown(pending))
            if line is not None:
                lines.append(line)
        if lines:
            await response.write(b"".join(lines))


async def _seed_visible(stream: _Stream, changes: list[Change], *, since: int) -> None:
    """Which keys matched the selector as of revision `since` (what the client has seen).

    A watch without selectors needs none: every object matches, so `event` never
    consults `visible` (and seeding it would walk every stored object per watch)."""
    if stream.selection.everything:
        return
    first: dict[str, str] = {}
    for change in changes:
        if change.key.startswith(stream.prefix):
            first.setdefault(change.key, change.type)
    for key, obj in stream.ctx.store.items(stream.prefix):
        if key not in first and stream.selection.matches(obj):
            stream.visible.add(key)
    for key, kind in first.items():
        if kind == "ADDED":  # did not exist at `since`
            continue
        known, then = await stream.ctx.store.state_at(key, since)
        if known and then is not None and stream.selection.matches(then):
            stream.visible.add(key)


def _drain(queue: asyncio.Queue[Change]) -> list[Change]:
    drained = []
    while not queue.empty():
        drained.append(queue.get_nowait())
    return drained


def _settled(ctx: ApiContext, queue: asyncio.Queue[Change], progress: int) -> int:
    """A bookmark revision no later than any change still queued for this watcher."""
    return ctx.store.revision if queue.empty() else progress
