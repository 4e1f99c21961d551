"""H1: a handler that hangs is cancelled by the per-reconcile deadline and retried with
backoff, and the watchdog's stuck gauge counts the resource while it stays stuck; once
the handler answers, the resource gets Ready and the gauge returns to 0."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
import pytest

from engine.runtime.reconcile.handler_context import Context
from engine.runtime.reconcile.operator import CustomResource, Operator
from tests.integration.reconcile_support import (
    GROUP,
    KIND,
    PLURAL,
    SCHEMA,
    VERSION,
    eventually,
    fast_settings,
    running_engine,
)

DEADLINE = 0.3
STUCK_AFTER = 1.0


class Hanging:
    """A provision handler that hangs until released, and what happened to each call."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started: list[float] = []
        self.cancelled_after: list[float] = []

    async def provision(self, ctx: Context) -> None:
        began = time.monotonic()
        self.started.append(began)
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled_after.append(time.monotonic() - began)
            raise


async def _stuck_gauge(url: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as answer:
        text = await answer.text()
    found = re.search(r"^engine_stuck_resources (\S+)$", text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


async def test_a_hanging_handler_is_cancelled_by_the_deadline_and_counted_as_stuck(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hanging = Hanging()
    operator = Operator(
        resource=CustomResource(GROUP, VERSION, KIND, PLURAL, SCHEMA),
        provision=hanging.provision,
    )
    settings = fast_settings(
        tmp_path,
        reconcile_timeout_seconds=DEADLINE,
        effect_timeout_seconds=30.0,
        stuck_deadlines={"Provisioning": STUCK_AFTER},
        max_heals_without_progress=100,
    )
    async with running_engine(tmp_path, settings=settings, operator=operator) as engine:
        url = engine.controller.health_url
        assert url is not None
        await engine.api.create_widget("hung", size=1)

        async def retried() -> bool:
            return len(hanging.started) >= 2

        await eventually(retried, "the hung reconcile cancelled and tried again")
        # the per-reconcile deadline cancelled it (the turn began before the handler did),
        # well before the watchdog's stuck deadline could
        assert 0 < hanging.cancelled_after[0] < STUCK_AFTER
        assert any(f"took over {DEADLINE}s" in r.getMessage() for r in caplog.records)

        async def counted() -> bool:
            return await _stuck_gauge(url) >= 1.0

        await eventually(counted, "engine_stuck_resources counts the hung resource")
        hanging.release.set()

        async def ready() -> bool:
            return await engine.phase("hung") == "Ready"

        await eventually(ready, "Ready once the handler answers")

        async def cleared() -> bool:
            return await _stuck_gauge(url) == 0.0

        await eventually(cleared, "the stuck gauge back to 0")
