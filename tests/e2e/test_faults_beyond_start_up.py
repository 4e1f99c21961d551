"""SIGTERM during start-up: `engine run` stopped while it is still importing its modules
(before the run's own signal handlers exist) ends with exit code 0 and no traceback, as
a stop asked for. A real `python -m engine run --local` process and a real signal."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.fault_harness import ENGINE_ENV, ROOT, read_log

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def _start(tmp_path: Path, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine", "run", "--local", "--no-samples", "--plain",
            "--state-dir", str(tmp_path / "state"), "--health-port", "0",
            cwd=ROOT, env={**os.environ, **ENGINE_ENV},
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip


def _loaded(pid: int, library: str) -> bool:
    """Whether the process has mapped a shared object whose path holds `library`."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


async def _until(what: str, check: Callable[[], bool], process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert process.returncode is None, f"exited before {what}"
        assert time.monotonic() < deadline, f"not within 30 s: {what}"
        await asyncio.sleep(0.005)


async def test_sigterm_while_the_run_imports_its_modules_exits_0(tmp_path: Path) -> None:
    log = tmp_path / "engine.out"
    process = await _start(tmp_path, log)
    # the run's modules are being imported (SQLite's extension is mapped: the CLI's own
    # module does not import it, the run's do): no handler of the run is installed yet
    await _until("the run imports sqlite3", lambda: _loaded(process.pid, "_sqlite3"), process)
    process.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.wait(), 20)
    output = read_log(log)
    assert code == 0, output
    assert "Traceback" not in output, output
    assert "embedded API server at" not in output, "the signal came too late to test this"
