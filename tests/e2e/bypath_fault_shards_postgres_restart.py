"""PostgreSQL stopped and started again under three sharded replicas (each its own
`engine run` process on one journal in a cluster of the test's own), with creates,
spec updates and deletes arriving while it is down:

- every replica keeps running (none exits) and the fleet converges after the restart;
- no effect runs without its durable intent: every call the shard target applied has
  its `EffectStarted` in the journal, and exactly one recorded success per effect key;
- exactly one applied call per key at the target, each with its journaled success;
- the journal's chain verifies gap-free across the restart.

Run it by path (the suite does not collect it: `initdb` and three replicas take
30-40 s on the 2-core machine):

    .venv/bin/pytest -q -p no:cacheprovider tests/e2e/bypath_fault_shards_postgres_restart.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.bench.shard_fleet import FleetTimings, running_fleet
from engine.fsm import events as ev
from engine.journal.location import open_journal
from tests.e2e.test_fault_shards import once_per_key
from tests.support.throwaway_postgres import throwaway_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

TIMINGS = FleetTimings(
    shards=6, lease_duration=2.0, renew_deadline=1.5, retry_period=0.4, workers=8
)
SETTLE = 60.0
DOWN_S = 4.0


async def started_keys(url: str) -> set[str]:
    """The idempotency keys of every `EffectStarted` in the journal at `url`."""
    journal = await open_journal(url, readonly=True)
    found: set[str] = set()
    try:
        async for record in journal.read_all():
            if record.type == ev.EFFECT_STARTED:
                found.add(str(record.data.get("key")))
        assert await journal.verify() > 0
    finally:
        await journal.close()
    return found


async def test_a_postgres_restart_under_three_replicas_loses_nothing(tmp_path: Path) -> None:
    with throwaway_cluster() as cluster:
        async with running_fleet(tmp_path, cluster.url, TIMINGS, latency=0.05) as fleet:
            replicas = [await fleet.start(name) for name in ("a", "b", "c")]
            await asyncio.gather(*(r.wait_synced() for r in replicas))
            live = {f"w-{i:02d}" for i in range(12)}
            await fleet.create(sorted(live))
            await fleet.wait_converged(live, within=SETTLE)

            # work arrives, then the server goes down under it, and more arrives while
            # it is down: updates, deletes and creates
            for index, name in enumerate(sorted(live)[:4]):
                await fleet.update(name, 2 + index)
            await asyncio.to_thread(cluster.stop)
            for name in sorted(live)[4:7]:
                await fleet.delete(name)
                live.discard(name)
            fresh = {f"x-{i:02d}" for i in range(5)}
            await fleet.create(sorted(fresh))
            live |= fresh
            await asyncio.sleep(DOWN_S)
            assert all(r.running for r in replicas), [r.output()[-2000:] for r in replicas]
            await asyncio.to_thread(cluster.start)

            await fleet.wait_converged(live, within=SETTLE)
            assert all(r.running for r in replicas), "a replica exited across the restart"

            applied = await once_per_key(fleet)
            intents = await started_keys(fleet.journal_url)
            assert set(applied) <= intents, set(applied) - intents
