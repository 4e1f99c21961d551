"""`engine bench restart`: an engine restarted on a journal of N resources, some with
effects in flight, measured from process start.

Built first, in this process: an `engine apiserver` and the example registry as child
processes, N Sites created and reconciled to Ready by the engine (the Controller, as
`engine bench reconcile` runs it). Then the in-flight work: the registry is paused
(SIGSTOP), `--in-flight` Sites get a new spec, and the engine is stopped once each of
them has started its `register` step: each is left with its provision run open, either
the step started with no outcome (the call never answered: what a kill -9 mid-call
leaves) or failed on the registry client's timeout with a retry due; the registry is
resumed.

Measured: `engine run --kubeconfig …` started as a new process on that journal and API
server. `resume_s`: from the process start to the first record a reconcile writes
(position past the journal's head before the start; the watch's own observations are
not a reconcile); `in_flight_resumed_s`: to every in-flight Site's open handler run
going on (its next attempt or step started); `ready_s`: to every Site Ready at its
newest generation again (status phase Ready and observedGeneration = generation on the
API server). `in_flight_first`: the first reconcile record belongs to an in-flight Site.
`resume_cpu_s`, `ready_cpu_s`: the restarted process's CPU seconds at those two points
(from /proc: what the wall figures cost on a machine shared with other work).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from engine.bench.process import stop_process
from engine.bench.reconcile import SITES, SPEC, ReconcileBenchError, _apiserver, _create_sites
from engine.bench.restart_fixture import Clone, clone_cluster, clone_journal, read_templates
from engine.example.registry_client import RegistryClient
from engine.example.site import site_operator
from engine.runtime.manager.controller import Controller, ControllerDeps
from engine.runtime.manager.settings import Settings
from engine.watchers import connect_kubeconfig

POLL = 0.01
BUILDS = ("clone", "engine")
TEMPLATE_SITES = 12
"""Sites the engine reconciles for real before they are cloned (build "clone")."""
TEMPLATE_IN_FLIGHT = 3


class RestartBenchError(Exception):
    """The benchmark could not run (a child failed, the journal was not built, or the
    restarted engine did not settle in time)."""


@dataclass(frozen=True)
class RestartFigures:
    """Measured figures (seconds; the journal's size when the engine restarts)."""

    resources: int
    in_flight: int
    journal_records: int
    build_s: float
    resume_s: float
    in_flight_resumed_s: float
    ready_s: float
    in_flight_first: bool
    resume_cpu_s: float
    ready_cpu_s: float
    build: str
    settled_appends: int

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def describe(self) -> str:
        return "\n".join(
            [
                f"resources                 {self.resources} "
                f"({self.in_flight} with a step in flight)",
                f"journal                   {self.journal_records} records",
                f"built in                  {self.build_s} s ({self.build})",
                f"resume (first reconcile)  {self.resume_s} s after the process started",
                f"in-flight work resumed    {self.in_flight_resumed_s} s "
                f"(first reconcile on an in-flight Site: {self.in_flight_first})",
                f"all settled (Ready)       {self.ready_s} s",
                f"restarted engine's CPU    {self.resume_cpu_s} s to the first reconcile, "
                f"{self.ready_cpu_s} s to all settled",
                f"records on settled Sites  {self.settled_appends} appended after the restart",
            ]
        )


@contextlib.asynccontextmanager
async def _registry(scratch: Path) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """The example registry as a child process; (URL, process) so it can be paused."""
    log_path = scratch / "registry.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "example-service", "--port", "0",
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "http://127.0.0.1:" not in (text := log_path.read_text(errors="replace")):
            if process.returncode is not None or time.monotonic() > deadline:
                raise RestartBenchError(f"the example registry did not start: {text[-500:]}")
            await asyncio.sleep(0.05)
        start = text.index("http://127.0.0.1:")
        url = text[start:].split()[0].rstrip("/.,")
        yield url, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        await stop_process(process)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _head(journal: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT coalesce(max(position), 0) FROM records").fetchone()
    return int(row[0])


def _register_started(journal: Path, names: set[str]) -> int:
    """How many of the Sites `names` have started a `register` step of generation 2."""
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT DISTINCT stream FROM records WHERE type = 'EffectStarted' "
            "AND json_extract(data, '$.key') LIKE '%:2:register'"
        ).fetchall()
    return sum(1 for (stream,) in rows if _name(str(stream)) in names)


def _name(stream: str) -> str:
    return stream.split("/")[3].split("#")[0]


def _reconcile_records(journal: Path, after: int) -> list[tuple[int, str, str, str]]:
    """(position, stream, type, key) of the records past `after` that a reconcile wrote."""
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT position, stream, type, coalesce(json_extract(data, '$.key'), ''), "
            "coalesce(json_extract(data, '$.watch_event'), '') FROM records "
            "WHERE position > ? ORDER BY position",
            (after,),
        ).fetchall()
    return [
        (int(p), str(s), str(t), str(k))
        for p, s, t, k, watch in rows
        if not (t == "Observed" and watch != "reconcile")
    ]


