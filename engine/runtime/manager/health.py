"""The health endpoints: GET /healthz, /readyz and /metrics, and nothing else.

Bodies are fixed and tiny: a failing readiness check is named by its fixed name in the
/readyz body (`unavailable: journal`), a failing liveness check only in the log; never
an object name, a message or a stack trace (R16, S8).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from engine.ui.health_mount import mount_timeline

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST_BYTES = 1024


@dataclass(frozen=True)
class Check:
    """A named probe; `probe()` must be quick and synchronous (it runs on the event loop).

    A probe that raises counts as failing. `name` is fixed by the code (a failing
    readiness check's name is shown in the /readyz body).
    """

    name: str
    probe: Callable[[], bool]


@dataclass(frozen=True)
class HealthDependencies:
    """What the endpoints report: liveness and readiness checks and the metrics registry."""

    registry: CollectorRegistry
    liveness: tuple[Check, ...] = field(default=())
    readiness: tuple[Check, ...] = field(default=())


def _failing(checks: tuple[Check, ...], kind: str) -> list[str]:
    """The names of the checks that fail now, in order."""
    failing: list[str] = []
    for check in checks:
        try:
            ok = check.probe() is True
        except Exception as error:  # a broken probe is a failing probe, not a 500
            log.warning("%s check %s raised %s", kind, check.name, type(error).__name__)
            ok = False
        if not ok:
            log.warning("%s check %s is failing", kind, check.name)
            failing.append(check.name)
    return failing


def _status_response(failing: list[str], *, named: bool) -> web.Response:
    if not failing:
        return web.Response(text="ok\n")
    if named:
        return web.Response(status=503, text=f"unavailable: {', '.join(failing)}\n")
    return web.Response(status=503, text="unavailable\n")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _fixed_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse oversized requests; turn aiohttp's errors into fixed plain bodies."""
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        return web.Response(status=413, text="too large\n")
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed:
        return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET"})
    except web.HTTPNotFound:
        return web.Response(status=404, text="not found\n")


async def _drop_server_header(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.pop("Server", None)


def build_health_app(dependencies: HealthDependencies) -> web.Application:
    """The aiohttp application serving the three endpoints (GET only)."""

    async def healthz(_: web.Request) -> web.Response:
        return _status_response(_failing(dependencies.liveness, "liveness"), named=False)

    async def readyz(_: web.Request) -> web.Response:
        return _status_response(_failing(dependencies.readiness, "readiness"), named=True)

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(dependencies.registry)
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    app = web.Application(middlewares=[_fixed_errors], client_max_size=MAX_REQUEST_BYTES)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.on_response_prepare.append(_drop_server_header)
    return app


class HealthServer:
    """The endpoints served on `host:port` for the life of an `async with` block.

    Port 0 picks a free port; `port` and `url` give the bound one once entered.
    Errors: `OSError` on entering when the address cannot be bound.
    """

    def __init__(
        self,
        dependencies: HealthDependencies,
        *,
        host: str,
        port: int,
        timeline_journal: Path | None = None,
    ) -> None:
        """`timeline_journal`: also serve that journal's timeline page, read-only, under
        `/timeline/` (off when None)."""
        self._app = build_health_app(dependencies)
        if timeline_journal is not None:
            mount_timeline(self._app, timeline_journal)
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    @property
    def url(self) -> str:
        """The base URL of the running server."""
        return f"http://{self._host}:{self.port}"

    async def __aenter__(self) -> HealthServer:
        # the timeline's event streams stay open: do not wait long for them at shutdown
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
