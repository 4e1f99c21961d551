"""kill -9 between `EffectStarted` and its outcome: recovery calls again with the same key,
and the SQLite journal keeps exactly one success per key (R3, R4; the C4 crash point)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from engine.clock import SystemClock
from engine.effects import EffectRunner, RunnerDeps
from engine.fsm import events as ev
from engine.fsm import fold
from engine.journal.sqlite import SqliteJournal

STREAM = "example.com/Bucket/default/b1#u1"
KEY = "u1:1:create-bucket"
ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from engine.clock import SystemClock
    from engine.effects import EffectRunner, RunnerDeps
    from engine.journal.sqlite import SqliteJournal

    async def main(db, target, key, stream):
        journal = await SqliteJournal.open(db, clock=SystemClock())
        runner = EffectRunner(RunnerDeps(journal=journal, clock=SystemClock()))

        async def create(k):
            with open(target, "a") as log:
                log.write(k + "\\n")
            await asyncio.sleep(3600)  # killed here: the call was sent, no result yet

        await runner.run(stream, key, "create-bucket", create)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def wait_for_line(path: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return
        time.sleep(0.02)
    raise AssertionError(f"the child never called the effect ({path})")


def crash_child_inside_the_call(db: Path, target: Path) -> int:
    """Start a child that runs the effect; kill -9 it once the call was sent."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(target), KEY, STREAM],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_for_line(target, time.monotonic() + 30)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    return child.returncode


async def test_kill_between_start_and_outcome_reruns_once_with_the_same_key(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    target = tmp_path / "target.log"
    returncode = await asyncio.to_thread(crash_child_inside_the_call, db, target)
    assert returncode == -signal.SIGKILL
    assert target.read_text().splitlines() == [KEY]

    journal = await SqliteJournal.open(db, clock=SystemClock())
    try:
        state = fold(await journal.read_stream(STREAM))
        assert [r.key for r in state.pending_effects] == [KEY]

        calls: list[str] = []

        async def create(key: str) -> Any:
            calls.append(key)
            with target.open("a") as log:
                log.write(key + "\n")
            return {"bucket": "b1"}

        runner = EffectRunner(RunnerDeps(journal=journal, clock=SystemClock()))
        assert await runner.run(STREAM, KEY, "create-bucket", create) == {"bucket": "b1"}
        assert await runner.run(STREAM, KEY, "create-bucket", create) == {"bucket": "b1"}
        assert calls == [KEY]
        assert target.read_text().splitlines() == [KEY, KEY]

        # a second success for the key (a racing writer) is not recorded
        duplicate = ev.effect_succeeded(key=KEY, name="create-bucket", attempt=3, result={})
        await journal.append(STREAM, [duplicate])

        records = await journal.read_stream(STREAM)
        started = [r.data["attempt"] for r in records if r.type == ev.EFFECT_STARTED]
        successes = [r for r in records if r.type == ev.EFFECT_SUCCEEDED]
        assert started == [1, 2]
        assert len(successes) == 1
        assert successes[0].data["result"] == {"bucket": "b1"}
        record = fold(records).effect(KEY)
        assert record is not None
        assert (record.attempts, record.outcome) == (2, "succeeded")
    finally:
        await journal.close()
