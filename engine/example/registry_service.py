"""The example operator's external service: registrations over HTTP, with injectable faults.

It honours idempotency keys (a repeated key is answered from its record, never applied
twice), rejects stale fencing terms (409), and keeps an oracle log (GET /calls, /applied)
that the fault tests check. Run it in-process with `serve_registry`, or as its own
process with `engine example-service --port P --state FILE`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from engine.example.registry_state import RegistryState, Reply


@dataclass(frozen=True)
class Faults:
    """Injected trouble: every call waits `latency_seconds` plus up to `latency_jitter_seconds`;
    with probability `failure_rate` it is refused with 503 before anything happens, and with
    `lost_reply_rate` it is applied but answered with 503 (an ambiguous write). Refusals
    carry `Retry-After: retry_after_seconds`."""

    latency_seconds: float = 0.0
    latency_jitter_seconds: float = 0.0
    failure_rate: float = 0.0
    lost_reply_rate: float = 0.0
    retry_after_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("failure_rate", "lost_reply_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"fault {name} must be between 0 and 1")
        for name in ("latency_seconds", "latency_jitter_seconds", "retry_after_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"fault {name} must be >= 0 seconds")


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class RegistryService:
    """The service's handlers over one `RegistryState`; saved to `state_path` when given."""

    def __init__(self, *, state_path: Path | None, faults: Faults, seed: int) -> None:
        self.state_path = state_path
        self.state = RegistryState.load(state_path) if state_path else RegistryState()
        self.faults = faults
        self._rng = random.Random(seed)
        self._lock = asyncio.Lock()  # calls are decided one at a time, in arrival order

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_put("/registrations/{name}", self._put)
        app.router.add_delete("/registrations/{name}", self._delete)
        app.router.add_get("/registrations", self._list)
        app.router.add_get("/calls", self._calls)
        app.router.add_get("/applied", self._applied)
        app.router.add_get("/faults", self._get_faults)
        app.router.add_post("/faults", self._set_faults)
        return app

    async def _put(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
        except ValueError:
            return _error(400, "the body must be a JSON object")
        if not isinstance(spec, dict):
            return _error(400, "the body must be a JSON object")
        return await self._call(request, "PUT", spec)

    async def _delete(self, request: web.Request) -> web.Response:
        return await self._call(request, "DELETE", None)

    async def _call(
        self, request: web.Request, method: Literal["PUT", "DELETE"], spec: dict[str, Any] | None
    ) -> web.Response:
        name = request.match_info["name"]
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            return _error(400, "the Idempotency-Key header is required")
        try:
            term = int(request.headers.get("X-Fencing-Term", ""))
        except ValueError:
            return _error(400, "the X-Fencing-Term header must be a non-negative integer")
        if term < 0:
            return _error(400, "the X-Fencing-Term header must be a non-negative integer")
        faults = self.faults
        delay = faults.latency_seconds + self._rng.uniform(0.0, faults.latency_jitter_seconds)
        if delay > 0:
            await asyncio.sleep(delay)
        retry_after = {"Retry-After": f"{faults.retry_after_seconds:g}"}
        async with self._lock:
            if self._rng.random() < faults.failure_rate:
                self.state.log_unavailable(
                    method=method, name=name, key=key, term=term, at=time.time()
                )
                self._save()
                return _error(503, "injected failure: service unavailable", **retry_after)
            reply: Reply = self.state.decide(
                method=method, name=name, key=key, term=term, spec=spec, at=time.time()
            )
            lost = reply.status == 200 and self._rng.random() < faults.lost_reply_rate
            if lost:
                self.state.mark_reply_lost()
            self._save()
        if lost:
            return _error(503, "injected failure: reply lost after applying", **retry_after)
        return web.json_response(reply.body, status=reply.status)

    def _save(self) -> None:
        if self.state_path is not None:
            self.state.save(self.state_path)

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({"items": list(self.state.registrations.values())})

    async def _calls(self, _: web.Request) -> web.Response:
        return web.json_response({"items": [asdict(call) for call in self.state.calls]})

    async def _applied(self, _: web.Request) -> web.Response:
        return web.json_response({"counts": self.state.applied})

    async def _get_faults(self, _: web.Request) -> web.Response:
        return web.json_response(asdict(self.faults))

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise TypeError("not an object")
            seed = changes.pop("seed", None)
            faults = dataclasses.replace(self.faults, **{
                name: float(value) for name, value in changes.items()
            })  # fmt: skip
        except (ValueError, TypeError) as error:
            known = ", ".join(field.name for field in dataclasses.fields(Faults))
            return _error(400, f"bad faults ({error}); known fields: {known}, seed")
        self.faults = faults
        if seed is not None:
            self._rng.seed(seed)
        return web.json_response(asdict(self.faults))


@dataclass(frozen=True)
class RunningRegistry:
    """Where a started registry service listens."""

    url: str
    port: int


@asynccontextmanager
async def serve_registry(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_path: Path | None = None,
    faults: Faults | None = None,
    seed: int = 0,
) -> AsyncIterator[RunningRegistry]:
    """Serve the registry on `host:port` (0: a free port) for the life of the block.

    Errors: `OSError` when the address cannot be bound; `ValueError` for an unreadable
    state file.
    """
    service = RegistryService(state_path=state_path, faults=faults or Faults(), seed=seed)
    runner = web.AppRunner(service.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = int(runner.addresses[0][1])
        yield RunningRegistry(url=f"http://{host}:{bound}", port=bound)
    finally:
        await runner.cleanup()
