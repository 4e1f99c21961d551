"""One measured run of `engine bench kopf`: a fresh embedded API server (its own process,
with an audit log), the Widget CRD and N Widgets, then one operator process (kopf or the
engine) from its start until every Widget's `status.phase` is Ready.

The clock, the operator's CPU (its process tree, from /proc) and the server's CPU run
from just before the operator process is started until this process sees the last
Widget Ready on its own watch; the requests counted are the audit log's lines of that
window not sent by this process (its User-Agent is `HARNESS_AGENT`). Then the operator is
stopped and the ConfigMaps are checked: each Widget's `<name>-cm` must hold
`data.size = str(spec.size)` and name the Widget as its controller owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from engine.bench.apiserver import server_process
from engine.bench.ceiling import read_audit
from engine.bench.kopf_process_tree import tree_cpu_seconds, tree_peak_rss_kib
from engine.bench.kopf_widget_engine import WIDGET
from engine.bench.process import stop_process
from engine.bench.workload_rollout import cpu_seconds

Side = Literal["kopf", "engine"]
HARNESS_AGENT = "engine-bench-kopf"
WIDGETS = f"/apis/{WIDGET.group}/{WIDGET.version}/namespaces/default/{WIDGET.plural}"
CONFIG_MAPS = "/api/v1/namespaces/default/configmaps"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CREATE_CONCURRENCY = 16
HERE = Path(__file__).resolve().parent
KOPF_FILE = HERE / "kopf_widget_kopf.py"
ENGINE_REF = f"{HERE / 'kopf_widget_engine.py'}:OPERATOR"


class KopfBenchError(Exception):
    """The benchmark could not run, or an operator's work did not verify."""


@dataclass(frozen=True)
class SideRun:
    """One operator's run: seconds, CPU seconds, KiB, and requests by `verb resource`."""

    side: Side
    resources: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    server_cpu_s: float
    requests: dict[str, int]

    @property
    def request_count(self) -> int:
        return sum(self.requests.values())

    @property
    def server_cpu_per_request(self) -> float:
        return self.server_cpu_s / max(1, self.request_count)


def operator_command(side: Side, *, kubeconfig: Path, state_dir: Path) -> list[str]:
    """The command line of one operator process, at its defaults."""
    if side == "kopf":
        return [sys.executable, "-m", "kopf", "run", "--standalone", "--all-namespaces",
                str(KOPF_FILE)]  # fmt: skip
    return [sys.executable, "-m", "engine", "run", "--operator", ENGINE_REF,
            "--kubeconfig", str(kubeconfig), "--state-dir", str(state_dir),
            "--plain", "--health-port", "0"]  # fmt: skip


def _environment(kubeconfig: Path) -> dict[str, str]:
    # No collector runs here: spans are recorded but not exported (as `engine run --local`).
    return {**os.environ, "KUBECONFIG": str(kubeconfig), "OTEL_TRACES_EXPORTER": "none"}


async def _answer(response: aiohttp.ClientResponse, *expected: int) -> dict[str, Any]:
    body: dict[str, Any] = await response.json(content_type=None)
    if response.status not in expected:
        message = body.get("message", body)
        raise KopfBenchError(
            f"{response.method} {response.url.path} -> {response.status}: {message}"
        )
    return body


async def _prepare(session: aiohttp.ClientSession, count: int) -> None:
    """The Widget CRD, served, and `count` Widgets (sizes 0…count-1)."""
    async with session.post(CRDS, json=WIDGET.crd()) as response:
        await _answer(response, 201)
    for _ in range(200):
        async with session.get(WIDGETS, params={"limit": "1"}) as response:
            if response.status == 200:
                break
        await asyncio.sleep(0.05)
    else:
        raise KopfBenchError("the Widget CRD was never served")
    names = iter(range(count))

    async def creator() -> None:
        for index in names:
            body = {"apiVersion": f"{WIDGET.group}/{WIDGET.version}", "kind": WIDGET.kind,
                    "metadata": {"name": f"w-{index:05d}"}, "spec": {"size": index}}  # fmt: skip
            async with session.post(WIDGETS, json=body) as response:
                await _answer(response, 201)

    await asyncio.gather(*(creator() for _ in range(CREATE_CONCURRENCY)))


class _ReadyWatch:
    """Watches the Widgets from `resource_version`; `all_ready` is set when `count` of
    them have `status.phase` Ready."""

    def __init__(self, session: aiohttp.ClientSession, resource_version: str, count: int):
        self.all_ready = asyncio.Event()
        self._ready: set[str] = set()
        self._count = count
        self._task = asyncio.create_task(self._watch(session, resource_version))

    async def _watch(self, session: aiohttp.ClientSession, resource_version: str) -> None:
        params = {"watch": "true", "resourceVersion": resource_version,
                  "timeoutSeconds": "3600", "allowWatchBookmarks": "false"}  # fmt: skip
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with session.get(WIDGETS, params=params, timeout=timeout) as response:
            await _check_stream(response)
            async for line in response.content:
                event = json.loads(line)
                obj = event.get("object") or {}
                name = (obj.get("metadata") or {}).get("name", "")
                if (obj.get("status") or {}).get("phase") == "Ready":
                    self._ready.add(name)
                if len(self._ready) >= self._count:
                    self.all_ready.set()
                    return

    @property
    def ready(self) -> int:
        return len(self._ready)

    @property
    def failed(self) -> BaseException | None:
        return self._task.exception() if self._task.done() else None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _check_stream(response: aiohttp.ClientResponse) -> None:
    if response.status != 200:
        raise KopfBenchError(f"watching the Widgets -> {response.status}")


