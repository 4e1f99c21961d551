"""The external system of the sharded runs: every call takes `latency` seconds (the
"external effect of 20 ms"), carries an idempotency key and a fence (shard, term), and is
refused (409) when a higher term has been seen for that shard. It keeps the oracle: the
calls applied per key (a key applied twice is a duplicate effect), the refusals by term,
and the time each key was first applied.

`PUT /calls/{key}` with headers `X-Shard` and `X-Fencing-Term`; `GET /oracle`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class TargetState:
    """What the target has seen (mutable; changed only through `call`)."""

    highest: dict[str, int] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    first_at: dict[str, float] = field(default_factory=dict)
    stale: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def call(self, key: str, shard: str, term: int, at: float) -> tuple[int, dict[str, Any]]:
        """Apply or refuse one call: (status, body)."""
        highest = self.highest.get(shard, 0)
        call = {"key": key, "shard": shard, "term": term, "highest": highest, "at": at}
        if term < highest:
            self.stale.append(call)
            self.calls.append({**call, "outcome": "stale"})
            return 409, {"error": "stale fencing term", "term": term, "highest": highest}
        self.highest[shard] = term
        if key in self.applied:
            self.calls.append({**call, "outcome": "replayed"})
            return 200, {"key": key, "replayed": True}
        self.calls.append({**call, "outcome": "applied"})
        self.applied[key] = 1
        self.first_at[key] = at
        return 200, {"key": key, "replayed": False}

    def oracle(self) -> dict[str, Any]:
        return {
            "applied": len(self.applied),
            "highest": dict(self.highest),
            "stale": list(self.stale),
            "first_at": dict(self.first_at),
        }


class ShardTarget:
    """The target as an aiohttp app on 127.0.0.1 (`async with ShardTarget(...) as t`)."""

    def __init__(self, *, latency: float = 0.02) -> None:
        self.state = TargetState()
        self.latency = latency
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> ShardTarget:
        app = web.Application()
        app.router.add_put("/calls/{key}", self._put)
        app.router.add_get("/oracle", self._oracle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _put(self, request: web.Request) -> web.Response:
        try:
            term = int(request.headers["X-Fencing-Term"])
            shard = request.headers["X-Shard"]
        except (KeyError, ValueError):
            return web.json_response({"error": "X-Shard and X-Fencing-Term needed"}, status=400)
        await asyncio.sleep(self.latency)
        async with self._lock:
            status, body = self.state.call(request.match_info["key"], shard, term, time.time())
        return web.json_response(body, status=status)

    async def _oracle(self, _: web.Request) -> web.Response:
        return web.json_response(self.state.oracle())
