"""B.2 A7a, A7b and A7c: the running engine, through the fault proxy, against the embedded
API server, while every call is answered late, the status patch of one Widget hangs
with no answer, and the child apply of another has its answer trickle in a few bytes
at a time. The per-reconcile deadline (made short here) cancels the hung patch and it
is tried again; the other Widgets get Ready meanwhile (the queue does not stall on the
hung key); liveness stays green; the trickled answer arrives whole; and the hung
Widget gets Ready once the server answers it."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    Engine,
    eventually,
    fast_settings,
    running_engine,
)
from tests.support.fault_proxy import HANG, SLOW, TRICKLE, FaultSettings

DEADLINE = 0.4
"""The reconcile deadline in this test (seconds)."""
LATENCY = 0.1
"""Added to every other call (seconds)."""
HUNG = f"{WIDGETS}/hung/status"
TRICKLED = f"{CONFIGMAPS}/trickled-config"
OTHERS = ["trickled", "s0", "s1", "s2"]


async def _healthz(url: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as answer,
    ):
        return answer.status


async def _ready(engine: Engine, names: list[str]) -> bool:
    return all([await engine.phase(name) == "Ready" for name in names])


async def test_slow_hung_and_trickled_answers_time_out_or_arrive_without_stalling_others(
    tmp_path: Path,
) -> None:
    settings = fast_settings(tmp_path, reconcile_timeout_seconds=DEADLINE)
    async with running_engine(tmp_path, settings=settings, fault_proxy=FaultSettings()) as engine:
        proxy, url = engine.proxy, engine.controller.health_url
        assert proxy is not None
        assert url is not None
        proxy.aim(
            FaultSettings(rate=1.0, kinds=(HANG,), methods=("PATCH",), path_contains=HUNG),
            FaultSettings(
                rate=1.0, kinds=(TRICKLE,), methods=("PATCH",), path_contains=TRICKLED,
                trickle_bytes=64, trickle_seconds=0.02,
            ),
            FaultSettings(rate=1.0, kinds=(SLOW,), slow_seconds=LATENCY),
        )  # fmt: skip
        await engine.api.create_widget("hung", size=1)
        for name in OTHERS:
            await engine.api.create_widget(name, size=1, message="m" * 200)

        async def others_ready() -> bool:
            return await _ready(engine, OTHERS)

        await eventually(others_ready, "the other Widgets Ready while one status hangs")

        async def hung_again() -> bool:
            return len(proxy.seen("PATCH", HUNG)) >= 2

        await eventually(hung_again, "the hung status patch cancelled and sent again")
        assert await engine.phase("hung") != "Ready"
        assert await _healthz(url) == 200, "liveness green while a patch hangs"
        proxy.aim()

        async def hung_ready() -> bool:
            return await _ready(engine, ["hung"])

        await eventually(hung_ready, "the hung Widget Ready once the server answers")

        assert {f.kind for f in proxy.injected} == {HANG, TRICKLE, SLOW}
        trickled = await engine.config("trickled")
        assert trickled is not None
        assert trickled["data"] == {"size": "1", "message": "m" * 200}, "the whole answer"
        assert await _healthz(url) == 200
        assert sorted(engine.service.calls.values()) == [1] * (len(OTHERS) + 1)
