"""Two engine replicas on one API server with leader election: only the leader acts;
after the leader is SIGKILLed the standby acts within the lease duration + 5 s, under a
higher fencing term, and the registry's log shows no effect accepted under a stale
term (R10, L1); a Site the old leader registered and that is deleted after the failover
is unregistered by the new leader (R9).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.fault_harness import Cluster, EngineProcess, read_log, running_cluster
from tests.support.history import (
    ACCEPTED,
    JournalEffects,
    RegistryLog,
    accepted_under_stale_term,
    applied_more_than_once,
    applied_without_success,
    journal_check,
    key_reused_for_another_request,
    succeeded_more_than_once,
    successes_without_target_call,
)
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED = 11
LEASE_DURATION = 1.5
CONNECTED = "health:"
"""What `engine run` prints once its caches are synced (its journal is open by then)."""
LEADER_ENV = {
    "ENGINE_LEADER_ELECTION": "true",
    "ENGINE_LEASE_DURATION_SECONDS": str(LEASE_DURATION),
    "ENGINE_LEASE_RENEW_DEADLINE_SECONDS": "1.0",
    "ENGINE_LEASE_RETRY_PERIOD_SECONDS": "0.2",
}


async def leader_and_standby(
    replicas: list[EngineProcess],
) -> tuple[EngineProcess, EngineProcess, int]:
    """Which replica has been elected (journaled `LeaderElected`) and acted, and its term;
    the other must have done neither (read once both are running)."""
    deadline = time.monotonic() + 20
    while not all(CONNECTED in replica.output() for replica in replicas):
        assert time.monotonic() < deadline, [read_log(r.log)[-2000:] for r in replicas]
        await asyncio.sleep(0.05)
    effects = [await JournalEffects.read(replica.journal) for replica in replicas]
    acting = [i for i, e in enumerate(effects) if e.attempts or e.elected_terms]
    assert len(acting) == 1, [(e.path, len(e.attempts), e.elected_terms) for e in effects]
    [leader] = acting
    term = max(effects[leader].elected_terms)
    assert {t for _, t in effects[leader].attempts} == {term}, "the leader acted under its term"
    return replicas[leader], replicas[1 - leader], term


async def first_call_above(cluster: Cluster, term: int, *, within: float) -> dict[str, object]:
    """The first call the registry accepted under a term above `term`."""
    deadline = time.monotonic() + within
    while True:
        log = await RegistryLog.fetch(cluster.registry_url)
        later = [c for c in log.calls if c["outcome"] in ACCEPTED and c["term"] > term]
        if later:
            return later[0]
        assert time.monotonic() < deadline, f"no call above term {term} within {within} s"
        await asyncio.sleep(0.05)


async def test_only_the_leader_acts_and_the_standby_takes_over_after_a_kill(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=SEED)
        await workload.create(10)
        replicas = [
            await cluster.start_engine(name, env=LEADER_ENV) for name in ("engine-a", "engine-b")
        ]
        await workload.wait_converged(within=30)
        leader, standby, old_term = await leader_and_standby(replicas)

        await leader.kill()
        killed_at = time.time()
        await workload.create(5)
        await workload.churn(updates=3, deletes=0)
        first = await first_call_above(cluster, old_term, within=LEASE_DURATION + 10)
        took_over_in = float(first["at"]) - killed_at  # type: ignore[arg-type]
        converged_in = await workload.wait_converged(within=30)
        assert await standby.stop() == 0, read_log(standby.log)[-3000:]
        log = await RegistryLog.fetch(cluster.registry_url)

    assert took_over_in <= LEASE_DURATION + 5, took_over_in
    new_term = int(first["term"])  # type: ignore[call-overload]
    assert accepted_under_stale_term(log) == []
    accepted = [c for c in log.calls if c["outcome"] in ACCEPTED]
    assert {c["term"] for c in accepted if c["at"] < killed_at} == {old_term}
    assert {c["term"] for c in accepted if c["at"] > killed_at} == {new_term}
    journals = [await JournalEffects.read(r.journal) for r in (leader, standby)]
    old, new = journals
    assert {term for _, term in old.attempts} == {old_term}
    assert {term for _, term in new.attempts} == {new_term}, "the standby acted under one term"
    assert min(at for at, _ in new.attempts) >= killed_at, "the standby acted before the kill"
    assert applied_more_than_once(log) == []
    assert key_reused_for_another_request(log) == []
    assert succeeded_more_than_once(journals) == []
    assert successes_without_target_call(journals, log, steps=("register", "unregister")) == []
    assert applied_without_success(journals, log) == []
    for replica in (leader, standby):
        code, out = await journal_check(replica.journal)
        assert code == 0, out
    print(
        f"terms {old_term} -> {new_term}; standby's first effect {took_over_in:.2f} s after "
        f"the kill; converged {converged_in:.1f} s after; calls={len(log.calls)} "
        f"total {time.monotonic() - began:.1f} s"
    )


async def test_a_site_deleted_after_a_failover_is_unregistered_by_the_new_leader(
    tmp_path: Path,
) -> None:
    async with running_cluster(tmp_path) as cluster:
        workload = SiteWorkload(cluster.api, cluster.registry_url, seed=SEED)
        await workload.create(4)
        replicas = [
            await cluster.start_engine(name, env=LEADER_ENV) for name in ("engine-a", "engine-b")
        ]
        await workload.wait_converged(within=30)
        leader, standby, _ = await leader_and_standby(replicas)
        await leader.kill()
        await workload.churn(updates=0, deletes=2)
        await sites_gone(workload, within=LEASE_DURATION + 15)
        # the new leader knew the live Sites only from its own watch: it re-drives them
        # (same keys, answered from the registry's records) before they read Ready again
        await workload.wait_converged(within=30)
        assert await standby.stop() == 0, read_log(standby.log)[-3000:]


async def sites_gone(workload: SiteWorkload, *, within: float) -> None:
    """Wait until none of the deleted Sites is left in the API server (finalizer removed)."""
    deadline = time.monotonic() + within
    left = [f"{name}: deleted but still present" for name in workload.deleted]
    while set(left) & set(await workload.divergences()):
        assert time.monotonic() < deadline, f"the deleted Sites are not gone within {within} s"
        await asyncio.sleep(0.1)