async def _update_specs(url: str, names: list[str]) -> None:
    async with aiohttp.ClientSession(url) as session:
        for name in names:
            patch = {"spec": {**SPEC, "message": "changed while the registry is paused"}}
            async with session.patch(
                f"{SITES.path('default')}/{name}",
                json=patch,
                headers={"Content-Type": "application/merge-patch+json"},
            ) as response:
                if response.status != 200:
                    raise RestartBenchError(f"updating {name} was refused: {response.status}")


async def _unsettled(url: str) -> int:
    """Sites whose status is not Ready at their newest generation."""
    async with aiohttp.ClientSession(url) as session, session.get(SITES.path("default")) as got:
        listing: dict[str, Any] = await got.json()
    return sum(
        1
        for item in listing.get("items", [])
        if (item.get("status") or {}).get("phase") != "Ready"
        or (item.get("status") or {}).get("observedGeneration")
        != item["metadata"].get("generation")
    )


async def _build(
    kubeconfig: Path, registry_url: str, registry: asyncio.subprocess.Process, *,
    url: str, settings: Settings, count: int, in_flight: list[str], within: float,
) -> None:  # fmt: skip
    """Reconcile every Site to Ready, then leave `in_flight` with `register` in flight."""
    api = await connect_kubeconfig(kubeconfig)
    journal = settings.state_dir / "journal.db"
    try:
        async with RegistryClient(registry_url) as client:
            controller = Controller(
                ControllerDeps(operator=site_operator(client), settings=settings,
                               api_client=api, serve_health=False, handle_signals=False)
            )  # fmt: skip
            running = asyncio.create_task(controller.run())
            started = time.perf_counter()
            try:
                while controller.count(state="Ready", phase="Ready") < count:
                    if running.done():
                        await running
                        raise RestartBenchError("the engine stopped before all were Ready")
                    if time.perf_counter() - started > within:
                        raise RestartBenchError(f"the Sites were not Ready within {within:g}s")
                    await asyncio.sleep(0.05)
                os.kill(registry.pid, signal.SIGSTOP)
                await _update_specs(url, in_flight)
                wanted = set(in_flight)
                while _register_started(journal, wanted) < len(wanted):
                    if time.perf_counter() - started > within:
                        raise RestartBenchError("the in-flight steps never started")
                    await asyncio.sleep(0.2)
            finally:
                await controller.stop()
                with contextlib.suppress(Exception):
                    await running
    finally:
        os.kill(registry.pid, signal.SIGCONT)
        await api.close()


@dataclass(frozen=True)
class _Restarted:
    resume_s: float
    in_flight_resumed_s: float
    ready_s: float
    in_flight_first: bool
    resume_cpu_s: float
    ready_cpu_s: float
    settled_appends: int


def _appended_after(journal: Path, head: int) -> list[str]:
    """The stream of each record past `head`."""
    with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT stream FROM records WHERE position > ?", (head,)).fetchall()
    return [str(stream) for (stream,) in rows]


async def _engine_settled(health: str, resources: int) -> bool:
    """The restarted engine has every Site folded Ready and its queue empty (/metrics)."""
    async with aiohttp.ClientSession() as session, session.get(f"{health}/metrics") as got:
        text = await got.text()
    ready = depth = None
    for line in text.splitlines():
        if line.startswith('engine_resources{state="Ready"}'):
            ready = float(line.split()[-1])
        elif line.startswith("engine_workqueue_depth "):
            depth = float(line.split()[-1])
    return ready == resources and depth == 0


def _health_url(log_path: Path) -> str | None:
    text = log_path.read_text(errors="replace")
    start = text.find("health: http://")
    return None if start < 0 else text[start + 8 :].split()[0].removesuffix("/healthz,")


async def _restart(
    scratch: Path, kubeconfig: Path, registry_url: str, *,
    url: str, in_flight: list[str], resources: int, within: float,
) -> _Restarted:  # fmt: skip
    """`engine run` on the journal, measured (see the module docstring)."""
    state_dir = scratch / "engine"
    journal = state_dir / "journal.db"
    head = _head(journal)
    wanted = set(in_flight)
    log_path = scratch / "restarted-engine.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "run", "--kubeconfig", str(kubeconfig),
            "--state-dir", str(state_dir), "--registry-url", registry_url,
            "--health-port", "0", "--plain",
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        resume_s: float | None = None
        resumed_s: float | None = None
        resume_cpu = 0.0
        first_in_flight = False
        resumed: set[str] = set()
        seen = head
        while resumed_s is None:
            if process.returncode is not None:
                tail = log_path.read_text(errors="replace")[-1000:]
                raise RestartBenchError(f"the restarted engine exited: {tail}")
            if time.perf_counter() - started > within:
                raise RestartBenchError(f"the in-flight work did not resume within {within:g}s")
            for position, stream, kind, key in _reconcile_records(journal, seen):
                seen = position
                name = _name(stream)
                if resume_s is None:
                    resume_s = time.perf_counter() - started
                    resume_cpu = _cpu_seconds(process.pid)
                    first_in_flight = name in wanted
                if kind == "EffectStarted" and ":2:" in key and name in wanted:
                    resumed.add(name)  # the open handler run's next attempt, or its step
            if resumed >= wanted:
                resumed_s = time.perf_counter() - started
            await asyncio.sleep(POLL)
        health = None
        while (
            await _unsettled(url)
            or (health := health or _health_url(log_path)) is None
            or not await _engine_settled(health, resources)
        ):
            if time.perf_counter() - started > within:
                raise RestartBenchError(f"the Sites did not settle within {within:g}s")
            await asyncio.sleep(0.2)
        ready_s = time.perf_counter() - started
        ready_cpu = _cpu_seconds(process.pid)
    finally:
        await stop_process(process)
    assert resume_s is not None
    settled = sum(1 for stream in _appended_after(journal, head) if _name(stream) not in wanted)
    return _Restarted(
        resume_s=round(resume_s, 3),
        in_flight_resumed_s=round(resumed_s, 3),
        ready_s=round(ready_s, 3),
        in_flight_first=first_in_flight,
        resume_cpu_s=round(resume_cpu, 2),
        ready_cpu_s=round(ready_cpu, 2),
        settled_appends=settled,
    )