async def _until_ready(
    process: asyncio.subprocess.Process,
    watch: _ReadyWatch,
    *,
    count: int,
    ready_within: float,
    log: Path,
) -> None:
    deadline = time.monotonic() + ready_within
    while not watch.all_ready.is_set():
        if process.returncode is not None or watch.failed is not None:
            tail = _tail(log)
            raise KopfBenchError(
                f"the operator stopped (exit {process.returncode}) with {watch.ready} of "
                f"{count} Widgets Ready: {tail}"
            )
        if time.monotonic() > deadline:
            raise KopfBenchError(
                f"only {watch.ready} of {count} Widgets Ready after {ready_within:g} s"
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.all_ready.wait(), timeout=0.05)


async def verify(session: aiohttp.ClientSession, side: Side) -> None:
    """Every Widget has its `<name>-cm`, right and controlled by it; else KopfBenchError."""
    async with session.get(WIDGETS) as response:
        widgets = (await _answer(response, 200))["items"]
    async with session.get(CONFIG_MAPS) as response:
        config_maps = {
            item["metadata"]["name"]: item for item in (await _answer(response, 200))["items"]
        }
    wrong: list[str] = []
    for widget in widgets:
        name, uid = widget["metadata"]["name"], widget["metadata"]["uid"]
        child = config_maps.get(f"{name}-cm")
        owners = (child or {}).get("metadata", {}).get("ownerReferences") or []
        if child is None:
            wrong.append(f"{name}-cm is missing")
        elif (child.get("data") or {}).get("size") != str(widget["spec"]["size"]):
            wrong.append(f"{name}-cm holds {child.get('data')}")
        elif not any(ref.get("uid") == uid and ref.get("controller") for ref in owners):
            wrong.append(f"{name}-cm is not controlled by its Widget")
    if wrong:
        raise KopfBenchError(
            f"{side}'s work does not verify ({len(wrong)} of {len(widgets)}): "
            + "; ".join(wrong[:5])
        )


def requests_by_kind(entries: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Requests by `verb resource[/subresource]`, leaving out this harness's own."""
    counted = Counter(
        f"{entry['verb']} {entry['resource'] or 'discovery'}"
        + (f"/{entry['subresource']}" if entry.get("subresource") else "")
        for entry in entries
        if entry.get("user_agent") != HARNESS_AGENT
    )
    return dict(sorted(counted.items()))


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:]


def _lines(path: Path) -> int:
    with path.open(encoding="utf-8") as lines:
        return sum(1 for _ in lines)


async def run_side(
    side: Side, *, resources: int, scratch: Path, ready_within: float = 900
) -> SideRun:
    """Measure `side` on a fresh server in `scratch` (see the module docstring)."""
    audit, kubeconfig = scratch / "audit.jsonl", scratch / "apiserver.kubeconfig"
    async with server_process(scratch / "apiserver.db", "--audit-log", str(audit)) as (
        url,
        server_pid,
    ):
        headers = {"User-Agent": HARNESS_AGENT}
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(url, headers=headers, timeout=timeout) as session:
            await _prepare(session, resources)
            async with session.get(WIDGETS, params={"limit": "1"}) as response:
                version = (await _answer(response, 200))["metadata"]["resourceVersion"]
            watch = _ReadyWatch(session, version, resources)
            try:
                skip = _lines(audit)
                log = scratch / f"{side}.log"
                command = operator_command(
                    side, kubeconfig=kubeconfig, state_dir=scratch / "engine"
                )
                with log.open("wb") as output:
                    server_before = cpu_seconds(server_pid)
                    started = time.perf_counter()
                    process = await asyncio.create_subprocess_exec(
                        *command, stdout=output, stderr=asyncio.subprocess.STDOUT,
                        env=_environment(kubeconfig), cwd=scratch,
                    )  # fmt: skip
                try:
                    await _until_ready(
                        process, watch, count=resources, ready_within=ready_within, log=log
                    )
                    wall = time.perf_counter() - started
                    cpu = tree_cpu_seconds(process.pid)
                    peak = tree_peak_rss_kib(process.pid)
                    server_cpu = cpu_seconds(server_pid) - server_before
                    entries = read_audit(audit, skip=skip)
                finally:
                    await stop_process(process)
            finally:
                await watch.close()
            await verify(session, side)
    return SideRun(
        side=side,
        resources=resources,
        wall_s=round(wall, 3),
        cpu_s=round(cpu, 3),
        peak_rss_kib=peak,
        server_cpu_s=round(server_cpu, 3),
        requests=requests_by_kind(entries),
    )
