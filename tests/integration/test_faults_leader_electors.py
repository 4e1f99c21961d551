"""Leader election under a fast clock (L6) and an API server restart (L9): two electors
against the embedded API server over real HTTP, each with its own client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from kubernetes_asyncio import client

from engine.apiserver.http.embedded import serve_apiserver
from engine.clock import Clock, RatedClock, SystemClock
from engine.supervisor.leader import LeaderElectionConfig, LeaderElector
from tests.support.fault_proxy import RESET, FaultSettings, serve_fault_proxy

LEASE, NAMESPACE = "engine-leader", "default"
RETRY_SECONDS = 0.1
FAST = 2.0
"""The rate of the fast replica's clock."""


@asynccontextmanager
async def elector(
    url: str, identity: str, timing: tuple[float, float], clock: Clock | None = None
) -> AsyncIterator[LeaderElector]:
    """One replica's elector (lease duration, renew deadline) running for the block."""
    configuration = client.Configuration()
    configuration.host = url
    lease, renew = timing
    config = LeaderElectionConfig(
        name=LEASE,
        namespace=NAMESPACE,
        identity=identity,
        lease_duration=lease,
        renew_deadline=renew,
        retry_period=RETRY_SECONDS,
    )
    async with client.ApiClient(configuration) as api:
        running = LeaderElector(api, config, clock=clock)
        task = asyncio.create_task(running.run())
        try:
            yield running
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def watch_leaders(
    a: LeaderElector, b: LeaderElector, *, until: float, stop_when_b_leads: bool
) -> list[float]:
    """Sample both every 5 ms until `until` (monotonic); the moments both led."""
    both: list[float] = []
    while time.monotonic() < until:
        if a.is_leader and b.is_leader:
            both.append(time.monotonic())
        if stop_when_b_leads and b.is_leader and not a.is_leader:
            break
        await asyncio.sleep(0.005)
    return both


async def test_a_standby_whose_clock_runs_twice_as_fast_never_leads_beside_a_cut_off_leader() -> (
    None
):
    # the lease duration must exceed the renew deadline by more than the clock rate (1.1 to
    # 0.5 against 2x): the fast standby's lease-duration wait, 0.55 s of real time, still
    # ends after the cut-off leader's renew deadline, 0.5 s after its last renewal began
    timing = (1.1, 0.5)
    async with (
        serve_apiserver() as server,
        serve_fault_proxy(server.url) as proxy,
        elector(proxy.url, "a", timing) as a,
    ):
        await asyncio.wait_for(a.leading.wait(), 2)
        fast = RatedClock(SystemClock(), FAST)
        async with elector(server.url, "b", timing, clock=fast) as b:
            await asyncio.sleep(3 * RETRY_SECONDS)  # b stands by, reading each renewal
            assert a.is_leader
            assert not b.is_leader
            proxy.settings = FaultSettings(rate=1.0, kinds=(RESET,))
            cut = time.monotonic()
            both = await watch_leaders(a, b, until=cut + 4, stop_when_b_leads=True)
            took_over = time.monotonic() - cut
            assert both == [], f"both led for {len(both)} samples from {both[0] - cut:.3f} s"
            assert b.is_leader, "the fast standby took over within 4 s"
            assert a.term is not None
            assert b.term is not None
            assert b.term > a.term
    # the fast standby waits a lease duration of its own clock: half of it in real time
    assert took_over >= timing[0] / FAST - RETRY_SECONDS, took_over


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def lease_transitions(url: str) -> tuple[str, int]:
    configuration = client.Configuration()
    configuration.host = url
    async with client.ApiClient(configuration) as api:
        lease = await client.CoordinationV1Api(api).read_namespaced_lease(LEASE, NAMESPACE)
    return str(lease.spec.holder_identity or ""), int(lease.spec.lease_transitions or 0)


async def test_an_api_server_restarted_under_two_replicas_costs_at_most_one_transition(
    tmp_path: Path,
) -> None:
    timing = (1.0, 0.5)
    db, port = str(tmp_path / "apiserver.db"), free_port()
    url = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as first_server:
        await first_server.enter_async_context(serve_apiserver(db=db, port=port))
        async with elector(url, "a", timing) as a:
            await asyncio.wait_for(a.leading.wait(), 3)
            async with elector(url, "b", timing) as b:
                await asyncio.sleep(2 * RETRY_SECONDS)
                _, before = await lease_transitions(url)
                assert a.is_leader
                assert not b.is_leader
                await first_server.aclose()  # the API server stops; its database stays
                await restarted(a, b, db=db, port=port, timing=timing, before=before)


async def restarted(
    a: LeaderElector,
    b: LeaderElector,
    *,
    db: str,
    port: int,
    timing: tuple[float, float],
    before: int,
) -> None:
    """The API server is down: wait past the renew deadline, start it on the same
    database and port, and check the leadership that follows."""
    url = f"http://127.0.0.1:{port}"
    down = time.monotonic()
    # down past the renew deadline: the leader stops leading, both compete on return
    both = await watch_leaders(a, b, until=down + timing[1] + 0.1, stop_when_b_leads=False)
    assert not a.is_leader, "the leader kept leading with no API server to renew on"
    async with serve_apiserver(db=db, port=port):
        # the state kept: the Lease is read back, one of the two takes it
        while not (a.is_leader or b.is_leader):
            assert time.monotonic() - down < 3 * timing[0], "nobody leads after the restart"
            await asyncio.sleep(0.01)
        settled = time.monotonic() + timing[0] + RETRY_SECONDS
        both += await watch_leaders(a, b, until=settled, stop_when_b_leads=False)
        holder, after = await lease_transitions(url)
    assert both == [], "two leaders at once"
    leader = a if a.is_leader else b
    assert holder == leader.config.identity
    assert after - before <= 1, (before, after)
