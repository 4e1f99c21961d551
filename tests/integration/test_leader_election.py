"""Leader election against the embedded API server over real HTTP (the L cases)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from kubernetes_asyncio import client

from engine.apiserver.http.embedded import RunningApiServer, serve_apiserver
from engine.supervisor.leader import LeaderElectionConfig, LeaderElector
from tests.support.fault_proxy import CONFLICT, RESET, FaultSettings, serve_fault_proxy

LEASE, NAMESPACE = "engine-leader", "default"
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 1.5, 1.0, 0.2


def settings(identity: str, *, release_on_cancel: bool = True) -> LeaderElectionConfig:
    return LeaderElectionConfig(
        name=LEASE,
        namespace=NAMESPACE,
        identity=identity,
        lease_duration=LEASE_SECONDS,
        renew_deadline=RENEW_SECONDS,
        retry_period=RETRY_SECONDS,
        release_on_cancel=release_on_cancel,
    )


@pytest.fixture
async def server() -> AsyncIterator[RunningApiServer]:
    async with serve_apiserver() as running:
        yield running


@asynccontextmanager
async def api_client(url: str) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = url
    async with client.ApiClient(configuration) as api:
        yield api


@asynccontextmanager
async def replica(url: str, identity: str, **options: bool) -> AsyncIterator[LeaderElector]:
    """One replica's elector, running until the block ends (then cancelled)."""
    async with api_client(url) as api:
        elector = LeaderElector(api, settings(identity, **options))
        task = asyncio.create_task(elector.run())
        try:
            yield elector
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def stop(elector: LeaderElector, task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], bool], *, within: float, what: str) -> float:
    """Wait until `check()`; return the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def read_lease(url: str) -> client.V1Lease:
    async with api_client(url) as api:
        return await client.CoordinationV1Api(api).read_namespaced_lease(LEASE, NAMESPACE)


async def test_a_single_elector_leads_and_keeps_renewing(server: RunningApiServer) -> None:
    started: list[int] = []
    async with api_client(server.url) as api:
        elector = LeaderElector(api, settings("a"), on_started_leading=started.append)
        task = asyncio.create_task(elector.run())
        await asyncio.wait_for(elector.leading.wait(), 2)
        assert elector.is_leader
        assert started == [elector.term]
        first = await read_lease(server.url)
        assert first.spec.holder_identity == "a"
        assert first.spec.lease_transitions == elector.term >= 1
        await asyncio.sleep(LEASE_SECONDS + RETRY_SECONDS)  # past one lease: renewals kept it
        later = await read_lease(server.url)
        assert elector.is_leader
        assert later.spec.renew_time > first.spec.renew_time
        assert later.spec.lease_transitions == elector.term
        await stop(elector, task)
    assert not elector.is_leader


async def test_two_electors_started_together_elect_exactly_one(server: RunningApiServer) -> None:
    async with replica(server.url, "a") as a, replica(server.url, "b") as b:
        await eventually(lambda: a.is_leader or b.is_leader, within=2, what="someone leads")
        leader = a if a.is_leader else b
        deadline = time.monotonic() + LEASE_SECONDS + 2 * RETRY_SECONDS
        while time.monotonic() < deadline:
            assert not (a.is_leader and b.is_leader), "two leaders at once"
            assert leader.is_leader, "the leader changed without a failure"
            await asyncio.sleep(0.02)
        assert (a.term is None) != (b.term is None)


@asynccontextmanager
async def first_leader(
    url: str, identity: str, **options: bool
) -> AsyncIterator[tuple[LeaderElector, asyncio.Task[None]]]:
    """An elector that leads before the block starts; the block may stop it."""
    async with api_client(url) as api:
        elector = LeaderElector(api, settings(identity, **options))
        task = asyncio.create_task(elector.run())
        try:
            await asyncio.wait_for(elector.leading.wait(), 2)
            yield elector, task
        finally:
            await stop(elector, task)


async def test_a_released_lease_passes_to_the_standby_with_a_higher_term(
    server: RunningApiServer,
) -> None:
    async with first_leader(server.url, "a") as (a, task), replica(server.url, "b") as b:
        await asyncio.sleep(2 * RETRY_SECONDS)  # b is a standby that has seen the Lease
        assert a.is_leader
        assert not b.is_leader
        await stop(a, task)  # graceful: release on cancel
        assert not a.is_leader
        handover = await eventually(lambda: b.is_leader, within=2, what="b takes over")
        assert handover < LEASE_SECONDS, "took the expiry path, not the release"
        assert a.term is not None
        assert b.term is not None
        assert b.term > a.term
        lease = await read_lease(server.url)
        assert (lease.spec.holder_identity, lease.spec.lease_transitions) == ("b", b.term)


async def test_a_crashed_leader_is_replaced_once_its_lease_expires(
    server: RunningApiServer,
) -> None:
    crashed = first_leader(server.url, "a", release_on_cancel=False)
    async with crashed as (a, task), replica(server.url, "b") as b:
        await asyncio.sleep(2 * RETRY_SECONDS)
        await stop(a, task)  # cancelled without releasing: the Lease still names a
        assert (await read_lease(server.url)).spec.holder_identity == "a"
        waited = await eventually(lambda: b.is_leader, within=4, what="b takes over")
        # b may take over only once a's last renewal is a lease duration old
        assert waited >= LEASE_SECONDS - RETRY_SECONDS - 0.05
        assert a.term is not None
        assert b.term is not None
        assert b.term > a.term


async def test_a_deleted_lease_is_acquired_again_with_a_higher_term(
    server: RunningApiServer,
) -> None:
    async with first_leader(server.url, "a") as (a, _), replica(server.url, "b") as b:
        old_term = a.term
        assert old_term is not None
        # b must have read the Lease before it goes: a standby that never saw term 1 and
        # finds no Lease starts again at term 1 (the engine feeds it the journal's term)
        await asyncio.sleep(2 * RETRY_SECONDS)
        async with api_client(server.url) as api:
            await client.CoordinationV1Api(api).delete_namespaced_lease(LEASE, NAMESPACE)

        def new_leader() -> bool:
            leader = a if a.is_leader else b if b.is_leader else None
            return leader is not None and (leader.term or 0) > old_term

        # two lease durations and two renew deadlines: slack for a loaded machine
        within = 2 * (LEASE_SECONDS + RENEW_SECONDS)
        await eventually(new_leader, within=within, what="a leader with a new term")
        assert not (a.is_leader and b.is_leader)
        leader = a if a.is_leader else b
        lease = await read_lease(server.url)
        assert lease.spec.holder_identity == leader.config.identity
        assert lease.spec.lease_transitions == leader.term


async def test_injected_conflicts_on_renewal_do_not_cost_the_leadership(
    server: RunningApiServer,
) -> None:
    conflicts = FaultSettings(rate=0.5, kinds=(CONFLICT,), methods=("PUT",), seed=7)
    async with serve_fault_proxy(server.url) as proxy, first_leader(proxy.url, "a") as (a, _):
        proxy.settings = conflicts
        stopped: list[bool] = []
        deadline = time.monotonic() + RENEW_SECONDS + 2 * RETRY_SECONDS
        while time.monotonic() < deadline:
            stopped.append(not a.is_leader)
            await asyncio.sleep(0.02)
        assert not any(stopped)
        assert len(proxy.injected) >= 2, "the renewals met conflicts"
        assert (await read_lease(server.url)).spec.holder_identity == "a"


async def test_a_leader_cut_off_from_the_api_server_stops_by_its_renew_deadline(
    server: RunningApiServer,
) -> None:
    async with (
        serve_fault_proxy(server.url) as proxy,
        first_leader(proxy.url, "a") as (a, _),
        replica(server.url, "b") as b,
    ):
        await asyncio.sleep(2 * RETRY_SECONDS)
        proxy.settings = FaultSettings(rate=1.0, kinds=(RESET,))
        cut_at = time.monotonic()
        await eventually(lambda: not a.is_leader, within=2, what="a stops leading")
        stepped_down = time.monotonic() - cut_at
        assert stepped_down <= RENEW_SECONDS + 0.1
        await eventually(lambda: b.is_leader, within=4, what="b takes over")
        assert not a.is_leader  # at the takeover, a had already stopped
        assert a.term is not None
        assert b.term is not None
        assert b.term > a.term
        assert RESET in proxy.kinds_injected()
