"""`engine bench reconcile`: N Sites reconciled to Ready by the engine, measured alone.

The API server (`engine apiserver --audit-log`) and the example registry (zero latency)
run as child processes; the engine runs in this process, so its CPU (getrusage) and
peak RSS (ru_maxrss) are the engine's plus this process's small start-up. The Sites are
created before the engine starts, the clock runs from the Controller's start until every
Site's state and status phase are Ready, and the audit log lines written in that window
are the engine's requests. The ceiling replays those requests (see `ceiling.py`) on a
fresh server holding the same N Sites (children owned by that server's Sites, as the
engine's are), from one plain aiohttp client at the engine's concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.bench.ceiling import read_audit, replay, replay_plan
from engine.bench.process import stop_process
from engine.effects.install import Collection
from engine.example.registry_client import RegistryClient
from engine.example.site import site_operator
from engine.example.site_resource import SITE
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.watchers import connect_kubeconfig

URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+")
SPEC = {"domain": "bench.example.com", "replicas": 1, "tier": "standard", "message": "hello"}
SITES = Collection(SITE.group, SITE.version, SITE.plural)
CREATE_CONCURRENCY = 16


class ReconcileBenchError(Exception):
    """The benchmark could not run (a child process failed, or Sites never got Ready)."""


@dataclass(frozen=True)
class ReconcileFigures:
    """Measured figures: seconds, CPU seconds, milliseconds, MiB, requests."""

    resources: int
    ready_s: float
    cpu_s: float
    cpu_ms_per_resource: float
    peak_rss_mb: float
    requests_per_resource: float
    ceiling_s: float
    ratio_to_ceiling: float

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return "\n".join(
            [
                f"resources                {self.resources}",
                f"all Ready after          {self.ready_s} s",
                f"engine CPU               {self.cpu_s} s ({self.cpu_ms_per_resource} ms/resource)",
                f"engine peak RSS          {self.peak_rss_mb} MiB",
                f"HTTP requests/resource   {self.requests_per_resource}",
                f"raw API ceiling          {self.ceiling_s} s "
                f"(ready / ceiling = {self.ratio_to_ceiling})",
            ]
        )


@contextlib.asynccontextmanager
async def _child(
    args: Sequence[str], log_path: Path, *, start_within: float = 30
) -> AsyncIterator[str]:
    """`python -m engine <args>` as a child process; yields the URL it prints (within
    `start_within` seconds)."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", *args, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + start_within
        while not (found := URL_PATTERN.search(_read(log_path))):
            if process.returncode is not None or time.monotonic() > deadline:
                output = _read(log_path)[-1000:]
                raise ReconcileBenchError(f"`engine {args[0]}` did not start: {output}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), timeout=0.05)
        yield found.group(0)
    finally:
        await stop_process(process)


@contextlib.asynccontextmanager
async def _apiserver(
    scratch: Path, name: str, *, start_within: float = 30
) -> AsyncIterator[tuple[str, Path, Path]]:
    """An `engine apiserver` process on `<name>.db` with an audit log; (url, kubeconfig,
    audit log)."""
    kubeconfig, audit = scratch / f"{name}.kubeconfig", scratch / f"{name}.audit.jsonl"
    args = ("apiserver", "--db", str(scratch / f"{name}.db"), "--port", "0",
            "--kubeconfig", str(kubeconfig), "--audit-log", str(audit))  # fmt: skip
    async with _child(args, scratch / f"{name}.log", start_within=start_within) as url:
        yield url, kubeconfig, audit


async def _create_sites(url: str, count: int) -> None:
    async with aiohttp.ClientSession(url) as session:
        crd = SITE.crd()
        async with session.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd
        ) as response:
            if response.status not in (201, 409):
                raise ReconcileBenchError(f"the Site CRD was refused: {response.status}")
        names = iter(range(count))

        async def worker() -> None:
            for index in names:
                body = {"apiVersion": SITE.api_version, "kind": SITE.kind,
                        "metadata": {"name": f"bench-{index:05d}", "namespace": "default"},
                        "spec": SPEC}  # fmt: skip
                for _ in range(100):
                    async with session.post(SITES.path("default"), json=body) as response:
                        if response.status in (201, 409):
                            break
                        if response.status != 404:  # 404: the CRD is not served yet
                            raise ReconcileBenchError(f"create refused: {response.status}")
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))


