"""The phases of the crash-point tests, one edge of the state machine each: every point
the edge passes is armed with `kill` on one start after the other (each start resuming
the work the last kill interrupted), then a clean start converges. They run on one
journal, one API server and one registry, in this order (each phase needs the state the
one before it left: Sites Ready, one to repair, one to delete).
"""

from __future__ import annotations

from kubernetes_asyncio import client

from engine.fsm import events as ev
from engine.journal.sqlite import SqliteJournal
from tests.support.crash_runs import (
    CLEANUP,
    IN_TURN,
    LEADER_ENV,
    crash_at,
    record_types,
    run_clean,
)
from tests.support.fault_harness import Cluster, EngineProcess
from tests.support.workload import NAMESPACE, SiteWorkload

COMMIT = ("journal.before_commit", "journal.after_commit")
"""C1 (inserted, not committed) and C2 (committed, not acknowledged)."""


async def first_provision(
    engine: EngineProcess, workload: SiteWorkload, *, commit: bool = True
) -> None:
    """C1-C7 on the first provision of the workload's Sites (C3-C7 without `commit`),
    then a clean start. (The journal need not hold a `StatusWritten`: the C7 start may
    apply the Ready status of every Site before it dies, and the clean start then finds
    nothing to write.)"""
    for point in (*(COMMIT if commit else ()), *IN_TURN):
        await crash_at(engine, point)
    await run_clean(engine, workload)
    assert ev.EFFECT_SUCCEEDED in await record_types(engine.journal)


async def reprovision(engine: EngineProcess, workload: SiteWorkload) -> None:
    """C3-C7 on the re-provision after a spec change made while the engine was down (C6
    and C7 stop at the Ready status of the new generation), then a clean start."""
    await workload.churn(updates=1, deletes=0)
    for point in IN_TURN:
        await crash_at(engine, point)
    await run_clean(engine, workload)


async def drift_repair(cluster: Cluster, engine: EngineProcess, workload: SiteWorkload) -> None:
    """C3-C5 on the repair of a Site whose ConfigMap is deleted behind the engine's back
    (the first point armed before the deletion), then a clean start. The repair ends
    Ready at the generation the status already holds: it writes no status, so C6 and C7
    have no patch to stop at on this edge; none is journaled."""
    drifted = min(workload.live)
    core = client.CoreV1Api(cluster.api)

    async def delete_config_map() -> None:
        await core.delete_namespaced_config_map(f"{drifted}-config", NAMESPACE)

    before = len(await record_types(engine.journal, site=drifted))
    first, *rest = IN_TURN[:3]
    await crash_at(engine, first, trigger=delete_config_map)
    for point in rest:
        await crash_at(engine, point)
    await run_clean(engine, workload)
    repair = (await record_types(engine.journal, site=drifted))[before:]
    assert ev.TRANSITION_TAKEN in repair, repair  # Ready → Provisioning → Ready
    assert ev.STATUS_WRITTEN not in repair, repair


async def cleanup(engine: EngineProcess, workload: SiteWorkload) -> None:
    """C6 and C7 on the Finalizing status of a deleted Site, C3-C5 on its cleanup call
    (unregister), C8 (cleanup done, finalizer not removed) and C9 (finalizer removed,
    not journaled), then a clean start."""
    deleted = max(workload.live)

    async def delete_site() -> None:
        await workload.delete(deleted)

    first, *rest = CLEANUP
    await crash_at(engine, first, trigger=delete_site)
    for point in rest:
        await crash_at(engine, point)
    await run_clean(engine, workload)


async def lease_taken(cluster: Cluster, engine: EngineProcess, workload: SiteWorkload) -> None:
    """C10 with leader election on: a spec change, a start killed right after it took the
    Lease; no effect runs under that term, the next start leads under a higher one and
    converges."""
    await workload.churn(updates=1, deletes=0)  # something to do under the new term
    await crash_at(engine, "lease.acquired", extra=LEADER_ENV)
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
