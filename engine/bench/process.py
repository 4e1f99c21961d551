"""Stopping the child processes a benchmark starts (API server, example service)."""

from __future__ import annotations

import asyncio

STOP_GRACE_SECONDS = 10.0


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM `process`, and SIGKILL it if it has not exited within the grace period."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=STOP_GRACE_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
