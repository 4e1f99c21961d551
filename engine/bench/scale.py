"""`engine bench scale`: sharded replicas (each its own `engine run` process) on one
PostgreSQL journal and the embedded API server, reconciling Chores whose provision makes
one call of `--effect-ms` to the shard target.

Measured, each replica count in a fresh schema and a fresh API server:
- `throughput_N`: resources brought to Ready per second with N replicas (N = 1, 2, 3),
  from the first create to the last Ready; `scaling_3 = throughput_3 / throughput_1`;
- `takeover_s`: with three replicas idle, one is SIGKILLed; the seconds until every shard
  it held has been acquired (journaled) by another;
- the rolling restart: with three replicas reconciling, each is stopped (SIGTERM) and
  started again in turn; `rolling_missed` resources not Ready at the end and
  `rolling_max_pause_s`, the longest gap between two first calls at the target while
  work was left.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.bench.journal_postgres import fresh_schema
from engine.bench.shard_fleet import Fleet, FleetError, FleetTimings, running_fleet
from engine.journal.location import open_journal
from engine.runtime.sharding.coordinator import SHARD_ACQUIRED, SHARD_RELEASED


class ScaleBenchError(Exception):
    """The benchmark could not run (the message names the part)."""


@dataclass(frozen=True)
class ScaleFigures:
    resources: int
    effect_ms: float
    shards: int
    lease_duration_s: float
    throughput_1: float
    throughput_2: float
    throughput_3: float
    scaling_3: float
    takeover_s: float
    rolling_resources: int
    rolling_missed: int
    rolling_max_pause_s: float
    rolling_s: float

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def describe(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in asdict(self).items())


async def _holders(fleet: Fleet) -> dict[str, str]:
    """shard → holder of its last journaled acquisition ('' after a release)."""
    journal = await open_journal(fleet.journal_url, readonly=True)
    held: dict[str, str] = {}
    try:
        async for record in journal.read_all():
            if record.type == SHARD_ACQUIRED:
                held[str(record.data["shard"])] = str(record.data["holder"])
            elif record.type == SHARD_RELEASED:
                held[str(record.data["shard"])] = ""
    finally:
        await journal.close()
    return held


async def _settled(fleet: Fleet, replicas: int, *, within: float) -> dict[str, str]:
    """Wait until every shard is held and by `replicas` distinct members, twice in a row."""
    deadline, last = time.monotonic() + within, None
    while time.monotonic() < deadline:
        held = await _holders(fleet)
        good = len(held) == fleet.timings.shards and all(held.values())
        good = good and len(set(held.values())) == replicas
        if good and held == last:
            return held
        last = held if good else None
        await asyncio.sleep(fleet.timings.retry_period * 2)
    raise ScaleBenchError(f"the shards did not settle over {replicas} replicas in {within:g}s")


async def _throughput(
    url: str, scratch: Path, timings: FleetTimings, *, replicas: int, resources: int, latency: float
) -> float:
    async with (
        fresh_schema(url) as journal_url,
        running_fleet(scratch, journal_url, timings, latency=latency) as fleet,
    ):
        started = [await fleet.start(f"r{i}") for i in range(replicas)]
        await asyncio.gather(*(r.wait_synced() for r in started))
        await _settled(fleet, replicas, within=60)
        names = {f"c-{i:05d}" for i in range(resources)}
        began = time.monotonic()
        await fleet.create(sorted(names))
        await fleet.wait_converged(names, within=120.0 + resources * 2.0)
        return resources / (time.monotonic() - began)


async def _takeover(url: str, scratch: Path, timings: FleetTimings) -> float:
    async with (
        fresh_schema(url) as journal_url,
        running_fleet(scratch, journal_url, timings) as fleet,
    ):
        started = [await fleet.start(f"r{i}") for i in range(3)]
        await asyncio.gather(*(r.wait_synced() for r in started))
        held = await _settled(fleet, 3, within=60)
        victim = fleet.replicas["r0"]
        identities = set(held.values())
        killed_at = time.monotonic()
        await victim.kill()
        # the victim's identity: the holder that stops appearing once its shards move
        while time.monotonic() - killed_at < 60:
            now = await _holders(fleet)
            remaining = set(now.values())
            if len(remaining & identities) == 2 and all(now.values()):
                return time.monotonic() - killed_at
            await asyncio.sleep(0.1)
        raise ScaleBenchError("the dead member's shards were not taken over within 60 s")


async def _rolling(
    url: str, scratch: Path, timings: FleetTimings, *, resources: int, latency: float
) -> tuple[int, float, float]:
    async with (
        fresh_schema(url) as journal_url,
        running_fleet(scratch, journal_url, timings, latency=latency) as fleet,
    ):
        names = [f"r{i}" for i in range(3)]
        started = [await fleet.start(name) for name in names]
        await asyncio.gather(*(r.wait_synced() for r in started))
        await _settled(fleet, 3, within=60)
        chores = {f"c-{i:05d}" for i in range(resources)}
        began = time.monotonic()
        creating = asyncio.create_task(fleet.create(sorted(chores), concurrency=4))
        restarted = 0
        for name in names:
            await fleet.replicas[name].stop()
            replica = await fleet.start(name)
            try:
                await replica.wait_synced(within=120)
                restarted += 1
            except FleetError as failed:
                print(f"rolling restart: {failed}", file=sys.stderr)
        await creating
        missed = 0
        try:
            await fleet.wait_converged(chores, within=120.0 + resources * 2.0)
        except FleetError:
            missed = len(chores) - await fleet.ready_count()
        took = time.monotonic() - began
        firsts = sorted(fleet.target.state.first_at.values())
        gaps = [b - a for a, b in itertools.pairwise(firsts)]
        if restarted < len(names):
            raise ScaleBenchError(f"only {restarted} of {len(names)} replicas came back")
        return missed, max(gaps, default=0.0), took


async def run_bench(
    url: str,
    scratch: Path,
    *,
    resources: int,
    effect_ms: float,
    timings: FleetTimings,
) -> ScaleFigures:
    """Every figure above, the parts one after another. Errors: `ScaleBenchError`,
    `FleetError`."""
    latency = effect_ms / 1000
    rates = []
    for replicas in (1, 2, 3):
        rates.append(
            await _throughput(
                url,
                scratch / f"throughput-{replicas}",
                timings,
                replicas=replicas,
                resources=resources,
                latency=latency,
            )
        )
        print(f"throughput_{replicas}: {rates[-1]:.2f}/s", file=sys.stderr)
    takeover = await _takeover(url, scratch / "takeover", timings)
    print(f"takeover_s: {takeover:.2f}", file=sys.stderr)
    rolling = max(resources // 2, 1)
    missed, pause, took = await _rolling(
        url, scratch / "rolling", timings, resources=rolling, latency=latency
    )
    return ScaleFigures(
        resources=resources,
        effect_ms=effect_ms,
        shards=timings.shards,
        lease_duration_s=timings.lease_duration,
        throughput_1=round(rates[0], 2),
        throughput_2=round(rates[1], 2),
        throughput_3=round(rates[2], 2),
        scaling_3=round(rates[2] / rates[0], 3),
        takeover_s=round(takeover, 2),
        rolling_resources=rolling,
        rolling_missed=missed,
        rolling_max_pause_s=round(pause, 2),
        rolling_s=round(took, 2),
    )