async def _sites_by_name(url: str) -> dict[str, dict[str, Any]]:
    """Every Site stored on the server at `url`, by name (as the owners of their children)."""
    async with (
        aiohttp.ClientSession(url) as session,
        session.get(SITES.path("default")) as response,
    ):
        if response.status != 200:
            raise ReconcileBenchError(f"listing the Sites was refused: {response.status}")
        listing = await response.json()
    return {item["metadata"]["name"]: item for item in listing.get("items", [])}


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8") as lines:
        return sum(1 for _ in lines)


async def _engine_until_ready(
    kubeconfig: Path, registry_url: str, *, settings: Settings, count: int, ready_within: float
) -> tuple[float, float]:
    """Run the Controller until all `count` Sites are Ready; (seconds, CPU seconds)."""
    api = await connect_kubeconfig(kubeconfig)
    try:
        async with RegistryClient(registry_url) as registry:
            controller = Controller(
                ControllerDeps(operator=site_operator(registry), settings=settings,
                               api_client=api, serve_health=False, handle_signals=False)
            )  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            running = asyncio.create_task(controller.run())
            try:
                while _ready(controller) < count:
                    if running.done():
                        await running
                        raise ReconcileBenchError("the engine stopped before all were Ready")
                    if time.perf_counter() - started > ready_within:
                        raise ReconcileBenchError(
                            f"only {_ready(controller)} of {count} Sites Ready "
                            f"after {ready_within:g}s"
                        )
                    await asyncio.sleep(0.02)
                ready_s = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_SELF)
            finally:
                await controller.stop()
                await running
    finally:
        await api.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ready_s, cpu


def _ready(controller: Controller) -> int:
    return controller.count(state="Ready", phase="Ready")


async def run_bench(
    *, resources: int, settings: Settings, ready_within: float = 600
) -> ReconcileFigures:
    """Measure one run; see the module docstring for what each figure means."""
    with tempfile.TemporaryDirectory(prefix="engine-bench-reconcile-") as directory:
        scratch = Path(directory)
        settings = dataclasses.replace(settings, state_dir=scratch / "engine")
        registry_args = ("example-service", "--port", "0")
        async with (
            _child(registry_args, scratch / "registry.log") as registry_url,
            _apiserver(scratch, "measured") as (url, kubeconfig, audit),
        ):
            await _create_sites(url, resources)
            skip = _lines(audit)
            ready_s, cpu_s = await _engine_until_ready(
                kubeconfig, registry_url, settings=settings, count=resources,
                ready_within=ready_within,
            )  # fmt: skip
            entries = read_audit(audit, skip=skip)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        finalizer = site_operator(RegistryClient("")).finalizer_name
        async with _apiserver(scratch, "ceiling") as (url, _, _):
            await _create_sites(url, resources)
            owners = await _sites_by_name(url)
            plan = replay_plan(entries, finalizer=finalizer, spec=SPEC, owners=owners)
            ceiling_s = await replay(url, plan, concurrency=settings.max_concurrent_reconciles)
    return ReconcileFigures(
        resources=resources,
        ready_s=round(ready_s, 3),
        cpu_s=round(cpu_s, 3),
        cpu_ms_per_resource=round(cpu_s * 1000 / resources, 3),
        peak_rss_mb=round(peak_kib / 1024, 1),
        requests_per_resource=round(len(entries) / resources, 2),
        ceiling_s=round(ceiling_s, 3),
        ratio_to_ceiling=round(ready_s / ceiling_s, 2) if ceiling_s > 0 else 0.0,
    )
