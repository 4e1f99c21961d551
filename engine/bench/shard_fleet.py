"""A fleet of sharded engine replicas on one PostgreSQL journal, for `engine bench scale`
and the sharding fault tests: the embedded API server (its own process), the shard
target (in this process), and `engine run` replicas of the Chore operator, each its own
process, with the Leases timed by `FleetTimings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from engine.bench.process import stop_process
from engine.bench.shard_operator import CHORE
from engine.bench.shard_target import ShardTarget
from engine.fsm import events as ev
from engine.journal.location import open_journal

OPERATOR_REF = "engine.bench.shard_operator:OPERATOR"
URL_PATTERN = re.compile(r"API server listening on (http://127\.0\.0\.1:\d+)")
SYNCED = "health:"
"""What `engine run` prints once its caches are synced."""


class FleetError(Exception):
    """A process of the fleet did not start or answered badly (the message says which)."""


@dataclass(frozen=True)
class FleetTimings:
    """Lease timings and the per-replica worker count of every replica of the fleet."""

    shards: int = 16
    lease_duration: float = 3.0
    renew_deadline: float = 2.0
    retry_period: float = 0.3
    workers: int = 32

    def env(self) -> dict[str, str]:
        return {
            "ENGINE_SHARDS": str(self.shards),
            "ENGINE_LEASE_DURATION_SECONDS": str(self.lease_duration),
            "ENGINE_LEASE_RENEW_DEADLINE_SECONDS": str(self.renew_deadline),
            "ENGINE_LEASE_RETRY_PERIOD_SECONDS": str(self.retry_period),
            "ENGINE_MAX_CONCURRENT_RECONCILES": str(self.workers),
        }


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Replica:
    """One replica's process (restart it with `Fleet.start`)."""

    name: str
    log: Path
    process: asyncio.subprocess.Process
    offset: int = 0

    def output(self) -> str:
        """What the current process printed (the offset counts bytes, not characters)."""
        if not self.log.exists():
            return ""
        return self.log.read_bytes()[self.offset :].decode(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def wait_synced(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while SYNCED not in self.output():
            if not self.running or time.monotonic() > deadline:
                raise FleetError(f"replica {self.name} did not start:\n{self.output()[-2000:]}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL, reaped."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    async def stop(self) -> int:
        """SIGTERM (SIGKILL after the grace period); the exit code."""
        await stop_process(self.process)
        return int(self.process.returncode or 0)


@dataclass
class Fleet:
    """The running parts; see `running_fleet`."""

    scratch: Path
    api_url: str
    kubeconfig: Path
    journal_url: str
    target: ShardTarget
    timings: FleetTimings
    session: aiohttp.ClientSession
    apiserver_pid: int = 0
    replicas: dict[str, Replica] = field(default_factory=dict)

    async def start(self, name: str, *, env: Mapping[str, str] | None = None) -> Replica:
        """Start (or restart) replica `name`; returns once it has begun (not synced)."""
        log = self.scratch / f"{name}.out"
        offset = log.stat().st_size if log.exists() else 0
        environment = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "OTEL_SDK_DISABLED": "true",
            "OTEL_TRACES_EXPORTER": "none",
            "ENGINE_HEALTH_HOST": "127.0.0.1",
            "ENGINE_BACKOFF_CAP_SECONDS": "1",
            "ENGINE_JOURNAL_URL": self.journal_url,
            "ENGINE_SHARD_TARGET_URL": self.target.url,
            "ENGINE_LEASE_NAMESPACE": "default",
            **self.timings.env(),
            **(env or {}),
        }
        state = str(self.scratch / name)
        args = ["run", "--operator", OPERATOR_REF, "--kubeconfig", str(self.kubeconfig),
                "--state-dir", state, "--plain", "--health-port", "0"]  # fmt: skip
        with log.open("ab") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "engine", *args, env=environment,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        replica = self.replicas[name] = Replica(name, log, process, offset)
        return replica

    # -- the workload ------------------------------------------------------------------------

    def _path(self, name: str = "") -> str:
        base = f"/apis/{CHORE.group}/{CHORE.version}/namespaces/default/{CHORE.plural}"
        return f"{base}/{name}" if name else base

    async def create(self, names: list[str], *, concurrency: int = 16) -> None:
        pending = iter(names)

        async def worker() -> None:
            for name in pending:
                body = {"apiVersion": CHORE.api_version, "kind": CHORE.kind,
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"round": 1}}  # fmt: skip
                async with self.session.post(self.api_url + self._path(), json=body) as reply:
                    if reply.status not in (201, 409):
                        raise FleetError(f"create {name}: HTTP {reply.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def update(self, name: str, round_: int) -> None:
        """Change the spec (a new generation: a new provision call under a new key)."""
        async with self.session.patch(
            self.api_url + self._path(name),
            json={"spec": {"round": round_}},
            headers={"Content-Type": "application/merge-patch+json"},
        ) as reply:
            if reply.status != 200:
                raise FleetError(f"update {name}: HTTP {reply.status}")

    async def delete(self, name: str) -> None:
        async with self.session.delete(self.api_url + self._path(name)) as reply:
            if reply.status not in (200, 202, 404):
                raise FleetError(f"delete {name}: HTTP {reply.status}")

    async def chores(self) -> dict[str, dict[str, Any]]:
        async with self.session.get(self.api_url + self._path()) as reply:
            listing = await reply.json()
        return {item["metadata"]["name"]: item for item in listing.get("items", [])}

    async def ready_count(self) -> int:
        """Chores whose status says Ready for their current generation."""
        return sum(1 for chore in (await self.chores()).values() if _ready(chore))

    async def wait_converged(self, expected: set[str], *, within: float) -> float:
        """Wait until exactly `expected` Chores exist, each Ready at its generation; the
        seconds it took. Errors: `FleetError` naming what was missing at the deadline."""
        began = time.monotonic()
        while True:
            chores = await self.chores()
            ready = {name for name, chore in chores.items() if _ready(chore)}
            if set(chores) == expected and ready == expected:
                return time.monotonic() - began
            if time.monotonic() - began > within:
                missing = sorted(expected - ready)[:5]
                extra = sorted(set(chores) - expected)[:5]
                raise FleetError(
                    f"not converged in {within:g}s: not Ready {missing}, extra {extra}"
                )
            await asyncio.sleep(0.2)

    async def journal_successes(self) -> Counter[str]:
        """EffectSucceeded records per effect key, over the whole shared journal."""
        journal = await open_journal(self.journal_url, readonly=True)
        counts: Counter[str] = Counter()
        try:
            async for record in journal.read_all():
                if record.type == ev.EFFECT_SUCCEEDED:
                    counts[str(record.data.get("key"))] += 1
        finally:
            await journal.close()
        return counts


def _ready(chore: Mapping[str, Any]) -> bool:
    status = chore.get("status") or {}
    generation = chore.get("metadata", {}).get("generation")
    return bool(status.get("phase") == "Ready" and status.get("observedGeneration") == generation)


@contextlib.asynccontextmanager
async def running_fleet(
    scratch: Path, journal_url: str, timings: FleetTimings, *, latency: float = 0.02
) -> AsyncIterator[Fleet]:
    """The API server with the Chore CRD and the target; every replica started through the
    fleet is stopped (SIGCONT first, in case it was paused) at the end."""
    await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
    kubeconfig, log = scratch / "kubeconfig", scratch / "apiserver.out"
    with log.open("wb") as out:
        apiserver = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "apiserver", "--db", str(scratch / "api.db"),
            "--port", "0", "--kubeconfig", str(kubeconfig),
            stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    fleet: Fleet | None = None
    try:
        deadline = time.monotonic() + 30
        while not (found := URL_PATTERN.search(_read(log))):
            if apiserver.returncode is not None or time.monotonic() > deadline:
                raise FleetError(f"the API server did not start: {_read(log)[-1000:]}")
            await asyncio.sleep(0.05)
        async with ShardTarget(latency=latency) as target, aiohttp.ClientSession() as session:
            api_url = found.group(1)
            await _install_crd(session, api_url)
            fleet = Fleet(
                scratch, api_url, kubeconfig, journal_url, target, timings, session, apiserver.pid
            )
            try:
                yield fleet
            finally:
                for replica in fleet.replicas.values():
                    with contextlib.suppress(ProcessLookupError):
                        replica.resume()
                await asyncio.gather(*(r.stop() for r in fleet.replicas.values()))
    finally:
        await stop_process(apiserver)


async def _install_crd(session: aiohttp.ClientSession, api_url: str) -> None:
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    async with session.post(api_url + crds, json=CHORE.crd()) as reply:
        if reply.status not in (201, 409):
            raise FleetError(f"the Chore CRD was refused: HTTP {reply.status}")
    path = f"/apis/{CHORE.group}/{CHORE.version}/namespaces/default/{CHORE.plural}"
    for _ in range(200):
        async with session.get(api_url + path) as reply:
            if reply.status == 200:
                return
        await asyncio.sleep(0.05)
    raise FleetError("the Chore CRD is not served")
