"""The crash points with SIGKILL on the two provision edges (C3-C7 on the first
provision and on the re-provision after a spec change): the engine (`engine run`, a
real process against `engine apiserver` and the example registry) is started with one
failpoint armed with `kill` (`ENGINE_FAILPOINTS=NAME=kill`), made to reach it, and dies
there by SIGKILL, with no rollback, no `finally`, nothing flushed. The next start arms
the next point on the same journal, and so on; a clean engine converges after each edge,
and the history checks run over everything that happened: no interleaved turns of one
key, one recorded success per idempotency key that the registry applied once,
convergence (every Site Ready at its generation: the status of the re-provision is
written after its kills), `engine journal check`, and no secret canary in the state dir
or the output. (`engine replay --verify` is left out here, for time:
tests/integration/test_replay_verify_after_kills.py runs it on journals these phases
wrote, kept as exports.)

The commit points (C1, C2: `test_fault_commit_kill.py` holds them in the suite) and the
other edges (a drift repair, the cleanup of a deleted Site, a Lease just taken: C3-C10)
run in `long_fault_crash_points.py` beside this file, by path (the suite's time):

    .venv/bin/pytest -q -p no:cacheprovider tests/e2e/long_fault_crash_points.py

One engine process per crash point, one API server, registry and journal for all of
them: the engine is forked from a server that imported it once
(`tests.support.engine_forks`), so a start costs about a second, not three.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.crash_edge_phases import killed_creating_the_journal, on_the_spec_change
from tests.support.crash_phases import first_provision, reprovision
from tests.support.crash_runs import canary, history, new_engine
from tests.support.engine_forks import warm_up
from tests.support.fault_harness import running_cluster
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_kill_at_each_crash_point_of_both_provision_edges_then_converge_once_per_key(
    tmp_path: Path,
) -> None:
    """C12 (the first start killed inside its journal's creation), C3-C7 on the first
    provision of two Sites, and on the re-provision of one of them after a spec change
    made while the engine was down, then C1 and C2 aimed at a second re-provision's
    records; a clean start converges after each; then the history checks."""
    warm_up()  # the fork server imports the engine while the API server starts
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=7, password=canary())
        await workload.create(2)
        engine = new_engine(cluster, "engine")
        await killed_creating_the_journal(engine)
        await first_provision(engine, workload, commit=False)
        await reprovision(engine, workload)
        await on_the_spec_change(engine, workload)
        await history(cluster, engine, workload)
