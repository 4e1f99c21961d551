"""`engine bench apiserver`: the embedded API server's throughput, latency and memory.

Starts `engine apiserver` in its own process on a throw-away SQLite file, then drives it
over HTTP: custom-resource creates and merge patches per second from load client processes
of their own (engine.bench.apiserver_load, so that the rate is not bound by one client's
share of the CPU) with the server's CPU time per request, one
LIST of every stored object, watch delivery latency with concurrent watchers while
writing, and the server's peak resident memory (VmHWM) with all the objects stored; then,
on a fresh server, the time and server CPU to roll Deployments out to every Pod Running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.bench.apiserver_load import COLLECTION, GROUP, MERGE, PLURAL
from engine.bench.process import stop_process
from engine.bench.workload_rollout import (
    START_DELAY_ARGS,
    RolloutFigures,
    cpu_seconds,
    measure_rollout,
)

URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+")
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {
                                    "size": {"type": "integer", "minimum": 0},
                                    "colour": {"type": "string", "default": "blue"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}


class BenchError(Exception):
    """The benchmark could not run: the server did not start or answered an error."""


@dataclass(frozen=True)
class BenchSettings:
    """What to measure: how many objects, how many concurrent writers and watchers."""

    objects: int = 10_000
    patches: int = 2_000
    concurrency: int = 8
    clients: int = 2
    watchers: int = 10
    watched_writes: int = 200
    deployments: int = 10
    replicas: int = 100


@dataclass(frozen=True)
class ApiServerFigures:
    """Measured figures; rates per second, durations in seconds, memory in KiB."""

    objects: int
    concurrency: int
    clients: int
    creates_per_second: float
    merge_patches_per_second: float
    server_cpu_ms_per_create: float
    server_cpu_ms_per_patch: float
    list_all_seconds: float
    list_all_items: int
    watchers: int
    watch_events_measured: int
    watch_latency_p50_ms: float
    watch_latency_p99_ms: float
    server_peak_rss_kib: int
    server_rss_kib: int
    rollout: RolloutFigures | None = None

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@contextlib.asynccontextmanager
async def server_process(db: Path, *extra: str) -> AsyncIterator[tuple[str, int]]:
    """Run `engine apiserver` on `db` in a child process; yield its URL and pid.

    Its output goes to a file beside `db` (a pipe nobody drains could stall the server).
    """
    log_path = db.with_suffix(".log")
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "engine", "apiserver", "--db", str(db), "--port", "0"),
            *("--kubeconfig", str(db.with_suffix(".kubeconfig"))),
            *extra,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        yield await _read_url(process, log_path), process.pid
    finally:
        await stop_process(process)


def _read_log(path: Path) -> str:
    return path.read_text(errors="replace")


async def _read_url(process: asyncio.subprocess.Process, log_path: Path) -> str:
    """The URL the server prints once it listens (waits up to 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := URL_PATTERN.search(_read_log(log_path)):
            return found.group(0)
        if process.returncode is not None:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=0.05)
    output = _read_log(log_path).strip()[-2000:]
    raise BenchError(f"`engine apiserver` printed no URL (exit {process.returncode}): {output}")


async def _check(response: aiohttp.ClientResponse, expected: int) -> dict[str, Any]:
    body: dict[str, Any] = await response.json(content_type=None)
    if response.status != expected:
        message = body.get("message", body)
        raise BenchError(f"{response.method} {response.url.path} -> {response.status}: {message}")
    return body


async def _install_crd(session: aiohttp.ClientSession) -> None:
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    async with session.post(path, json=CRD) as response:
        await _check(response, 201)
    for _ in range(100):
        async with session.get(f"/apis/{GROUP}/v1") as response:
            if response.status == 200:
                return
        await asyncio.sleep(0.05)
    raise BenchError(f"the CRD {PLURAL}.{GROUP} never became discoverable")


def _spans(total: int, parts: int) -> list[str]:
    """`total` indices cut into `parts` consecutive `first:count` ranges."""
    size, extra = divmod(total, parts)
    spans, first = [], 0
    for part in range(parts):
        count = size + (1 if part < extra else 0)
        spans.append(f"{first}:{count}")
        first += count
    return spans


@contextlib.asynccontextmanager
async def load_clients(
    url: str, settings: BenchSettings
) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """`settings.clients` load processes (engine.bench.apiserver_load), each ready, with
    its share of the objects, the patches and the concurrent requests."""
    clients = min(settings.clients, settings.concurrency)
    per_client, extra = divmod(settings.concurrency, clients)
    creates, patches = _spans(settings.objects, clients), _spans(settings.patches, clients)
    processes = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "engine.bench.apiserver_load", url),
            *(creates[index], patches[index]),
            *(str(per_client + (1 if index < extra else 0)), str(settings.objects)),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for index in range(clients)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
            if line.strip() != b"ready":
                raise BenchError(f"a load client did not start (it said {line[:300]!r})")
        yield processes
    finally:
        for process in processes:
            if process.stdin is not None:
                process.stdin.close()
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=10)
            await stop_process(process)


