"""Crash points aimed at one edge of the state machine.

The commit points C1 and C2 (`commit_kills_then_converge`): a start of
the engine with `journal.before_commit:TransitionTaken=kill` dies inside the commit of
the edge's transition (inserted, not committed), the next with
`journal.after_commit:EffectSucceeded=kill` dies right after the commit of the first
success of the edge's effect (committed, the caller never told), and a clean start
converges. Each start has only that edge's work to do, so the first such record it
commits is the edge's.

What the phase asserts beyond the history checks: the killed C1 batch is absent (no
transition of that start in the journal, R1); the C2 success is present and its key is
never started again (the restart treats it as done, R3).

The migration point C12 (`killed_creating_the_journal`): the engine's first start on
an empty state dir dies inside the creation of its journal, the migration from schema
version 0; the file holds no schema then, and the next start creates it.

The status points C6 and C7 on a drift repair that fails first
(`failing_drift_repair`): the engine talks to the API server through the fault proxy,
which answers 500 to every write of the drifted Site's ConfigMap, so the repair fails
and writes the Provisioning status with its error, where the kills stop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from kubernetes_asyncio import client

from engine.fsm import events as ev
from engine.journal import Record
from engine.journal.sqlite import SqliteJournal
from tests.support.crash_runs import crash_at, run_clean
from tests.support.fault_harness import Cluster, EngineProcess
from tests.support.fault_proxy import SERVER_ERROR, FaultSettings, serve_fault_proxy
from tests.support.workload import GROUP, NAMESPACE, PLURAL, VERSION, SiteWorkload

INSIDE_THE_COMMIT = "journal.before_commit:TransitionTaken"
"""C1 on an edge: the batch holding the edge's first transition, inserted, not committed."""
AFTER_THE_COMMIT = "journal.after_commit:EffectSucceeded"
"""C2 on an edge: the batch holding its effect's first success, committed, not answered."""

Trigger = Callable[[], Awaitable[None]]


async def _records(journal: Path) -> list[Record]:
    opened = await SqliteJournal.open(journal, readonly=True)
    try:
        return [record async for record in opened.read_all()]
    finally:
        await opened.close()


async def killed_creating_the_journal(engine: EngineProcess) -> None:
    """C12: the first start dies inside the migration from version 0; one transaction,
    so the file holds no table and no application id (the old schema, version 0), which
    the next start migrates (every later phase runs on that journal)."""
    assert not engine.journal.exists()
    await crash_at(engine, "migration.before_commit")
    connection = sqlite3.connect(f"file:{engine.journal}?mode=ro", uri=True)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    finally:
        connection.close()
    assert (tables, application_id) == ([], 0)


async def commit_kills_then_converge(
    engine: EngineProcess, workload: SiteWorkload, *, trigger: Trigger | None = None
) -> None:
    """C1 then C2 on the edge the work pending now (or `trigger`, run once the first
    start is ready) takes; then a clean start to convergence."""
    before = len(await _records(engine.journal))
    await crash_at(engine, INSIDE_THE_COMMIT, trigger=trigger)
    after_c1 = (await _records(engine.journal))[before:]
    assert ev.TRANSITION_TAKEN not in [r.type for r in after_c1], after_c1  # not committed

    mark = before + len(after_c1)
    await crash_at(engine, AFTER_THE_COMMIT)
    after_c2 = (await _records(engine.journal))[mark:]
    done = {str(r.data["key"]) for r in after_c2 if r.type == ev.EFFECT_SUCCEEDED}
    assert done, [r.type for r in after_c2]  # the killed commit's success is there

    mark += len(after_c2)
    await run_clean(engine, workload)
    restarted = [
        r.data["key"]
        for r in (await _records(engine.journal))[mark:]
        if r.type == ev.EFFECT_STARTED and r.data["key"] in done
    ]
    assert restarted == [], f"a success committed at the kill was started again: {restarted}"


async def on_the_spec_change(engine: EngineProcess, workload: SiteWorkload) -> None:
    """C1b and C2b: the re-provision of one Site after a spec change made while the
    engine was down."""
    await workload.churn(updates=1, deletes=0)
    await commit_kills_then_converge(engine, workload)


async def on_the_drift_repair(
    cluster: Cluster, engine: EngineProcess, workload: SiteWorkload
) -> None:
    """C1c and C2c: the repair of a Site whose ConfigMap is deleted behind the engine's
    back once the first start is ready."""
    drifted = min(workload.live)
    core = client.CoreV1Api(cluster.api)

    async def delete_config_map() -> None:
        await core.delete_namespaced_config_map(f"{drifted}-config", NAMESPACE)

    await commit_kills_then_converge(engine, workload, trigger=delete_config_map)


async def on_the_cleanup(engine: EngineProcess, workload: SiteWorkload) -> None:
    """C1d and C2d: the cleanup of a Site deleted once the first start is ready (its
    transition to Finalizing, then the success of its unregister call)."""
    deleted = max(workload.live)

    async def delete_site() -> None:
        await workload.delete(deleted)

    await commit_kills_then_converge(engine, workload, trigger=delete_site)


async def failing_drift_repair(
    cluster: Cluster, engine: EngineProcess, workload: SiteWorkload
) -> None:
    """C6c and C7c: a Site's ConfigMap is deleted behind the engine's back while every
    write of it fails with 500, so the repair fails and writes the Provisioning status
    with its error; one start dies before that patch (C6), the next after the server
    applied it (C7); with the faults off a clean start converges (the status Ready at
    its generation again)."""
    drifted = min(workload.live)
    core = client.CoreV1Api(cluster.api)
    custom = client.CustomObjectsApi(cluster.api)
    failing = FaultSettings(
        rate=1.0, kinds=(SERVER_ERROR,), methods=("PATCH", "PUT", "POST"),
        path_contains=f"/configmaps/{drifted}-config",
    )  # fmt: skip

    async def status() -> dict[str, object]:
        site = await custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, drifted)
        return dict(site.get("status") or {})

    async def break_the_child() -> None:
        proxy.settings = failing
        await core.delete_namespaced_config_map(f"{drifted}-config", NAMESPACE)

    direct = engine.kubeconfig
    async with serve_fault_proxy(cluster.apiserver_url) as proxy:
        engine.kubeconfig = cluster.kubeconfig_for(proxy.url, "kubeconfig-proxy")
        try:
            ready = await status()
            assert ready.get("phase") == "Ready", ready
            await crash_at(engine, "status.before_patch", trigger=break_the_child)
            assert await status() == ready  # C6: the patch was never sent
            await crash_at(engine, "status.after_patch")
            failed = await status()  # C7: applied, not journaled
            assert failed.get("phase") == "Provisioning", failed
            assert failed.get("observedGeneration") == ready.get("observedGeneration")
            proxy.settings = FaultSettings()
            await run_clean(engine, workload)
        finally:
            engine.kubeconfig = direct
    repaired = await status()
    assert repaired.get("phase") == "Ready", repaired
