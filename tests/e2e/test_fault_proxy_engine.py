"""The engine behind a fault-injecting proxy to the API server during a Site workload:
with 409s, 429s with Retry-After, 500s, connection resets, cut watch streams and slow
answers on 10% of the requests, everything converges, no child is duplicated and no
effect key is applied twice (R5, R8, R12); and a 429's Retry-After is a lower bound on
the next request for the same object (R7).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.fault_harness import Cluster, read_log, running_cluster
from tests.support.fault_proxy import (
    FAULT_KINDS,
    THROTTLE,
    FaultProxy,
    FaultSettings,
    serve_fault_proxy,
)
from tests.support.history import (
    JournalEffects,
    RegistryLog,
    accepted_under_stale_term,
    applied_more_than_once,
    applied_without_success,
    journal_check,
    key_reused_for_another_request,
    retry_after_ignored,
    succeeded_more_than_once,
    successes_without_target_call,
)
from tests.support.workload import SiteWorkload

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED = 7
ALL_FAULTS = FaultSettings(
    rate=0.1, seed=SEED, retry_after=1, slow_seconds=0.5, cut_after_lines=2, watch_rate=0.3
)
"""10% of the requests get a fault; a watch gets cut more often (there are few watches)."""
THROTTLING = FaultSettings(rate=0.1, seed=SEED, kinds=(THROTTLE,), retry_after=1)


async def run_workload(
    cluster: Cluster, proxy: FaultProxy, *, sites: int, rounds: int
) -> tuple[SiteWorkload, float, RegistryLog, JournalEffects]:
    """One engine through `proxy`: create `sites`, change some every 2 s for `rounds`,
    wait for convergence, stop the engine; what the checkers need."""
    workload = SiteWorkload(cluster.api, cluster.registry_url, seed=SEED)
    await workload.create(sites)
    engine = await cluster.start_engine(
        "engine-0", kubeconfig=cluster.kubeconfig_for(proxy.url, "kubeconfig-proxy")
    )
    for _ in range(rounds):
        await asyncio.sleep(2.0)
        await workload.churn(updates=3, deletes=1)
    converged_in = await workload.wait_converged(within=60)
    assert await engine.stop() == 0, read_log(engine.log)[-3000:]
    assert "Traceback" not in read_log(engine.log)
    code, out = await journal_check(engine.journal)
    assert code == 0, out
    log = await RegistryLog.fetch(cluster.registry_url)
    return workload, converged_in, log, await JournalEffects.read(engine.journal)


async def test_engine_behind_a_faulty_proxy_converges_with_no_duplicate_child_or_effect(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    async with (
        running_cluster(tmp_path) as cluster,
        serve_fault_proxy(cluster.apiserver_url, ALL_FAULTS) as proxy,
    ):
        workload, converged_in, log, effects = await run_workload(
            cluster, proxy, sites=30, rounds=5
        )
    # children exactly once per live Site: checked by the convergence itself
    assert applied_more_than_once(log) == []
    assert key_reused_for_another_request(log) == []
    assert accepted_under_stale_term(log) == []
    assert succeeded_more_than_once([effects]) == []
    assert successes_without_target_call([effects], log, steps=("register", "unregister")) == []
    assert applied_without_success([effects], log) == []
    assert proxy.kinds_injected() == set(FAULT_KINDS), proxy.kinds_injected()
    counts = {kind: sum(f.kind == kind for f in proxy.injected) for kind in FAULT_KINDS}
    print(
        f"requests={len(proxy.requests)} faults={counts} registry keys={len(log.applied)} "
        f"journal keys={len(effects.succeeded)} live={len(workload.live)} "
        f"converged {converged_in:.1f} s after the last change, "
        f"total {time.monotonic() - began:.1f} s"
    )


async def test_engine_waits_at_least_retry_after_before_the_next_request_for_an_object(
    tmp_path: Path,
) -> None:
    async with (
        running_cluster(tmp_path) as cluster,
        serve_fault_proxy(cluster.apiserver_url, THROTTLING) as proxy,
    ):
        await run_workload(cluster, proxy, sites=12, rounds=2)
    throttled = [r for r in proxy.requests if r.fault == THROTTLE]
    assert throttled, "the scenario should throttle some requests"
    assert retry_after_ignored(proxy.requests) == []
