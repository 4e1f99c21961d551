"""`engine bench scale`: sharded replicas (each its own `engine run` process) on one
PostgreSQL journal and the embedded API server, reconciling Chores whose provision makes
one call of `--effect-ms` to the shard target.

Measured, each replica count in a fresh schema and a fresh API server:
- `throughput_N`: resources brought to Ready per second with N replicas (N = 1, 2, 3),
  from the first create to the last Ready, the median over `rounds` interleaved rounds
  (the order of the replica counts alternates); `scaling_3 = throughput_3 / throughput_1`
  within each round (median, min, max);
- where the CPU went in each part (`/proc`): each replica's, the API server's, the
  PostgreSQL backends serving the replicas' connections (found by their
  `application_name`), and this process's (the target and the clients), per resource,
  and each replica's CPU as a share of one core over the part (`busy`: near 1 is a
  replica bound by its CPU, near 0 one waiting); `cpu_bound_3`, the throughput the
  machine's cores would allow at the CPU three replicas spent per resource, and
  `scaling_3_cpu_bound = cpu_bound_3 / throughput_1`, the best `scaling_3` that CPU
  leaves room for here;
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
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.bench.journal_postgres import fresh_schema
from engine.bench.kopf_process_tree import tree_cpu_seconds
from engine.bench.scale_cpu import backend_pids, pids_cpu_seconds
from engine.bench.shard_fleet import Fleet, FleetError, FleetTimings, running_fleet
from engine.journal.location import open_journal
from engine.runtime.sharding.coordinator import SHARD_ACQUIRED, SHARD_RELEASED


class ScaleBenchError(Exception):
    """The benchmark could not run (the message names the part)."""


@dataclass(frozen=True)
class ThroughputPart:
    """One replica count in one round: the rate and where the CPU went (seconds)."""

    round: int
    replicas: int
    throughput: float
    wall_s: float
    replica_cpu_s: list[float]
    apiserver_cpu_s: float
    postgres_cpu_s: float
    bench_cpu_s: float

    def per_resource_ms(self, resources: int) -> dict[str, float]:
        def ms(seconds: float) -> float:
            return round(seconds * 1000 / resources, 2)

        total = sum(self.replica_cpu_s) + self.apiserver_cpu_s + self.postgres_cpu_s
        return {
            "replicas_cpu_ms": ms(sum(self.replica_cpu_s)),
            "apiserver_cpu_ms": ms(self.apiserver_cpu_s),
            "postgres_cpu_ms": ms(self.postgres_cpu_s),
            "bench_cpu_ms": ms(self.bench_cpu_s),
            "total_cpu_ms": ms(total + self.bench_cpu_s),
        }

    def summary(self, resources: int) -> dict[str, Any]:
        return {
            "round": self.round,
            "replicas": self.replicas,
            "throughput": round(self.throughput, 2),
            "wall_s": round(self.wall_s, 2),
            "replica_cpu_s": [round(cpu, 2) for cpu in self.replica_cpu_s],
            "replica_busy": [round(cpu / self.wall_s, 3) for cpu in self.replica_cpu_s],
            "apiserver_cpu_s": round(self.apiserver_cpu_s, 2),
            "apiserver_busy": round(self.apiserver_cpu_s / self.wall_s, 3),
            "postgres_cpu_s": round(self.postgres_cpu_s, 2),
            "bench_cpu_s": round(self.bench_cpu_s, 2),
            **self.per_resource_ms(resources),
        }


@dataclass(frozen=True)
class ScaleFigures:
    resources: int
    effect_ms: float
    shards: int
    workers: int
    lease_duration_s: float
    rounds: int
    cores: int
    load_average: list[float]
    throughput_1: float
    throughput_2: float
    throughput_3: float
    scaling_2: float
    scaling_3: float
    scaling_3_min: float
    scaling_3_max: float
    cpu_ms_per_resource_1: float
    cpu_ms_per_resource_3: float
    cpu_bound_3: float
    scaling_3_cpu_bound: float
    parts: list[dict[str, Any]] = field(default_factory=list)
    takeover_s: float | None = None
    rolling_resources: int | None = None
    rolling_missed: int | None = None
    rolling_max_pause_s: float | None = None
    rolling_s: float | None = None

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def describe(self) -> str:
        lines: list[str] = []
        for name, value in asdict(self).items():
            if name == "parts":
                lines.extend(f"part: {json.dumps(part)}" for part in value)
            else:
                lines.append(f"{name}: {value}")
        return "\n".join(lines)


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
    url: str,
    scratch: Path,
    timings: FleetTimings,
    *,
    round_: int,
    replicas: int,
    resources: int,
    latency: float,
) -> ThroughputPart:
    async with fresh_schema(url) as schema_url:
        name = schema_url.rsplit("%3D", 1)[-1]
        journal_url = f"{schema_url}&application_name={name}"  # to find its backends
        async with running_fleet(scratch, journal_url, timings, latency=latency) as fleet:
            started = [await fleet.start(f"r{i}") for i in range(replicas)]
            await asyncio.gather(*(r.wait_synced() for r in started))
            await _settled(fleet, replicas, within=60)
            backends = await backend_pids(url, name)
            pids = [replica.process.pid for replica in started]
            names = {f"c-{i:05d}" for i in range(resources)}
            cpu_before = [tree_cpu_seconds(pid) for pid in pids]
            server_before = tree_cpu_seconds(fleet.apiserver_pid)
            postgres_before = pids_cpu_seconds(backends)
            own_before = time.process_time()
            began = time.monotonic()
            await fleet.create(sorted(names))
            await fleet.wait_converged(names, within=120.0 + resources * 2.0)
            wall = time.monotonic() - began
            return ThroughputPart(
                round=round_,
                replicas=replicas,
                throughput=resources / wall,
                wall_s=wall,
                replica_cpu_s=[
                    tree_cpu_seconds(pid) - before
                    for pid, before in zip(pids, cpu_before, strict=True)
                ],
                apiserver_cpu_s=tree_cpu_seconds(fleet.apiserver_pid) - server_before,
                postgres_cpu_s=pids_cpu_seconds(backends) - postgres_before,
                bench_cpu_s=time.process_time() - own_before,
            )


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
    rounds: int = 1,
    failover: bool = True,
) -> ScaleFigures:
    """Every figure above, the parts one after another. Errors: `ScaleBenchError`,
    `FleetError`."""
    latency = effect_ms / 1000
    load = [os.getloadavg()[0]]
    parts: list[ThroughputPart] = []
    for round_ in range(rounds):
        order = (1, 2, 3) if round_ % 2 == 0 else (3, 2, 1)
        for replicas in order:
            part = await _throughput(
                url,
                scratch / f"throughput-{round_}-{replicas}",
                timings,
                round_=round_,
                replicas=replicas,
                resources=resources,
                latency=latency,
            )
            parts.append(part)
            print(f"part: {json.dumps(part.summary(resources))}", file=sys.stderr)
    load.append(os.getloadavg()[0])

    def rate(replicas: int) -> float:
        return statistics.median(p.throughput for p in parts if p.replicas == replicas)

    def ratios(replicas: int) -> list[float]:
        by_round = {(p.round, p.replicas): p.throughput for p in parts}
        return [by_round[(r, replicas)] / by_round[(r, 1)] for r in range(rounds)]

    def cpu_ms(replicas: int) -> float:
        totals = [
            p.per_resource_ms(resources)["total_cpu_ms"] for p in parts if p.replicas == replicas
        ]
        return statistics.median(totals)

    cores = os.cpu_count() or 1
    cpu_bound_3 = cores * 1000 / cpu_ms(3)
    failover_figures: dict[str, Any] = {}
    if failover:
        takeover = await _takeover(url, scratch / "takeover", timings)
        print(f"takeover_s: {takeover:.2f}", file=sys.stderr)
        rolling = max(resources // 2, 1)
        missed, pause, took = await _rolling(
            url, scratch / "rolling", timings, resources=rolling, latency=latency
        )
        failover_figures = {
            "takeover_s": round(takeover, 2),
            "rolling_resources": rolling,
            "rolling_missed": missed,
            "rolling_max_pause_s": round(pause, 2),
            "rolling_s": round(took, 2),
        }
    return ScaleFigures(
        resources=resources,
        effect_ms=effect_ms,
        shards=timings.shards,
        workers=timings.workers,
        lease_duration_s=timings.lease_duration,
        rounds=rounds,
        cores=cores,
        load_average=[round(value, 2) for value in load],
        throughput_1=round(rate(1), 2),
        throughput_2=round(rate(2), 2),
        throughput_3=round(rate(3), 2),
        scaling_2=round(statistics.median(ratios(2)), 3),
        scaling_3=round(statistics.median(ratios(3)), 3),
        scaling_3_min=round(min(ratios(3)), 3),
        scaling_3_max=round(max(ratios(3)), 3),
        cpu_ms_per_resource_1=round(cpu_ms(1), 2),
        cpu_ms_per_resource_3=round(cpu_ms(3), 2),
        cpu_bound_3=round(cpu_bound_3, 2),
        scaling_3_cpu_bound=round(cpu_bound_3 / rate(1), 3),
        parts=[part.summary(resources) for part in parts],
        **failover_figures,
    )
