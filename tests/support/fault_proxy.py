"""A fault-injecting HTTP proxy between the engine and the API server, for fault tests.

It forwards every request to the upstream server and, at a configured rate drawn from a
seeded random source, answers instead with a 409 conflict, a 429 with Retry-After, a
500, a connection reset, a watch stream cut after some lines, or a slow response. Watch
responses are streamed line by line, so watches work through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

import aiohttp
from aiohttp import web

CONFLICT: Final = "conflict"
THROTTLE: Final = "throttle"
SERVER_ERROR: Final = "server_error"
RESET: Final = "reset"
CUT_WATCH: Final = "cut_watch"
SLOW: Final = "slow"
FAULT_KINDS: Final = (CONFLICT, THROTTLE, SERVER_ERROR, RESET, CUT_WATCH, SLOW)

_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)


@dataclass(frozen=True)
class FaultSettings:
    """Which faults, how often, and their parameters.

    `rate`: the share of matching requests that get a fault (0..1); `kinds`: the faults
    drawn from (uniformly); `seed`: the random source; `methods` / `path_contains`: only
    requests with one of these methods (empty: all) and a path containing this text are
    candidates. `cut_watch` applies only to watch requests and is the only fault drawn
    for them when it is among `kinds`; `watch_rate` (None: `rate`) is their share.
    `repeat_watch_lines`: every line of every watch stream is sent this many times (one
    event delivered again and again).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: int | str = 1
    slow_seconds: float = 0.5
    cut_after_lines: int = 1
    methods: tuple[str, ...] = ()
    path_contains: str = ""
    watch_rate: float | None = None
    repeat_watch_lines: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        if self.watch_rate is not None and not 0.0 <= self.watch_rate <= 1.0:
            raise ValueError(f"watch fault rate must be within 0..1, got {self.watch_rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")


@dataclass(frozen=True)
class InjectedFault:
    """One fault the proxy injected."""

    kind: str
    method: str
    path: str


@dataclass(frozen=True)
class RequestSeen:
    """One request the proxy received: when (`time.monotonic()`), the fault it got (None:
    forwarded untouched), and for a throttle the Retry-After sent and when it was answered."""

    method: str
    path: str
    watch: bool
    at: float
    fault: str | None
    retry_after: int | str | None = None
    answered_at: float = 0.0


class FaultPlan:
    """The seeded sequence of fault decisions: the same settings and the same requests
    in the same order give the same faults."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        # watches draw from their own source, so whether the n-th watch is cut does not
        # depend on how other requests interleave with it
        self._watch_rng = random.Random(f"watch-{settings.seed}")

    def choose(self, method: str, path: str, *, watch: bool) -> str | None:
        """The fault for this request, or None to forward it untouched."""
        s = self.settings
        if s.methods and method not in s.methods:
            return None
        if s.path_contains not in path:
            return None
        kinds = [k for k in s.kinds if watch or k != CUT_WATCH]
        if watch and CUT_WATCH in kinds:
            kinds = [CUT_WATCH]
        rate = s.watch_rate if watch and s.watch_rate is not None else s.rate
        rng = self._watch_rng if watch else self._rng
        if not kinds or rng.random() >= rate:
            return None
        return rng.choice(kinds)


def _status(code: int, reason: str, message: str) -> dict[str, object]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in ("true", "1")


def _reset(request: web.Request) -> None:
    """Close the client connection with a TCP RST (SO_LINGER 0), as a crashed peer does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@dataclass
class FaultProxy:
    """A running proxy: `url` to point the client at, `settings` to change the faults
    (a new seeded plan starts), `injected` and `forwarded` to see what happened."""

    upstream: str
    url: str = ""
    injected: list[InjectedFault] = field(default_factory=list)
    forwarded: int = 0
    requests: list[RequestSeen] = field(default_factory=list)
    _watches: set[aiohttp.ClientResponse] = field(default_factory=set)
    _plan: FaultPlan = field(default_factory=lambda: FaultPlan(FaultSettings()))
    _session: aiohttp.ClientSession | None = None

    @property
    def settings(self) -> FaultSettings:
        return self._plan.settings

    @settings.setter
    def settings(self, value: FaultSettings) -> None:
        self._plan = FaultPlan(value)

    def kinds_injected(self) -> set[str]:
        return {fault.kind for fault in self.injected}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        watch = _is_watch(request)
        received = time.monotonic()
        kind = self._plan.choose(request.method, request.path, watch=watch)
        if kind is not None:
            self.injected.append(InjectedFault(kind, request.method, request.path))
        if kind != THROTTLE:
            self.requests.append(RequestSeen(request.method, request.path, watch, received, kind))
        body = await request.read()
        if kind == CONFLICT:
            return web.json_response(
                _status(409, "Conflict", "injected conflict: the object has been modified"),
                status=409,
            )
        if kind == THROTTLE:
            retry_after = self.settings.retry_after
            response = web.json_response(
                _status(429, "TooManyRequests", "injected throttling"),
                status=429,
                headers={"Retry-After": str(retry_after)},
            )
            await response.prepare(request)
            await response.write_eof()
            self.requests.append(RequestSeen(request.method, request.path, watch, received,
                                             kind, retry_after, time.monotonic()))  # fmt: skip
            return response
        if kind == SERVER_ERROR:
            return web.json_response(
                _status(500, "InternalError", "injected server error"), status=500
            )
        if kind == RESET:
            _reset(request)
            return web.Response(status=500)  # never reaches the client
        if kind == SLOW:
            await asyncio.sleep(self.settings.slow_seconds)
        cut_after = self.settings.cut_after_lines if kind == CUT_WATCH else None
        return await self._forward(request, body, cut_after=cut_after)

    async def _forward(
        self, request: web.Request, body: bytes, *, cut_after: int | None
    ) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            allow_redirects=False,
        ) as upstream:
            self.forwarded += 1
            reply_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            if not _is_watch(request) or upstream.status != 200:
                return web.Response(
                    status=upstream.status, body=await upstream.read(), headers=reply_headers
                )
            response = web.StreamResponse(status=upstream.status, headers=reply_headers)
            await response.prepare(request)
            self._watches.add(upstream)  # closed at shutdown: watches do not end by themselves
            try:
                lines = 0
                repeat = self.settings.repeat_watch_lines
                async for line in upstream.content:
                    await response.write(line * repeat)
                    lines += 1
                    if cut_after is not None and lines >= cut_after:
                        _reset(request)
                        return response
            except aiohttp.ClientError:
                _reset(request)
                return response
            finally:
                self._watches.discard(upstream)
            await response.write_eof()
            return response


@contextlib.asynccontextmanager
async def serve_fault_proxy(
    upstream: str, settings: FaultSettings | None = None
) -> AsyncIterator[FaultProxy]:
    """Run a proxy to `upstream` on 127.0.0.1 (a free port) for the `async with` body."""
    proxy = FaultProxy(upstream=upstream.rstrip("/"))
    if settings is not None:
        proxy.settings = settings
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy.url = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    proxy._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
    try:
        yield proxy
    finally:
        for stream in list(proxy._watches):
            stream.close()
        await proxy._session.close()
        await runner.cleanup()
