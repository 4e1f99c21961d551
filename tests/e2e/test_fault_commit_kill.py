"""C1 and C2 at the journal with SIGKILL, not `raise`: a process appends one record
after three acknowledged ones with `journal.before_commit=kill` (inserted, not committed)
or `journal.after_commit=kill` (committed, the caller never told) armed in its
environment, and dies there. Reopened: the three acknowledged records are there (R1),
the killed batch is absent (C1: no rollback ran, SQLite's own recovery drops it) or
present (C2), the chain checks, and the next append continues the chain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.journal import NewEvent
from engine.journal.sqlite import SqliteJournal
from tests.support.fault_harness import ROOT
from tests.support.history import journal_check

pytestmark = [pytest.mark.e2e]

WRITER = textwrap.dedent(
    """
    import asyncio, importlib, os, sys
    import engine.failpoint
    from engine.journal import NewEvent
    from engine.journal.sqlite import SqliteJournal

    async def main(path, point):
        journal = await SqliteJournal.open(path)
        for n in range(1, 4):
            await journal.append("s", [NewEvent("Observed", {"n": n}, idempotency_key=f"k{n}")])
        print("acknowledged 3", flush=True)
        # armed now, for the fourth append only (the table is read when the module loads)
        os.environ["ENGINE_FAILPOINTS"] = point + "=kill"
        importlib.reload(engine.failpoint)
        await journal.append("s", [NewEvent("Observed", {"n": 4}, idempotency_key="k4")])
        print("acknowledged 4", flush=True)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def run_writer(path: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(path), point],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("point", "kept"), [("journal.before_commit", 3), ("journal.after_commit", 4)]
)
async def test_a_kill_inside_or_right_after_the_commit_keeps_every_acknowledged_record(
    tmp_path: Path, point: str, kept: int
) -> None:
    path = tmp_path / "journal.db"
    done = await asyncio.to_thread(run_writer, path, point)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["acknowledged 3"]

    code, out = await journal_check(path)
    assert code == 0, out
    journal = await SqliteJournal.open(path)
    try:
        records = await journal.read_stream("s")
        assert [r.data["n"] for r in records] == list(range(1, kept + 1))
        assert (await journal.find_by_key("k4") is not None) == (kept == 4)
        await journal.append("s", [NewEvent("Observed", {"n": 5}, idempotency_key="k5")])
        assert await journal.verify() == kept + 1
    finally:
        await journal.close()
