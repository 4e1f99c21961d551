"""The timeline served over HTTP (read-only, GET only): the page at `/`, its live
updates as server-sent events at `/events`, and one record at `/record/{position}`.

`timeline_app` is an aiohttp application to run alone (`engine ui`) or to mount under
another application (the engine's health server: see `health_mount.mount_timeline`).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from engine.ui.feed import POLL_SECONDS, LiveFeed
from engine.ui.page import render_page
from engine.ui.page_data import record_json, script_json

FEED: web.AppKey[LiveFeed] = web.AppKey("timeline_feed", LiveFeed)
KEEPALIVE_SECONDS = 15.0


def timeline_app(
    journal: Path,
    *,
    jaeger_url: str | None = None,
    title: str | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> web.Application:
    """An application serving the live timeline of the journal file at `journal`.

    The file is opened read-only when the application starts (a `JournalError` then
    fails the start: a missing or foreign file) and followed until it stops.
    """
    feed = LiveFeed(journal, poll_seconds=poll_seconds)
    heading = title or f"Timeline of {journal.name}"

    async def page(request: web.Request) -> web.Response:
        resource = request.query.get("resource") or None
        body = render_page(
            feed.picture,
            feed.records,
            title=heading if resource is None else f"{heading}: {resource}",
            jaeger_url=jaeger_url,
            live=True,
            resource=resource,
        )
        return web.Response(text=body, content_type="text/html", charset="utf-8")

    async def events(request: web.Request) -> web.StreamResponse:
        since = _position(request.headers.get("Last-Event-ID")) or _position(
            request.query.get("from")
        )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await response.write(b"retry: 1000\n\n")
            while True:
                await feed.wait_past(since, seconds=KEEPALIVE_SECONDS)
                if feed.closed:
                    break
                if feed.picture.last_position <= since:
                    await response.write(b": keep-alive\n\n")
                    continue
                update = feed.update_since(since)
                since = update["last_position"]
                text = f"id: {since}\nevent: update\ndata: {script_json(update)}\n\n"
                await response.write(text.encode())
        except ConnectionResetError:
            pass  # the page went away: nothing more to send
        return response

    async def record(request: web.Request) -> web.Response:
        found = await feed.record(_position(request.match_info["position"]))
        if found is None:
            return web.Response(status=404, text="no such record\n")
        return web.Response(
            text=json.dumps(record_json(found), default=str), content_type="application/json"
        )

    async def started(_: web.Application) -> None:
        await feed.start()

    async def stopped(_: web.Application) -> None:
        await feed.stop()

    app = web.Application()
    app[FEED] = feed
    app.router.add_get("/", page, allow_head=False)
    app.router.add_get("/events", events, allow_head=False)
    app.router.add_get("/record/{position}", record, allow_head=False)
    app.on_startup.append(started)
    app.on_shutdown.append(stopped)
    return app


def _position(text: str | None) -> int:
    """A position from a query or header; anything that is not digits reads as 0."""
    return int(text) if text and text.isdigit() else 0
