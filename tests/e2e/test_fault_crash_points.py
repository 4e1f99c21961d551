"""Pending (not collected by the suite: run it by path) until defect D4 is fixed: on the
re-provision after a spec change made while the engine was down, after kills at C3-C5 the
next start takes Provisioning → Ready without writing the Ready status (the journal has no
StatusWritten for the new generation, the server's status keeps the old
observedGeneration), so the armed `status.before_patch` never fires. A hand-run of the
same edge with `engine run --local` (C5 then C6) writes it; the difference is not found
yet. See docs/reliability.md.

    .venv/bin/pytest -q -p no:cacheprovider tests/pending/pending_fault_crash_points.py

The crash points (C1-C10) with SIGKILL: the engine (`engine run`, a real process
against `engine apiserver` and the example registry) is started with one failpoint armed
with `kill` (`ENGINE_FAILPOINTS=NAME=kill`), made to reach it on one edge of the state
machine, and dies there by SIGKILL, with no rollback, no `finally`, nothing flushed.
The next start arms the next point on the same journal, and so on; at the end a clean
engine converges and the history checks run over everything that happened: no
interleaved turns of one key, one recorded success per idempotency key that the registry
applied once, convergence, `engine journal check`, and no secret canary in the state
dir or the output. (`engine replay --verify` is left out here, for time:
tests/integration/test_replay_verify_after_kills.py runs it on journals these phases
wrote, kept as exports.)

One engine process per crash point, one API server, registry and journal for all of
them: the engine is forked from a server that imported it once
(`tests.support.engine_forks`), so a start costs about a second, not three.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio import client

from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from tests.support.crash_runs import (
    CLEANUP,
    IN_TURN,
    LEADER_ENV,
    canary,
    crash_at,
    history,
    new_engine,
    record_types,
    run_clean,
)
from tests.support.engine_forks import warm_up
from tests.support.fault_harness import running_cluster
from tests.support.workload import NAMESPACE, SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_kill_at_each_crash_point_in_turn_then_converge_once_per_key(
    tmp_path: Path,
) -> None:
    """Every crash point in turn on one journal, one API server and one registry:

    1. C1-C7 on the first provision of two Sites: the commit (inserted, not committed;
       committed, not acknowledged), the intent, the call, the handler's outcome, the
       status patch before it is sent and after the server applied it;
    2. C3-C7 on the re-provision after a spec change made while the engine was down;
    3. C3-C7 on a drift repair: the engine ready and idle, a child deleted behind its
       back (the first point armed before the deletion, the others resuming the repair);
    4. C6 and C7 on the Finalizing status of a deleted Site, C3-C5 on its cleanup call
       (unregister), then C8 (cleanup done, finalizer not removed) and C9 (finalizer
       removed, not journaled);
    5. C10 with leader election on: killed right after taking the Lease; no effect runs
       under that term, the next start takes the Lease under a higher one and converges.

    A clean start converges between the phases; the history checks run after phases 2
    and 5 (the second time over the whole journal).
    """
    warm_up()  # the fork server imports the engine while the API server starts
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=7, password=canary())
        await workload.create(2)
        engine = new_engine(cluster, "engine")
        # C1 (inserted, not committed), C2 (committed, not acknowledged), then C3-C7
        for point in ("journal.before_commit", "journal.after_commit", *IN_TURN):
            await crash_at(engine, point)
        await run_clean(engine, workload)
        types = await record_types(engine.journal)
        assert ev.EFFECT_SUCCEEDED in types
        assert ev.STATUS_WRITTEN in types

        await workload.churn(updates=1, deletes=0)  # generation 2 while the engine is down
        for point in IN_TURN:  # C3-C7 on the re-provision, each start resuming it
            await crash_at(engine, point)
        await run_clean(engine, workload)
        await history(cluster, engine, workload)

        drifted, deleted = sorted(workload.live)
        core = client.CoreV1Api(cluster.api)

        async def delete_config_map() -> None:
            await core.delete_namespaced_config_map(f"{drifted}-config", NAMESPACE)

        first, *rest = IN_TURN  # C3-C7 on the drift repair
        await crash_at(engine, first, trigger=delete_config_map)
        for point in rest:
            await crash_at(engine, point)
        await run_clean(engine, workload)

        async def delete_site() -> None:
            await workload.delete(deleted)

        first, *rest = CLEANUP
        await crash_at(engine, first, trigger=delete_site)
        for point in rest:
            await crash_at(engine, point)
        await run_clean(engine, workload)

        await workload.churn(updates=1, deletes=0)  # something to do under the new term
        await crash_at(engine, "lease.acquired", extra=LEADER_ENV)  # C10
        leases = client.CoordinationV1Api(cluster.api)
        lease = await leases.read_namespaced_lease("engine-leader", "default")
        killed_term = lease.spec.lease_transitions
        records_before = len(await record_types(engine.journal))
        await run_clean(engine, workload, extra=LEADER_ENV)
        opened = await SqliteJournal.open(engine.journal, readonly=True)
        try:
            records = [record async for record in opened.read_all()][records_before:]
        finally:
            await opened.close()
        elected = [int(r.data["term"]) for r in records if r.type == ev.LEADER_ELECTED]
        started = [r.data.get("term") for r in records if r.type == ev.EFFECT_STARTED]
        assert elected
        assert min(elected) > killed_term, (killed_term, elected)
        assert started
        assert all(term is not None and term > killed_term for term in started), started
        await history(cluster, engine, workload)