def _spread(names: list[str], count: int) -> list[str]:
    """`count` of `names` spread through the list, never its first (in-flight-first is
    then not the luck of the list order)."""
    if count <= 0:
        return []
    step = max(1, len(names) // count)
    offset = step // 2 if step > 1 else len(names) - count
    return names[offset::step][:count]


async def run_bench(
    *, resources: int, in_flight: int, settings: Settings, within: float = 1800,
    build: str = "clone",
) -> RestartFigures:  # fmt: skip
    """Build the journal, restart the engine on it, measure; see the module docstring.
    `build`: "clone" (a few Sites reconciled by the engine, cloned to `resources`) or
    "engine" (every Site reconciled by the engine)."""
    if not 0 < in_flight <= resources:
        raise RestartBenchError("--in-flight must be between 1 and --resources")
    if build not in BUILDS:
        raise RestartBenchError(f"--build must be one of {', '.join(BUILDS)}, not {build!r}")
    names = [f"bench-{i:05d}" for i in range(resources)]
    real = names if build == "engine" else names[: min(resources, TEMPLATE_SITES)]
    real_in_flight = (
        _spread(real, in_flight)
        if build == "engine" or resources <= TEMPLATE_SITES
        else _spread(real, min(in_flight, TEMPLATE_IN_FLIGHT))
    )
    with tempfile.TemporaryDirectory(prefix="engine-bench-restart-") as directory:
        scratch = Path(directory)
        settings = dataclasses.replace(settings, state_dir=scratch / "engine")
        journal = scratch / "engine" / "journal.db"
        built = time.perf_counter()
        async with _registry(scratch) as (registry_url, registry):
            async with _apiserver(scratch, "restart") as (url, kubeconfig, _):
                await _create_sites(url, len(real))
                await _build(
                    kubeconfig, registry_url, registry, url=url, settings=settings,
                    count=len(real), in_flight=real_in_flight, within=within,
                )  # fmt: skip
            cloned = _spread(names[len(real) :], in_flight - len(real_in_flight))
            await _clone(scratch / "restart.db", journal, real, real_in_flight, names, cloned)
            build_s = time.perf_counter() - built
            records = _head(journal)
            # the API server restarts on the cloned file (loading every object takes a while)
            async with _apiserver(scratch, "restart", start_within=within) as (url, kubeconfig, _):
                restarted = await _restart(
                    scratch, kubeconfig, registry_url, url=url,
                    in_flight=real_in_flight + cloned, resources=resources, within=within,
                )  # fmt: skip
    return RestartFigures(
        resources=resources,
        in_flight=in_flight,
        journal_records=records,
        build=build,
        build_s=round(build_s, 2),
        **asdict(restarted),
    )


async def _clone(
    cluster_db: Path, journal: Path, real: list[str], real_in_flight: list[str],
    names: list[str], in_flight: list[str],
) -> None:  # fmt: skip
    """Make the Sites `names` past `real` as clones of the real ones: those in
    `in_flight` of a real in-flight Site, the others of a settled one (round robin)."""
    if len(names) == len(real):
        return
    settled = [name for name in real if name not in real_in_flight]
    if not settled or (in_flight and not real_in_flight):
        raise RestartBenchError("cloning needs a settled and an in-flight real Site")
    templates = await asyncio.to_thread(read_templates, cluster_db, journal, real)
    wanted = set(in_flight)
    clones = []
    for n, name in enumerate(names[len(real) :]):
        source = (
            real_in_flight[n % len(real_in_flight)] if name in wanted else settled[n % len(settled)]
        )
        clones.append(Clone(templates[source], name))
    made = await asyncio.to_thread(clone_cluster, cluster_db, clones)
    await clone_journal(journal, made)


__all__ = ["ReconcileBenchError", "RestartBenchError", "RestartFigures", "run_bench"]
