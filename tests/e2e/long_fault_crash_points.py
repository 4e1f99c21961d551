"""Every crash point in turn, on every edge (not collected by the suite, for its time:
run it by path; about a minute):

    .venv/bin/pytest -q -p no:cacheprovider tests/e2e/long_fault_crash_points.py

1. C12 (the first start killed inside its journal's creation), C1-C7 on the first
provision (the commit points C1 and C2 too), and 2. C3-C7 on the re-provision, then C1
and C2 aimed at a second re-provision's own records, as in `test_fault_crash_points.py`
(which the suite runs); then, on the same journal, API server and registry:

3. C3-C5 on a drift repair: the engine ready and idle, a child deleted behind its back
   (the first point armed before the deletion, the others resuming the repair); the
   repair ends Ready at the generation the status already holds, so it writes no status
   (C6 and C7 have no patch to stop at on this edge) and none is journaled; then C1 and
   C2 aimed at a second repair's transition and first success; then C6 and C7 on a
   third repair that fails first (every write of the child answered 500 by the fault
   proxy), at the Provisioning status it writes with its error;
4. C6 and C7 on the Finalizing status of a deleted Site, C3-C5 on its cleanup call
   (unregister), then C8 (cleanup done, finalizer not removed) and C9 (finalizer
   removed, not journaled); then C1 and C2 aimed at a second deleted Site's transition
   to Finalizing and the success of its unregister call;
5. C10 with leader election on: killed right after taking the Lease; no effect runs
   under that term, the next start takes the Lease under a higher one and converges.

A clean start converges after each phase; the history checks run after phases 2 and 5
(the second time over the whole journal).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crash_edge_phases import (
    failing_drift_repair,
    killed_creating_the_journal,
    on_the_cleanup,
    on_the_drift_repair,
    on_the_spec_change,
)
from tests.support.crash_phases import (
    cleanup,
    drift_repair,
    first_provision,
    lease_taken,
    reprovision,
)
from tests.support.crash_runs import canary, history, new_engine
from tests.support.engine_forks import warm_up
from tests.support.fault_harness import running_cluster
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def test_kill_at_each_crash_point_in_turn_then_converge_once_per_key(
    tmp_path: Path,
) -> None:
    warm_up()  # the fork server imports the engine while the API server starts
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=7, password=canary())
        await workload.create(3)  # two are deleted in phase 4, one is left for phase 5
        engine = new_engine(cluster, "engine")
        await killed_creating_the_journal(engine)
        await first_provision(engine, workload)
        await reprovision(engine, workload)
        await on_the_spec_change(engine, workload)
        await history(cluster, engine, workload)
        await drift_repair(cluster, engine, workload)
        await on_the_drift_repair(cluster, engine, workload)
        await failing_drift_repair(cluster, engine, workload)
        await cleanup(engine, workload)
        await on_the_cleanup(engine, workload)
        await lease_taken(cluster, engine, workload)
        await history(cluster, engine, workload)
