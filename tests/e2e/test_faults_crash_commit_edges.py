"""C1 and C2 aimed at the spec-change edge, with SIGKILL: the real engine (`engine run`
against `engine apiserver` and the example registry) converges two Sites, then a spec
change is made while it is down, and the next start dies inside the commit of the
re-provision's transition (`journal.before_commit:TransitionTaken=kill`), the one after
it right after the commit of the re-provision's first success
(`journal.after_commit:EffectSucceeded=kill`); a clean start converges and the history
checks pass (one success per key, the registry applied each once, `engine journal
check`, no canary). The drift-repair and cleanup edges (C1c, C1d, C2c, C2d) run the same
phase in `long_fault_crash_points.py`, by path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crash_edge_phases import on_the_spec_change
from tests.support.crash_runs import canary, history, new_engine, run_clean
from tests.support.engine_forks import warm_up
from tests.support.fault_harness import running_cluster
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_kills_inside_and_after_the_commit_of_a_reprovision_converge_once_per_key(
    tmp_path: Path,
) -> None:
    warm_up()  # the fork server imports the engine while the API server starts
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=7, password=canary())
        await workload.create(2)
        engine = new_engine(cluster, "engine")
        await run_clean(engine, workload)
        await on_the_spec_change(engine, workload)
        await history(cluster, engine, workload)
