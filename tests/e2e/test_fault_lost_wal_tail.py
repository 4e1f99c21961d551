"""A lost `-wal` is detected (J9).

A process appends to the journal and is killed by SIGKILL: the last commits are in the
`-wal` file only (no checkpoint ran). When that file is lost (deleted by hand, not
copied with the database, a backup of the main file alone), the records and the chain
head roll back together, so the journal would open as a consistent, shorter one; the
head marker beside the file (`journal.db.head`) says how far it had got, and the
journal is refused as corrupt."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from engine.journal import JournalError
from engine.journal.sqlite import SqliteJournal
from tests.support.fault_harness import ROOT

WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from engine.journal import NewEvent
    from engine.journal.sqlite import SqliteJournal

    async def main(path):
        journal = await SqliteJournal.open(path)
        for n in range(1, 41):
            await journal.append("s", [NewEvent("Observed", {"n": n})])
        print("acknowledged 40", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint

    asyncio.run(main(sys.argv[1]))
    """
)


def kill_a_writer_after_40_appends(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert "acknowledged 40" in done.stdout


async def records_in(path: Path) -> int:
    """The records the journal at `path` opens with (JournalError: it refused)."""
    journal = await SqliteJournal.open(path)
    try:
        return len([record async for record in journal.read_all()])
    finally:
        await journal.close()


async def test_a_journal_whose_wal_was_lost_after_a_kill_is_not_opened_as_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    await asyncio.to_thread(kill_a_writer_after_40_appends, path)
    wal = path.with_name(path.name + "-wal")
    assert wal.stat().st_size > 0, "the last commits should be in the -wal only"
    wal.unlink()
    try:
        count = await records_in(path)
    except JournalError:
        return  # detected: what must hold
    raise AssertionError(f"opened with {count} of the 40 acknowledged records, no error")
