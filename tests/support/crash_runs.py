"""Running the engine for the crash-point and storage-fault tests: one forked engine
(`tests.support.engine_forks`) per start, each start arming its own failpoint with
`kill`; a start that must die at its point, a clean start to convergence, and the
history checks with the workload's secret canary.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from engine.journal.sqlite import SqliteJournal
from tests.support.engine_forks import forked_engine
from tests.support.fault_harness import ENGINE_ENV, Cluster, EngineProcess, read_log
from tests.support.history_checks import check_history
from tests.support.workload import NAMESPACE, SiteWorkload

HEALTH = re.compile(r"health: (http://127\.0\.0\.1:\d+)/healthz")
LEADER_ENV = {
    "ENGINE_LEADER_ELECTION": "true",
    "ENGINE_LEASE_DURATION_SECONDS": "1.5",
    "ENGINE_LEASE_RENEW_DEADLINE_SECONDS": "1.0",
    "ENGINE_LEASE_RETRY_PERIOD_SECONDS": "0.2",
}
"""The test-scaled lease: 1.5 s held, renewed within 1 s, tried every 0.2 s."""

IN_TURN = (
    "effect.before_send",  # C3: intent journaled, call not sent
    "effect.after_send",  # C4: call sent, outcome not journaled
    "effect.after_record",  # C5: the handler's outcome journaled, no transition yet
    "status.before_patch",  # C6
    "status.after_patch",  # C7: the server applied the status, not journaled
)
"""The points one turn passes, in order: each start on the journal the last kill left
resumes the same work and dies at the next."""

CLEANUP = (
    "status.before_patch",  # C6: the Finalizing status, before it is sent
    "status.after_patch",  # C7: applied, not journaled
    *IN_TURN[:3],  # C3-C5 on the cleanup call (unregister)
    "finalizer.before_remove",  # C8: cleanup done, finalizer still there
    "finalizer.after_remove",  # C9: finalizer removed (the Site gone), not journaled
)
"""The points a deletion passes, in order."""

Trigger = Callable[[], Awaitable[None]]


def _arm(engine: EngineProcess, point: str | None, extra: dict[str, str] | None = None) -> None:
    env = {**ENGINE_ENV, **(extra or {})}
    if point is not None:
        env["ENGINE_FAILPOINTS"] = f"{point}=kill"
    engine.env = env


def _ready(engine: EngineProcess) -> bool:
    match = HEALTH.search(engine.output())
    if match is None:
        return False
    try:
        with urllib.request.urlopen(match.group(1) + "/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


async def wait_ready(engine: EngineProcess, *, within: float = 30) -> None:
    """Until the engine's /readyz answers 200 (caches synced); fail if it exits first."""
    deadline = time.monotonic() + within
    assert engine.process is not None
    while not await asyncio.to_thread(_ready, engine):
        assert engine.process.returncode is None, f"the engine exited:\n{engine.output()[-3000:]}"
        assert time.monotonic() < deadline, f"not ready within {within} s:\n{engine.output()}"
        await asyncio.sleep(0.05)


async def crash_at(
    engine: EngineProcess,
    point: str,
    *,
    trigger: Trigger | None = None,
    extra: dict[str, str] | None = None,
    within: float = 30,
) -> None:
    """Start `engine` with `point` armed with kill; when `trigger` is given, run it once
    the engine is ready (the point must not fire before); wait for the SIGKILL."""
    began = time.monotonic()
    _arm(engine, point, extra)
    await engine.start()
    assert engine.process is not None
    if trigger is not None:
        await wait_ready(engine)
        await trigger()
    try:
        code = await asyncio.wait_for(engine.process.wait(), within)
    except TimeoutError:
        await engine.kill()
        raise AssertionError(f"{point} never fired:\n{engine.output()[-3000:]}") from None
    assert code == -signal.SIGKILL, f"{point}: exit {code}:\n{engine.output()[-3000:]}"
    print(f"{point}: killed after {time.monotonic() - began:.1f} s")


async def run_clean(
    engine: EngineProcess, workload: SiteWorkload, *, extra: dict[str, str] | None = None
) -> None:
    """A start with nothing armed, until the workload converged; then SIGTERM (exit 0)."""
    began = time.monotonic()
    _arm(engine, None, extra)
    await engine.start()
    await wait_ready(engine)
    await workload.wait_converged(within=30)
    assert await engine.stop() == 0, read_log(engine.log)[-3000:]
    print(f"clean run: converged and stopped after {time.monotonic() - began:.1f} s")


async def history(cluster: Cluster, engine: EngineProcess, workload: SiteWorkload) -> None:
    assert workload.password is not None
    began = time.monotonic()
    figures = await check_history(
        journal=engine.journal,
        state_dir=engine.state_dir,
        outputs=[engine.log],
        registry_url=cluster.registry_url,
        workload=workload,
        canaries=[workload.password],
        replay=False,  # for time: test_replay_verify_after_kills.py replays such journals
    )
    assert figures.violations == (), "\n".join(figures.violations)
    print(f"history checks: {time.monotonic() - began:.1f} s, {figures}")


async def record_types(journal: Path, *, site: str | None = None) -> list[str]:
    """The type of every record of `journal`, in order (of the Site named `site` only,
    when given)."""
    opened = await SqliteJournal.open(journal, readonly=True)
    try:
        return [
            record.type
            async for record in opened.read_all()
            if site is None or f"/{NAMESPACE}/{site}#" in record.stream
        ]
    finally:
        await opened.close()


def new_engine(cluster: Cluster, name: str) -> EngineProcess:
    """An engine with state dir `<workdir>/<name>`, not started (each start arms a point),
    forked from the preloaded server (`tests.support.engine_forks`)."""
    engine = forked_engine(
        cluster.workdir / name, cluster.kubeconfig, cluster.registry_url, ENGINE_ENV
    )
    cluster.engines.append(engine)
    return engine


def canary() -> str:
    return f"canary{uuid.uuid4().hex[:16]}"
