"""Engine processes forked from a server that has imported the engine once.

`engine run` spends about two seconds of CPU importing its modules before it does
anything; a crash-point test starts the engine a dozen times. Here a multiprocessing
fork server imports the engine's modules once, and each start forks a fresh process from
it: a separate OS process with its own pid, environment, journal connections and event
loop, running the same `engine run` command line (`engine.cli.main`), killed by SIGKILL
exactly as a spawned one. Its output goes to the engine's log file.

The failpoint table is read from the environment when `engine.failpoint` is imported;
the forked child sets its environment and then reads that table again
(`importlib.reload`, the module's own import-time code), so each start arms its own
points.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

from tests.support.fault_harness import ROOT, EngineProcess

PRELOAD = [
    "engine.cli.main",
    "engine.cli.run_engine",
    "engine.runtime.manager.controller",
    "engine.example.site",
    "kubernetes_asyncio.client",
    "aiohttp",
]
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def _engine_main(args: Sequence[str], env: Mapping[str, str], log: str) -> None:
    """The forked child: its environment, output to `log`, then `engine <args>`."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(ROOT)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    importlib.reload(importlib.import_module("engine.failpoint"))
    from engine.cli.main import cli

    cli.main(list(args), prog_name="engine", standalone_mode=True)


@dataclass
class ForkedProcess:
    """The parts of `asyncio.subprocess.Process` the fault harness uses."""

    child: BaseProcess

    @property
    def pid(self) -> int:
        assert self.child.pid is not None
        return self.child.pid

    @property
    def returncode(self) -> int | None:
        return self.child.exitcode

    def send_signal(self, number: int) -> None:
        if self.child.exitcode is None:
            os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        while self.child.exitcode is None:
            await asyncio.to_thread(self.child.join, 0.2)
        return self.child.exitcode


class ForkedEngine(EngineProcess):
    """An `EngineProcess` whose starts fork from the preloaded server."""

    async def start(self) -> None:
        assert self.process is None or self.process.returncode is not None
        self.starts += 1
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        args = ["run", "--kubeconfig", str(self.kubeconfig), "--state-dir", str(self.state_dir),
                "--registry-url", self.registry_url, "--plain", "--health-port", "0"]  # fmt: skip
        env = {**os.environ, **self.env}
        child = _CONTEXT.Process(
            target=_engine_main, args=(args, env, str(self.log)), name="engine", daemon=False
        )
        await asyncio.to_thread(child.start)
        self.process = ForkedProcess(child)  # type: ignore[assignment]


def warm_up() -> None:
    """Start the fork server now, in a thread, so its imports overlap other start-up."""
    from multiprocessing import forkserver

    threading.Thread(target=forkserver.ensure_running, name="fork server", daemon=True).start()


def forked_engine(
    state_dir: Path, kubeconfig: Path, registry_url: str, env: Mapping[str, str]
) -> ForkedEngine:
    """A `ForkedEngine` on `state_dir`, not started."""
    return ForkedEngine(
        state_dir=state_dir, kubeconfig=kubeconfig, registry_url=registry_url, env=env
    )


async def run_forked(args: Sequence[str], env: Mapping[str, str], log: Path) -> int:
    """`engine <args>` forked from the preloaded server with `env` added, its output
    appended to `log`, until it ends; its exit code (`-9` for a SIGKILL)."""
    child = _CONTEXT.Process(
        target=_engine_main, args=(list(args), {**os.environ, **env}, str(log)), name="engine"
    )
    await asyncio.to_thread(child.start)
    return await ForkedProcess(child).wait()
