"""The engine running an operator inside the test's event loop, against an
`EmbeddedCluster`, with helpers to wait for a resource's state or phase and to read its
journal. The engine is the real one (Controller, watchers, queue, SQLite journal).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import Operator, Settings
from engine.hosting import build_controller
from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.testing.cluster import EmbeddedCluster

DEFAULT_TIMEOUT = 20.0
POLL_SECONDS = 0.02


class WaitTimeout(AssertionError):
    """A wait helper's condition did not hold in time; the message says what was seen."""


@dataclass(frozen=True)
class RunningOperator:
    """The running engine: `controller`, its `journal`, and the `cluster` it watches."""

    operator: Operator
    cluster: EmbeddedCluster
    controller: Any
    journal: SqliteJournal

    def state_of(self, name: str, namespace: str = "default") -> str | None:
        """The engine's folded state of the resource (None while it does not know it)."""
        for view in self.controller.snapshot():
            if (view.namespace, view.name) == (namespace, name):
                return str(view.state)
        return None

    async def wait_for_state(
        self, name: str, state: str, *, namespace: str = "default", within: float = DEFAULT_TIMEOUT
    ) -> None:
        """Return once the engine's state of the resource is `state` (e.g. "Ready",
        "Failed", "Deleted"). Errors: `WaitTimeout` with the last state seen."""
        await wait_until(
            lambda: self.state_of(name, namespace) == state,
            within=within,
            what=lambda: (
                f"{namespace}/{name} to be {state} (it is {self.state_of(name, namespace)})"
            ),
        )

    async def wait_for_phase(
        self, name: str, phase: str, *, namespace: str = "default", within: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Return the object once its `status.phase` on the API server is `phase`."""
        deadline = time.monotonic() + within
        seen: Any = None
        while time.monotonic() < deadline:
            obj = await self.cluster.get(name, namespace)
            seen = (obj or {}).get("status", {}).get("phase") if obj else "absent"
            if obj is not None and seen == phase:
                return obj
            await asyncio.sleep(POLL_SECONDS * 5)
        raise WaitTimeout(
            f"{namespace}/{name} never had phase {phase} in {within:g}s (last: {seen})"
        )

    async def wait_until_gone(
        self, name: str, *, namespace: str = "default", within: float = DEFAULT_TIMEOUT
    ) -> None:
        """Return once the object no longer exists on the API server."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.cluster.get(name, namespace) is None:
                return
            await asyncio.sleep(POLL_SECONDS * 5)
        raise WaitTimeout(f"{namespace}/{name} still exists after {within:g}s")

    async def records(self, name: str, namespace: str = "default") -> list[Record]:
        """Every journal record of the resource (all its uids), in order."""
        resource = self.operator.resource
        prefix = f"{resource.group}/{resource.kind}/{namespace}/{name}#"
        found: list[Record] = []
        for stream in sorted(await self.journal.streams()):
            if stream.startswith(prefix):
                found.extend(await self.journal.read_stream(stream))
        return sorted(found, key=lambda r: r.position)

    async def record_types(self, name: str, namespace: str = "default") -> list[str]:
        """The types of the resource's records, in order (e.g. "Observed", "EffectStarted")."""
        return [record.type for record in await self.records(name, namespace)]


async def wait_until(
    condition: Callable[[], bool], *, within: float = DEFAULT_TIMEOUT, what: Callable[[], str]
) -> None:
    """Poll `condition` until true. Errors: `WaitTimeout` with `what()` in the message."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise WaitTimeout(f"waited {within:g}s for {what()}")
        await asyncio.sleep(POLL_SECONDS)


@contextlib.asynccontextmanager
async def run_operator(
    operator: Operator,
    cluster: EmbeddedCluster,
    *,
    state_dir: Path,
    settings: Settings | None = None,
) -> AsyncIterator[RunningOperator]:
    """Run `operator` against `cluster` until the `async with` body ends (then stop it
    gracefully). Returns once the engine is ready (watches synced, workers running).
    `settings` default: the defaults with `state_dir`; no health server either way."""
    chosen = dataclasses.replace(settings or Settings(), state_dir=state_dir)
    await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
    journal = await SqliteJournal.open(
        state_dir / "journal.db",
        synchronous="NORMAL",
        redact=(*operator.secret_fields, *chosen.redact_fields),
    )
    controller = build_controller(
        operator, settings=chosen, api_client=cluster.api, journal=journal, serve_health=False
    )
    task = asyncio.create_task(controller.run(), name="engine-under-test")
    try:
        ready = asyncio.create_task(controller.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await task  # it ended before it was ready: raise what stopped it
        yield RunningOperator(operator=operator, cluster=cluster, controller=controller,
                              journal=journal)  # fmt: skip
    finally:
        await controller.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await journal.close()
