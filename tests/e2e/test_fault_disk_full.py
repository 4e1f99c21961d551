"""J10: the file system under the engine's state dir fills up while it runs (a small
tmpfs mounted for the test, filled with a file until ENOSPC). A Site created meanwhile
gets no effect: its intent cannot be made durable, so nothing is called (R4). Once the
space is freed the engine goes on, and everything converges, with the history checks.

The engine's own log file lives in the state dir too: while the disk is full, its
warnings go to stderr (after one line saying the log cannot be written), which is where
the journal's "disk is full" is read from.

Needs a tmpfs mount (root with CAP_SYS_ADMIN); skipped where mounting is refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.support.crash_runs import canary, history, new_engine, wait_ready
from tests.support.engine_forks import warm_up
from tests.support.fault_harness import read_log, running_cluster
from tests.support.small_fs import fill, small_file_system
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def registered(url: str) -> set[str]:
    async with aiohttp.ClientSession() as session, session.get(url + "/registrations") as answer:
        return {item["name"] for item in (await answer.json())["items"]}


async def test_a_full_disk_stops_effects_without_a_durable_intent_and_the_engine_resumes(
    tmp_path: Path,
) -> None:
    warm_up()
    async with running_cluster(tmp_path) as cluster:
        with small_file_system(tmp_path / "engine", "3m") as small:  # the state dir
            workload = SiteWorkload(cluster.api, cluster.registry_url, seed=17, password=canary())
            await workload.create(1)
            engine = new_engine(cluster, "engine")
            assert engine.state_dir == small
            await engine.start()
            await wait_ready(engine)
            await workload.wait_converged(within=30)

            filler = small / "filler"
            await asyncio.to_thread(fill, filler)
            await workload.create(1)  # s-001, while nothing more can be written
            await asyncio.sleep(3)
            assert "default.s-001" not in await registered(cluster.registry_url)

            assert "disk is full" in engine.output()  # the journal did meet the full disk
            filler.unlink()
            assert engine.process is not None
            if engine.process.returncode is not None:
                raise AssertionError(
                    f"the engine exited ({engine.process.returncode}) on a full disk:\n"
                    + engine.output()[-3000:]
                )
            await workload.wait_converged(within=60)
            assert await engine.stop() == 0, read_log(engine.log)[-3000:]
            await history(cluster, engine, workload)