async def run_phase(processes: list[asyncio.subprocess.Process], phase: str) -> float:
    """Run `phase` on every load client at once; seconds from the first one's start to the
    last one's finish."""
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{phase}\n".encode())
        await process.stdin.drain()
    answers = []
    for process in processes:
        assert process.stdout is not None
        answer = json.loads(await process.stdout.readline() or b"{}")
        if answer.get("error") or "started" not in answer:
            raise BenchError(f"{phase}: {answer.get('error') or 'a load client stopped'}")
        answers.append(answer)
    return float(max(a["finished"] for a in answers) - min(a["started"] for a in answers))


async def _measure_watch(session: aiohttp.ClientSession, settings: BenchSettings) -> list[float]:
    """Latency (s) from sending a patch to each watcher seeing its MODIFIED event."""
    async with session.get(COLLECTION, params={"limit": "1"}) as response:
        start_rv = (await _check(response, 200))["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    seen: list[tuple[str, float]] = []
    all_seen = asyncio.Event()

    async def watcher() -> None:
        params = {"watch": "true", "resourceVersion": start_rv, "timeoutSeconds": "120"}
        async with session.get(COLLECTION, params=params) as response:
            async for line in response.content:
                event = json.loads(line)
                if event["type"] not in {"ADDED", "MODIFIED", "DELETED"}:
                    continue
                name = event["object"]["metadata"]["name"]
                version = event["object"]["metadata"]["resourceVersion"]
                seen.append((name + version, time.perf_counter()))
                if len(seen) >= settings.watchers * settings.watched_writes:
                    all_seen.set()

    tasks = [asyncio.create_task(watcher()) for _ in range(settings.watchers)]
    await asyncio.sleep(0.5)  # let every watch reach the server's stream before writing
    for index in range(settings.watched_writes):
        name = f"w-{index % settings.objects}"
        body = json.dumps({"spec": {"size": 100_000 + index}})
        before = time.perf_counter()
        async with session.patch(
            f"{COLLECTION}/{name}", data=body, headers={"Content-Type": MERGE}
        ) as response:
            rv = (await _check(response, 200))["metadata"]["resourceVersion"]
        sent[name + rv] = before
    expected = settings.watchers * settings.watched_writes
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_seen.wait(), timeout=30)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [at - sent[key] for key, at in seen if key in sent]
    if len(latencies) < expected:
        raise BenchError(f"watchers saw {len(latencies)} of {expected} events within 30 s")
    return latencies


def _memory_kib(pid: int) -> tuple[int, int]:
    """(VmHWM, VmRSS) of a process, in KiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()[0] if value.split() else "0"
    return int(fields["VmHWM"]), int(fields["VmRSS"])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def run_bench(settings: BenchSettings) -> ApiServerFigures:
    """Start a server process, measure it, stop it; the figures measured."""
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as scratch:
        async with server_process(Path(scratch) / "apiserver.db") as (url, pid):
            timeout = aiohttp.ClientTimeout(total=300)
            connector = aiohttp.TCPConnector(limit=settings.watchers + 4)
            async with aiohttp.ClientSession(url, timeout=timeout, connector=connector) as session:
                await _install_crd(session)
                async with load_clients(url, settings) as clients:
                    cpu_before = cpu_seconds(pid)
                    create_s = await run_phase(clients, "create")
                    cpu_created = cpu_seconds(pid)
                    patch_s = await run_phase(clients, "patch")
                    cpu_patched = cpu_seconds(pid)
                started = time.perf_counter()
                async with session.get(COLLECTION) as response:
                    listed = await _check(response, 200)
                list_s = time.perf_counter() - started
                latencies = await _measure_watch(session, settings)
            peak, rss = _memory_kib(pid)
        rollout = None
        if settings.deployments and settings.replicas:
            rollout = await _rollout(Path(scratch) / "workloads.db", settings)
    return ApiServerFigures(
        objects=settings.objects,
        concurrency=settings.concurrency,
        clients=min(settings.clients, settings.concurrency),
        creates_per_second=round(settings.objects / create_s, 1),
        merge_patches_per_second=round(settings.patches / patch_s, 1),
        server_cpu_ms_per_create=round((cpu_created - cpu_before) * 1000 / settings.objects, 3),
        server_cpu_ms_per_patch=round((cpu_patched - cpu_created) * 1000 / settings.patches, 3),
        list_all_seconds=round(list_s, 3),
        list_all_items=len(listed["items"]),
        watchers=settings.watchers,
        watch_events_measured=len(latencies),
        watch_latency_p50_ms=round(statistics.median(latencies) * 1000, 2),
        watch_latency_p99_ms=round(_percentile(latencies, 0.99) * 1000, 2),
        server_peak_rss_kib=peak,
        server_rss_kib=rss,
        rollout=rollout,
    )


async def _rollout(db: Path, settings: BenchSettings) -> RolloutFigures:
    """The workload figure, on a fresh server of its own."""
    async with server_process(db, *START_DELAY_ARGS) as (url, pid):
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(url, timeout=timeout) as session:
            try:
                return await measure_rollout(
                    session, pid, deployments=settings.deployments, replicas=settings.replicas
                )
            except (TimeoutError, RuntimeError) as failed:
                raise BenchError(str(failed)) from failed
