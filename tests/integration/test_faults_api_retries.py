"""B.2 A1a, A1c, A3b and A3c: the running engine, through the fault proxy, against the
embedded API server, with four Widgets each meeting one fault for a while: every status
patch of one answered 409, every child apply of the others answered 409, 429 with
`Retry-After: 0`, or 429 with no Retry-After. Each is retried with its key's backoff (a
handful of tries over the window, not a hot loop), each Widget gets Ready once the
faults stop, and nothing of the status or of the child is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    WIDGETS,
    eventually,
    running_engine,
)
from tests.support.fault_proxy import CONFLICT, THROTTLE, FaultSettings

WINDOW = 0.6
"""Seconds each path gets only its fault."""
MOST_TRIES = 15
"""At most this many requests to a faulty path in the window: the backoffs (0.01 s or
5 ms doubling, full jitter) allow about eight; a retry without backoff sends hundreds."""
FAULTS = {
    "st": (f"{WIDGETS}/st/status", CONFLICT, None),  # A1a: the status patch
    "ch": (f"{CONFIGMAPS}/ch-config", CONFLICT, None),  # A1c: the child's apply
    "zero": (f"{CONFIGMAPS}/zero-config", THROTTLE, "0"),  # A3b
    "none": (f"{CONFIGMAPS}/none-config", THROTTLE, None),  # A3c
}


async def test_409s_and_429s_without_a_wait_are_retried_with_backoff_and_lose_nothing(
    tmp_path: Path,
) -> None:
    async with running_engine(tmp_path, fault_proxy=FaultSettings()) as engine:
        proxy = engine.proxy
        assert proxy is not None
        proxy.aim(
            *(
                FaultSettings(
                    rate=1.0,
                    kinds=(kind,),
                    methods=("PATCH",),
                    path_contains=path,
                    retry_after=retry_after,
                )
                for path, kind, retry_after in FAULTS.values()
            )
        )
        for name in FAULTS:
            await engine.api.create_widget(name, size=3, message="kept")
        await asyncio.sleep(WINDOW)

        def tries() -> dict[str, int]:
            return {name: len(proxy.seen("PATCH", path)) for name, (path, _, _) in FAULTS.items()}

        async def retried() -> bool:  # on a loaded machine the window may hold fewer
            return min(tries().values()) >= 2

        await eventually(retried, "each faulty path tried again")
        counts = tries()
        proxy.aim()

        async def ready() -> bool:
            return all([await engine.phase(name) == "Ready" for name in FAULTS])

        await eventually(ready, "every Widget Ready once the faults stop")

        assert max(counts.values()) <= MOST_TRIES, counts
        assert {f.kind for f in proxy.injected} == {CONFLICT, THROTTLE}
        calls = {}
        for name in FAULTS:
            widget = await engine.widget(name)
            assert widget is not None
            status = widget["status"]
            assert status["observedGeneration"] == 1
            assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "True"
            assert widget["spec"] == {"size": 3, "message": "kept", "external": True}
            config = await engine.config(name)
            assert config is not None
            assert config["data"] == {"size": "3", "message": "kept"}
            assert config["metadata"]["ownerReferences"][0]["uid"] == widget["metadata"]["uid"]
            calls[f"{widget['metadata']['uid']}:1:register"] = 1
        assert engine.service.calls == calls
