"""Processes for the fault tests, all on 127.0.0.1: the embedded API server
(`engine apiserver`), the example registry (`engine example-service`) and engines
(`engine run --kubeconfig …`), each a subprocess with its output in a log file, plus a
kubernetes-asyncio client and the Site CRD installed on the server.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from engine.example.site_resource import SITE

ROOT = Path(__file__).resolve().parents[2]
APISERVER_LINE = re.compile(r"API server listening on (http://127\.0\.0\.1:\d+)")
REGISTRY_LINE = re.compile(r"registry service listening on (http://127\.0\.0\.1:\d+)")
ENGINE_ENV: Mapping[str, str] = {
    "PYTHONUNBUFFERED": "1",
    "OTEL_SDK_DISABLED": "true",
    "OTEL_TRACES_EXPORTER": "none",
    "ENGINE_HEALTH_HOST": "127.0.0.1",
    "ENGINE_BACKOFF_CAP_SECONDS": "1",
    "ENGINE_MAX_CONCURRENT_RECONCILES": "8",
}
"""The engine's environment in the fault tests: no telemetry export, quick retries."""


async def _spawn(args: list[str], log: Path, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", *args,
            cwd=ROOT, env={**os.environ, **env},
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


def read_log(path: Path) -> str:
    """A process's output so far ("" before it wrote any)."""
    return path.read_text(errors="replace") if path.exists() else ""


async def _announced(process: asyncio.subprocess.Process, log: Path, line: re.Pattern[str]) -> str:
    """The URL `process` prints to `log`; fail with the log when it exits or takes > 30 s."""
    deadline = time.monotonic() + 30
    while (match := line.search(read_log(log))) is None:
        if process.returncode is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {line.pattern!r} in {log}:\n{read_log(log)}")
        await asyncio.sleep(0.05)
    return match.group(1)


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass
class Cluster:
    """A running API server and registry: their URLs, the kubeconfig, and a client."""

    workdir: Path
    apiserver_url: str
    kubeconfig: Path
    registry_url: str
    api: client.ApiClient
    engines: list[EngineProcess] = field(default_factory=list)

    def kubeconfig_for(self, url: str, name: str) -> Path:
        """A copy of the kubeconfig whose server is `url` (e.g. a fault proxy)."""
        document = yaml.safe_load(self.kubeconfig.read_text())
        document["clusters"][0]["cluster"]["server"] = url
        path = self.workdir / name
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)
        return path

    async def start_engine(
        self, name: str, *, kubeconfig: Path | None = None, env: Mapping[str, str] | None = None
    ) -> EngineProcess:
        """Start `engine run` with state dir `<workdir>/<name>` (kept across restarts)."""
        engine = EngineProcess(
            state_dir=self.workdir / name,
            kubeconfig=kubeconfig or self.kubeconfig,
            registry_url=self.registry_url,
            env={**ENGINE_ENV, **(env or {})},
        )
        await engine.start()
        self.engines.append(engine)
        return engine


@dataclass
class EngineProcess:
    """One engine's state dir and its current process (restart it with `start`)."""

    state_dir: Path
    kubeconfig: Path
    registry_url: str
    env: Mapping[str, str]
    process: asyncio.subprocess.Process | None = None
    starts: int = 0
    log_offset: int = 0

    @property
    def journal(self) -> Path:
        return self.state_dir / "journal.db"

    @property
    def log(self) -> Path:
        return self.state_dir.parent / f"{self.state_dir.name}.out"

    async def start(self) -> None:
        assert self.process is None or self.process.returncode is not None
        self.starts += 1
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        args = ["run", "--kubeconfig", str(self.kubeconfig), "--state-dir", str(self.state_dir),
                "--registry-url", self.registry_url, "--plain", "--health-port", "0"]  # fmt: skip
        self.process = await _spawn(args, self.log, self.env)

    def output(self) -> str:
        """What the current process printed so far."""
        if not self.log.exists():
            return ""
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            return log.read().decode(errors="replace")

    async def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert await self.process.wait() == -signal.SIGKILL

    async def stop(self) -> int:
        """SIGTERM (SIGKILL after 15 s); the exit code."""
        if self.process is None:
            return 0
        await _stop(self.process)
        assert self.process.returncode is not None
        return self.process.returncode


async def install_site_crd(api: client.ApiClient) -> None:
    """Create the Site CRD and wait until Sites can be listed."""
    extensions = client.ApiextensionsV1Api(api)
    await extensions.create_custom_resource_definition(SITE.crd())  # type: ignore[arg-type]
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + 15
    while True:
        try:
            await custom.list_namespaced_custom_object(SITE.group, SITE.version, "default", "sites")
            return
        except ApiException:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running_cluster(workdir: Path) -> AsyncIterator[Cluster]:
    """`engine apiserver` and `engine example-service` as subprocesses with their state in
    `workdir`, the Site CRD installed; every process started is stopped at the end."""
    processes: list[asyncio.subprocess.Process] = []
    async with AsyncExitStack() as stack:
        kubeconfig = workdir / "kubeconfig"
        api_log, registry_log = workdir / "apiserver.out", workdir / "registry.out"
        apiserver = await _spawn(
            ["apiserver", "--db", str(workdir / "api.db"), "--port", "0",
             "--kubeconfig", str(kubeconfig)], api_log, {},
        )  # fmt: skip
        processes.append(apiserver)
        registry = await _spawn(
            ["example-service", "--port", "0", "--state", str(workdir / "registry.json")],
            registry_log,
            {},
        )
        processes.append(registry)
        try:
            api_url = await _announced(apiserver, api_log, APISERVER_LINE)
            registry_url = await _announced(registry, registry_log, REGISTRY_LINE)
            api = await config.new_client_from_config(config_file=str(kubeconfig))
            stack.push_async_callback(api.close)
            await install_site_crd(api)
            cluster = Cluster(workdir, api_url, kubeconfig, registry_url, api)
            try:
                yield cluster
            finally:
                for engine in cluster.engines:
                    await engine.stop()
        finally:
            for process in reversed(processes):
                await _stop(process)
