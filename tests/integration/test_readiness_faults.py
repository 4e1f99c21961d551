"""/readyz tells the truth: it drops, naming the cause, while the journal cannot commit
(another process holds the database's write lock, H7), while the API server cannot be
reached (every connection to it reset, through the fault proxy) for longer than the
threshold, and while the
replica does not hold the Lease; it recovers when the cause clears. Real faults only:
the engine, the API server and SQLite are the real ones."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from tests.integration.reconcile_support import (
    NAMESPACE,
    eventually,
    fast_settings,
    running_engine,
)
from tests.support.fault_proxy import RESET, FaultSettings

PROBE = 0.1
UNREACHABLE_AFTER = 0.6
LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/engine-leader"


async def _readyz(url: str) -> tuple[int, str]:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)) as answer,
        ):
            return answer.status, await answer.text()
    except (aiohttp.ClientError, TimeoutError):
        return 0, ""


async def _until_readyz(url: str, status: int, body: str, what: str) -> None:
    async def answered() -> bool:
        return await _readyz(url) == (status, body)

    await eventually(answered, what, within=10.0)


async def test_readiness_drops_while_another_process_holds_the_journal_write_lock(
    tmp_path: Path,
) -> None:
    settings = fast_settings(tmp_path, readiness_probe_seconds=PROBE)
    async with running_engine(tmp_path, settings=settings) as engine:
        url = engine.controller.health_url
        assert url is not None
        await _until_readyz(url, 200, "ok\n", "ready once started")
        blocker = sqlite3.connect(tmp_path / "journal.db", isolation_level=None, timeout=0)
        try:
            blocker.execute("BEGIN IMMEDIATE")  # a second writer holds the write lock
            await _until_readyz(url, 503, "unavailable: journal\n", "not ready while blocked")
            blocker.execute("ROLLBACK")
            await _until_readyz(url, 200, "ok\n", "ready again once the lock is released")
        finally:
            blocker.close()
        await engine.api.create_widget("after", size=1)

        async def converged() -> bool:
            return await engine.phase("after") == "Ready"

        await eventually(converged, "the engine acts again once the journal commits")


async def test_readiness_drops_while_the_api_server_cannot_be_reached_past_the_threshold(
    tmp_path: Path,
) -> None:
    settings = fast_settings(
        tmp_path, readiness_probe_seconds=PROBE, api_unreachable_seconds=UNREACHABLE_AFTER
    )
    async with running_engine(tmp_path, settings=settings, fault_proxy=FaultSettings()) as engine:
        url, proxy = engine.controller.health_url, engine.proxy
        assert url is not None
        assert proxy is not None
        await _until_readyz(url, 200, "ok\n", "ready once started")
        cut = time.monotonic()
        proxy.settings = FaultSettings(rate=1.0, kinds=(RESET,))  # every connection reset
        await _until_readyz(url, 503, "unavailable: api-server\n", "not ready while cut off")
        # not before the threshold, counted from the last answer (at most a probe before)
        assert time.monotonic() - cut >= UNREACHABLE_AFTER - PROBE
        proxy.settings = FaultSettings()
        await _until_readyz(url, 200, "ok\n", "ready again once the API server answers")


async def test_readiness_drops_while_another_replica_holds_the_lease(tmp_path: Path) -> None:
    settings = fast_settings(
        tmp_path,
        readiness_probe_seconds=PROBE,
        leader_election=True,
        lease_duration_seconds=1.5,
        lease_renew_deadline_seconds=1.0,
        lease_retry_period_seconds=0.1,
    )
    async with running_engine(tmp_path, settings=settings) as engine:
        url = engine.controller.health_url
        assert url is not None
        await _until_readyz(url, 200, "ok\n", "ready once leading")
        lease = await engine.api.get(LEASE)
        assert lease is not None
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        await engine.api.merge(
            LEASE, {"spec": {"holderIdentity": "another-replica", "renewTime": now}}
        )
        await _until_readyz(url, 503, "unavailable: leader\n", "not ready while not leading")
        # the other replica never renews: its Lease expires and this one leads again
        await _until_readyz(url, 200, "ok\n", "ready again once it leads")
