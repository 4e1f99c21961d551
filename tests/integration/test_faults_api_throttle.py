"""B.2 A3f and A4b/d/f: the running engine, through the fault proxy, against the embedded
API server, with its child applies answered 429, or 500, 503 or 504, for a while. The
retries of all Widgets together stay within the global retry bucket, an outage longer
than the allowed attempts is not given up on (each Widget's retries follow its
backoff), and every Widget gets Ready once the server answers, with one registration
per key."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from engine.fsm import events as ev
from tests.integration.reconcile_support import (
    CONFIGMAPS,
    Engine,
    eventually,
    fast_settings,
    running_engine,
)
from tests.support.fault_proxy import (
    GATEWAY_TIMEOUT,
    SERVER_ERROR,
    THROTTLE,
    UNAVAILABLE,
    FaultSettings,
)

WINDOW = 0.6
"""Seconds the child applies get only the fault."""
MOST_TRIES = 15
"""At most this many applies of one child in the window: the effect's backoff (5 ms
doubling, full jitter) allows about ten; a retry without backoff sends hundreds."""


def _failing_applies(kinds: tuple[str, ...], **options: object) -> FaultSettings:
    return FaultSettings(
        rate=1.0, kinds=kinds, methods=("PATCH",), path_contains=CONFIGMAPS, **options
    )  # type: ignore[arg-type]


async def _all_ready(engine: Engine, names: list[str], *, within: float = 15.0) -> None:
    async def ready() -> bool:
        return all([await engine.phase(name) == "Ready" for name in names])

    await eventually(ready, f"{names} Ready once the server answers", within=within)


async def _one_registration_each(engine: Engine, names: list[str]) -> None:
    uids = [(await engine.widget(name) or {})["metadata"]["uid"] for name in names]
    assert engine.service.calls == {f"{uid}:1:register": 1 for uid in uids}
    for name in names:
        assert await engine.config(name) is not None


async def test_sustained_429s_on_many_widgets_stay_within_the_retry_bucket(
    tmp_path: Path,
) -> None:
    qps, burst, widgets, window = 10.0, 2, 8, 0.5
    settings = fast_settings(tmp_path, qps=qps, burst=burst)
    names = [f"bulk-{n:02}" for n in range(widgets)]
    async with running_engine(tmp_path, settings=settings, fault_proxy=FaultSettings()) as engine:
        proxy = engine.proxy
        assert proxy is not None
        proxy.settings = _failing_applies((THROTTLE,), retry_after=None)
        began = time.monotonic()
        for name in names:
            await engine.api.create_widget(name, size=1)
        await asyncio.sleep(window)
        applies = proxy.seen("PATCH", CONFIGMAPS)
        elapsed = time.monotonic() - began
        proxy.settings = FaultSettings()
        await _all_ready(engine, names, within=30.0)

        first = {r.path for r in applies}
        retries = len(applies) - len(first)
        # first attempts are not limited; the retries of all of them together are
        assert retries <= burst + qps * elapsed + 1, (retries, len(first), elapsed)
        await _one_registration_each(engine, names)


async def test_500_503_and_504_on_writes_past_the_allowed_attempts_do_not_give_up(
    tmp_path: Path,
) -> None:
    attempts = 3
    settings = fast_settings(tmp_path, max_effect_attempts=attempts)
    names = ["e0", "e1", "e2"]
    async with running_engine(tmp_path, settings=settings, fault_proxy=FaultSettings()) as engine:
        proxy = engine.proxy
        assert proxy is not None
        proxy.settings = _failing_applies((SERVER_ERROR, UNAVAILABLE, GATEWAY_TIMEOUT), seed=2)
        for name in names:
            await engine.api.create_widget(name, size=1)
        await asyncio.sleep(WINDOW)

        def tries() -> dict[str, int]:
            return {n: len(proxy.seen("PATCH", f"{CONFIGMAPS}/{n}-config")) for n in names}

        async def past_the_attempts() -> bool:  # on a loaded machine it may take longer
            return min(tries().values()) > attempts

        await eventually(past_the_attempts, "more tries than attempts allowed")
        counts = tries()
        proxy.settings = FaultSettings()
        await _all_ready(engine, names)

        assert proxy.kinds_injected() == {SERVER_ERROR, UNAVAILABLE, GATEWAY_TIMEOUT}
        # more failures than attempts allowed, each retried: an outage is never given up on
        assert max(counts.values()) <= MOST_TRIES, counts
        failed = [r async for r in engine.journal.read_all() if r.type == ev.EFFECT_FAILED]
        assert failed, "the failures are journaled"
        assert not [r for r in failed if r.data.get("gave_up")], "none gave up"
        await _one_registration_each(engine, names)
