"""`engine bench apiserver`'s workload figure: how long the embedded server's controllers
and simulated kubelet take to bring N Deployments x M replicas to every Pod Running and
Ready, and the server process's CPU time meanwhile (from /proc)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
PODS = "/api/v1/namespaces/default/pods"
START_DELAY_ARGS = ("--pod-start-delay", "0.05")  # the server flags this figure runs with


@dataclass(frozen=True)
class RolloutFigures:
    """Seconds from the first create until every Pod is Running and Ready; server CPU s."""

    deployments: int
    replicas: int
    pods_running: int
    rollout_seconds: float
    server_cpu_seconds: float


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def _deployment(index: int, replicas: int) -> dict[str, Any]:
    labels = {"app": f"bench-{index}"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"bench-{index}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }


async def _ready_total(session: aiohttp.ClientSession) -> int:
    async with session.get(DEPLOYMENTS) as response:
        listed = await response.json(content_type=None)
    return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in listed["items"])


async def measure_rollout(
    session: aiohttp.ClientSession, pid: int, *, deployments: int, replicas: int
) -> RolloutFigures:
    """Create the Deployments, wait (up to 600 s) for every replica Ready, then count the
    Running Pods; raises TimeoutError if the rollout does not finish."""
    wanted = deployments * replicas
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for index in range(deployments):
        async with session.post(DEPLOYMENTS, json=_deployment(index, replicas)) as response:
            if response.status != 201:
                raise RuntimeError(f"creating a Deployment -> {response.status}")
    deadline = time.monotonic() + 600
    while await _ready_total(session) < wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"not every one of {wanted} Pods became Ready within 600 s")
        await asyncio.sleep(0.1)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    async with session.get(PODS) as response:
        pods = (await response.json(content_type=None))["items"]
    running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
    return RolloutFigures(
        deployments=deployments,
        replicas=replicas,
        pods_running=running,
        rollout_seconds=round(elapsed, 2),
        server_cpu_seconds=round(cpu, 2),
    )
