"""A fault-injecting HTTP proxy between the engine and the API server, for fault tests.

It forwards every request to the upstream server and, at a configured rate drawn from a
seeded random source, answers instead with a 409 conflict, a 429 with Retry-After, a
500, a connection reset, a watch stream cut after some lines, or a slow response. Watch
responses are streamed line by line, so watches work through it.

The aimed kinds (`AIMED_KINDS`) are drawn only when named in `kinds`: a 503, a 504, a
403 or a 410 answer; a reset in the middle of the answer's body or after the upstream
server applied the request; a watch ended cleanly (EOF) after some lines, or one that
repeats the lines earlier watches of its path delivered and ends; a request held without
an answer (a hang); an answer whose body trickles in a few bytes at a time.
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
"""The kinds drawn by default (`FaultSettings.kinds`)."""
UNAVAILABLE: Final = "unavailable"
GATEWAY_TIMEOUT: Final = "gateway_timeout"
FORBIDDEN: Final = "forbidden"
EXPIRED: Final = "expired"
RESET_MID_BODY: Final = "reset_mid_body"
RESET_AFTER_APPLY: Final = "reset_after_apply"
END_WATCH: Final = "end_watch"
REPLAY_WATCH: Final = "replay_watch"
HANG: Final = "hang"
TRICKLE: Final = "trickle"
AIMED_KINDS: Final = (UNAVAILABLE, GATEWAY_TIMEOUT, FORBIDDEN, EXPIRED, RESET_MID_BODY,
                      RESET_AFTER_APPLY, END_WATCH, REPLAY_WATCH, HANG, TRICKLE)  # fmt: skip
"""The kinds drawn only when `FaultSettings.kinds` names them."""
WATCH_KINDS: Final = (CUT_WATCH, END_WATCH, REPLAY_WATCH)
"""The kinds only watch requests get (and the only ones they get when any is named)."""
_STATUS_FAULTS: Final = {
    SERVER_ERROR: (500, "InternalError", "injected server error"),
    UNAVAILABLE: (503, "ServiceUnavailable", "injected: the server is unavailable"),
    GATEWAY_TIMEOUT: (504, "Timeout", "injected: the gateway timed out"),
    FORBIDDEN: (403, "Forbidden", "injected: the service account may not do this"),
    EXPIRED: (410, "Expired", "injected: the continue token is too old"),
}

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
    drawn from (uniformly); `seed`: the random source; `retry_after`: the header a
    throttle sends (None: none); `methods` / `path_contains` /
    `query_contains`: only requests with one of these methods (empty: all), a path and a
    query string containing these texts are candidates. The watch kinds apply only to
    watch requests and are the only faults drawn for them when one is among `kinds`;
    `watch_rate` (None: `rate`) is their share. `limit` (None: no limit): at most this
    many faults, then every request is forwarded. `hang_seconds`: how long a hang holds
    a request (it ends sooner when the settings change or the proxy stops);
    `trickle_bytes` every `trickle_seconds`: the pace of a trickled body.
    `repeat_watch_lines`: every line of every watch stream is sent this many times (one
    event delivered again and again).
    """

    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: int | str | None = 1
    slow_seconds: float = 0.5
    cut_after_lines: int = 1
    methods: tuple[str, ...] = ()
    path_contains: str = ""
    watch_rate: float | None = None
    query_contains: str = ""
    limit: int | None = None
    hang_seconds: float = 30.0
    trickle_bytes: int = 16
    trickle_seconds: float = 0.05
    repeat_watch_lines: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be within 0..1, got {self.rate}")
        if self.watch_rate is not None and not 0.0 <= self.watch_rate <= 1.0:
            raise ValueError(f"watch fault rate must be within 0..1, got {self.watch_rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS) - set(AIMED_KINDS)
        if unknown:
            known = FAULT_KINDS + AIMED_KINDS
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {known}")


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
    query: str = ""


class FaultPlan:
    """The seeded sequence of fault decisions: the same settings and the same requests
    in the same order give the same faults."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.chosen = 0
        self._rng = random.Random(settings.seed)
        # watches draw from their own source, so whether the n-th watch is cut does not
        # depend on how other requests interleave with it
        self._watch_rng = random.Random(f"watch-{settings.seed}")

    def choose(self, method: str, path: str, *, watch: bool, query: str = "") -> str | None:
        """The fault for this request, or None to forward it untouched."""
        s = self.settings
        if s.methods and method not in s.methods:
            return None
        if s.path_contains not in path or s.query_contains not in query:
            return None
        if s.limit is not None and self.chosen >= s.limit:
            return None
        kinds = [k for k in s.kinds if watch or k not in WATCH_KINDS]
        if watch and any(k in WATCH_KINDS for k in kinds):
            kinds = [k for k in kinds if k in WATCH_KINDS]
        rate = s.watch_rate if watch and s.watch_rate is not None else s.rate
        rng = self._watch_rng if watch else self._rng
        if not kinds or rng.random() >= rate:
            return None
        self.chosen += 1
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
    """A running proxy: `url` to point the client at, `settings` (or `aim` for several
    at once) to change the faults (a new seeded plan starts), `injected`, `requests` and
    `forwarded` to see what happened."""

    upstream: str
    url: str = ""
    injected: list[InjectedFault] = field(default_factory=list)
    forwarded: int = 0
    requests: list[RequestSeen] = field(default_factory=list)
    _watches: set[aiohttp.ClientResponse] = field(default_factory=set)
    _plans: list[FaultPlan] = field(default_factory=lambda: [FaultPlan(FaultSettings())])
    _session: aiohttp.ClientSession | None = None
    _watch_lines: dict[str, list[bytes]] = field(default_factory=dict)  # path -> lines sent
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _ended: set[aiohttp.ClientResponse] = field(default_factory=set)  # by end_watches

    @property
    def settings(self) -> FaultSettings:
        return self._plans[0].settings

    @settings.setter
    def settings(self, value: FaultSettings) -> None:
        self.aim(value)

    def aim(self, *settings: FaultSettings) -> None:
        """Inject by several settings at once (each with its own seeded plan): a request
        gets the fault of the first whose plan chooses one. None: forward everything."""
        self._plans = [FaultPlan(one) for one in settings or (FaultSettings(),)]
        self._release.set()  # the requests held by a hang end
        self._release = asyncio.Event()

    def end_watches(self) -> None:
        """End every open watch cleanly (EOF), as a server does at its watch timeout."""
        for stream in list(self._watches):
            self._ended.add(stream)
            stream.close()

    def seen(self, method: str, path_contains: str = "") -> list[RequestSeen]:
        """The requests received with `method` whose path contains `path_contains`."""
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def kinds_injected(self) -> set[str]:
        return {fault.kind for fault in self.injected}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        watch = _is_watch(request)
        received = time.monotonic()
        query = request.query_string
        kind, settings = None, self.settings
        for plan in self._plans:
            kind = plan.choose(request.method, request.path, watch=watch, query=query)
            if kind is not None:
                settings = plan.settings
                break
        if kind is not None:
            self.injected.append(InjectedFault(kind, request.method, request.path))
        if kind != THROTTLE:
            self.requests.append(RequestSeen(request.method, request.path, watch, received,
                                             kind, query=query))  # fmt: skip
        body = await request.read()
        if kind == CONFLICT:
            return web.json_response(
                _status(409, "Conflict", "injected conflict: the object has been modified"),
                status=409,
            )
        if kind == THROTTLE:
            retry_after = settings.retry_after
            response = web.json_response(
                _status(429, "TooManyRequests", "injected throttling"),
                status=429,
                headers={} if retry_after is None else {"Retry-After": str(retry_after)},
            )
            await response.prepare(request)
            await response.write_eof()
            self.requests.append(RequestSeen(request.method, request.path, watch, received,
                                             kind, retry_after, time.monotonic(),
                                             query))  # fmt: skip
            return response
        if kind in _STATUS_FAULTS:
            code, reason, message = _STATUS_FAULTS[kind]
            return web.json_response(_status(code, reason, message), status=code)
        if kind == RESET:
            _reset(request)
            return web.Response(status=500)  # never reaches the client
        if kind == HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), settings.hang_seconds)
            _reset(request)  # the client gave up long ago
            return web.Response(status=504)
        if kind == SLOW:
            await asyncio.sleep(settings.slow_seconds)
        if kind in (RESET_MID_BODY, RESET_AFTER_APPLY, TRICKLE):
            return await self._forward_faulty(request, body, kind, settings)
        cut_after = settings.cut_after_lines if kind in (CUT_WATCH, END_WATCH) else None
        return await self._forward(
            request, body, cut_after=cut_after, cleanly=kind == END_WATCH,
            replay=kind == REPLAY_WATCH,
        )  # fmt: skip

    async def _forward_faulty(
        self, request: web.Request, body: bytes, kind: str, settings: FaultSettings
    ) -> web.StreamResponse:
        """Forward a (non-watch) request, then break its answer as `kind` says: reset
        before any byte of it, reset after half of its body, or trickle its body."""
        status, headers, answer = await self._upstream(request, body)
        if kind == RESET_AFTER_APPLY:
            _reset(request)  # the server applied it; the client never hears
            return web.Response(status=500)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(answer)
        await response.prepare(request)
        if kind == RESET_MID_BODY:
            await response.write(answer[: len(answer) // 2])
            await asyncio.sleep(0.05)  # let the half reach the client before the reset
            _reset(request)
            return response
        step = max(1, settings.trickle_bytes)
        for start in range(0, len(answer), step):
            await response.write(answer[start : start + step])
            await asyncio.sleep(settings.trickle_seconds)
        await response.write_eof()
        return response

    async def _upstream(
        self, request: web.Request, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Send the request upstream: its status, headers (hop-by-hop ones dropped), body."""
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, headers=headers,
            data=body or None, allow_redirects=False,
        ) as upstream:  # fmt: skip
            self.forwarded += 1
            reply_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            return upstream.status, reply_headers, await upstream.read()

    async def _forward(
        self,
        request: web.Request,
        body: bytes,
        *,
        cut_after: int | None,
        cleanly: bool = False,
        replay: bool = False,
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
            delivered = self._watch_lines.setdefault(request.path, [])
            if replay:  # the events earlier watches of this path delivered, once more, and
                for line in list(delivered):  # the end (the client reconnects at once)
                    await response.write(line)
                await response.write_eof()
                return response
            try:
                lines = 0
                repeat = self.settings.repeat_watch_lines
                async for line in upstream.content:
                    await response.write(line * repeat)
                    delivered.append(line)
                    lines += 1
                    if cut_after is not None and lines >= cut_after:
                        if cleanly:
                            await response.write_eof()
                        else:
                            _reset(request)
                        return response
            except aiohttp.ClientError:
                if upstream not in self._ended:
                    _reset(request)
                    return response
            finally:
                self._watches.discard(upstream)
                self._ended.discard(upstream)
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
        proxy._release.set()
        for stream in list(proxy._watches):
            stream.close()
        await proxy._session.close()
        await runner.cleanup()
