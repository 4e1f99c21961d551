"""S11, run by path (the suite does not collect it: minutes, not seconds):

    .venv/bin/python -m pytest -q tests/integration/bypath_s11_ten_thousand.py

10,000 Widgets created at once (64 requests in flight) on the embedded API server, in
its own process, under a running engine: every one converges Ready with its ConfigMap
and one registration; the engine's process stays under `PEAK_RSS_MB` of peak resident
memory (the whole test process: the engine, its journal, and the test's own client);
and no Widget's stream holds more than `RECORDS_PER_RESOURCE` journal records.
`S11_WIDGETS` sets another count (for a quick look at the figures)."""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import time
from pathlib import Path

import pytest

from tests.integration.reconcile_support import (
    CONFIGMAPS,
    KIND,
    WIDGETS,
    eventually,
    fast_settings,
    running_engine,
)

WIDGETS_AT_ONCE = int(os.environ.get("S11_WIDGETS", "10000"))
PEAK_RSS_MB = 768
"""The bound on the test process's peak RSS (ru_maxrss), the engine inside it."""
RECORDS_PER_RESOURCE = 16
"""The bound on one Widget's journal records from its creation to Ready (each
observation, transition, step start and outcome, and its status write)."""
CONVERGE_WITHIN_S = 1800

pytestmark = [pytest.mark.timeout(CONVERGE_WITHIN_S + 300)]


async def test_ten_thousand_widgets_at_once_converge_within_memory_and_journal_bounds(
    tmp_path: Path,
) -> None:
    count = WIDGETS_AT_ONCE
    settings = fast_settings(tmp_path, max_concurrent_reconciles=16)
    started = time.monotonic()
    async with running_engine(tmp_path, settings=settings, separate_apiserver=True) as engine:
        gate = asyncio.Semaphore(64)

        async def create(n: int) -> None:
            async with gate:
                await engine.api.create_widget(f"w-{n:05d}", size=n % 10)

        await asyncio.gather(*(create(n) for n in range(count)))
        created = time.monotonic()

        async def converged() -> bool:
            ready = sum(v.state == "Ready" for v in engine.controller.snapshot())
            return ready == count

        await eventually(converged, f"{count} widgets Ready", within=CONVERGE_WITHIN_S)
        done = time.monotonic()
        _, listed = await engine.api.request("GET", WIDGETS)
        phases = {(item.get("status") or {}).get("phase") for item in listed["items"]}
        assert (len(listed["items"]), phases) == (count, {"Ready"})
        _, maps = await engine.api.request("GET", CONFIGMAPS)
        children = [m for m in maps["items"] if m["metadata"]["name"].endswith("-config")]
        assert len(children) == count
        assert len(engine.service.registered) == count
        assert set(engine.service.calls.values()) == {1}
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with sqlite3.connect(f"file:{tmp_path / 'journal.db'}?mode=ro", uri=True) as journal:
        per_stream = journal.execute(
            "SELECT COUNT(*) FROM records WHERE stream LIKE ? GROUP BY stream", (f"%/{KIND}/%",)
        ).fetchall()
        total = journal.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    journal.close()
    most = max(n for (n,) in per_stream)
    print(
        f"\nS11: {count} widgets created in {created - started:.1f} s, all Ready after "
        f"{done - started:.1f} s; peak RSS {peak_mb:.0f} MB; journal {total} records, "
        f"{total / count:.2f} per widget, at most {most} in one widget's stream"
    )
    assert len(per_stream) == count
    assert peak_mb < PEAK_RSS_MB
    assert most <= RECORDS_PER_RESOURCE
