"""Kills by SIGKILL during the journal's own storage work (C11, C12): a snapshot save
(`snapshot.before_commit`), a compaction by `engine journal compact` after its archive
segment is written (`compaction.after_segment`) and inside its commit
(`compaction.before_commit`), and the creation of a new PostgreSQL journal by `engine
journal copy`, which is the migration from schema version 0 (`migration.before_commit`).
After each kill the journal holds every record it had (R1) and checks (R2), the
interrupted work is either wholly there or wholly absent, and doing it again succeeds.
(The engine's own first start killed inside the creation of its SQLite journal is in
`test_fault_crash_points.py`.)

The engine commands run forked from a server that imported the engine once
(`tests.support.engine_forks`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from engine.journal import NewEvent
from engine.journal.chain_check import check_journal
from engine.journal.offline_reader import OfflineReader
from engine.journal.postgres import PostgresJournal
from engine.journal.sqlite import SqliteJournal
from tests.integration.test_journal_compaction import LONG, add_long_lived_stream, runtime_states
from tests.support.engine_forks import run_forked, warm_up
from tests.support.fault_harness import ROOT
from tests.support.postgres import Schemas, postgres_schemas, postgres_server

__all__ = ["postgres_schemas", "postgres_server"]  # the fixtures, for the PostgreSQL case

pytestmark = [pytest.mark.e2e]

SNAPSHOT_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from engine.journal.sqlite import SqliteJournal

    async def main(path, stream):
        journal = await SqliteJournal.open(path)
        version = await journal.stream_version(stream)
        print("saving", flush=True)
        await journal.save_snapshot(stream, version, {"phase": "Ready", "version": version})
        print("saved", flush=True)

    asyncio.run(main(*sys.argv[1:]))
    """
)


def _save_snapshot_killed(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SNAPSHOT_WRITER, str(path), LONG],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT),
                       "ENGINE_FAILPOINTS": "snapshot.before_commit=kill"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_a_kill_during_a_snapshot_save_keeps_the_old_snapshot_and_every_record(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    await add_long_lived_stream(path)  # 200 records, a snapshot at version 195
    done = await asyncio.to_thread(_save_snapshot_killed, path)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["saving"]

    assert check_journal(path).records == 200
    journal = await SqliteJournal.open(path)
    try:
        kept = await journal.load_snapshot(LONG)  # checksummed: the old one, whole
        assert kept is not None
        assert kept.version == 195
        await journal.save_snapshot(LONG, 200, {"phase": "Ready"})
        saved = await journal.load_snapshot(LONG)
        assert saved is not None
        assert saved.version == 200
    finally:
        await journal.close()


def _segments(path: Path) -> tuple[list[str], list[str]]:
    """The segments the journal lists, and the segment files beside it."""
    with OfflineReader.open(path) as reader:
        listed = [name for name, *_ in reader.segments()]
    files = sorted(p.name for p in path.parent.glob(f"{path.name}.archive-*"))
    return listed, files


async def test_a_compaction_killed_after_its_segment_or_inside_its_commit_changes_nothing(
    tmp_path: Path,
) -> None:
    warm_up()
    path = tmp_path / "journal.db"
    await add_long_lived_stream(path)
    states = await runtime_states(path)
    compact = ["journal", "compact", str(path), "--retention", "0s", "--min-history", "50"]
    log = tmp_path / "compact.out"
    for number, point in enumerate(("compaction.after_segment", "compaction.before_commit"), 1):
        code = await run_forked(compact, {"ENGINE_FAILPOINTS": f"{point}=kill"}, log)
        assert code == -signal.SIGKILL, log.read_text()
        assert check_journal(path).records == 200, point  # nothing archived, nothing lost
        listed, files = _segments(path)
        assert listed == [], point
        assert len(files) == number, files  # the killed run's segment stays, unlisted
        assert await runtime_states(path) == states

    assert await run_forked(compact, {}, log) == 0, log.read_text()
    result = check_journal(path)
    assert (result.records, result.archived, result.segments) == (5, 195, 1)
    listed, files = _segments(path)
    assert listed == ["journal.db.archive-000003.jsonl.gz"]  # after the two left over
    assert await runtime_states(path) == states


async def test_a_kill_inside_a_new_postgresql_journals_creation_leaves_no_schema_behind(
    tmp_path: Path, postgres_schemas: Schemas
) -> None:
    """`engine journal copy` into an empty PostgreSQL schema, killed inside the migration
    from version 0: no table is left; the next copy creates the journal and fills it."""
    warm_up()
    source = tmp_path / "source.db"
    opened = await SqliteJournal.open(source)
    try:
        for n in range(3):
            await opened.append("s", [NewEvent("Observed", {"n": n})])
    finally:
        await opened.close()
    target = postgres_schemas.new()
    copy = ["journal", "copy", str(source), target]
    log = tmp_path / "copy.out"
    code = await run_forked(copy, {"ENGINE_FAILPOINTS": "migration.before_commit=kill"}, log)
    assert code == -signal.SIGKILL, log.read_text()
    assert _tables(target) == set()  # one transaction: nothing of the new schema is there

    assert await run_forked(copy, {}, log) == 0, log.read_text()
    assert "copied 3 records" in log.read_text()
    journal = await PostgresJournal.open(target, readonly=True)
    try:
        assert await journal.verify() == 3
    finally:
        await journal.close()


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
    return {str(row[0]) for row in rows}


CHECKPOINTER = textwrap.dedent(
    """
    import sqlite3, sys

    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    print("checkpointing", flush=True)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    print("checkpointed", flush=True)
    """
)
HOLDER = textwrap.dedent(
    """
    import sqlite3, sys

    connection = sqlite3.connect(sys.argv[1], isolation_level=None)
    connection.execute("BEGIN")
    connection.execute("SELECT COUNT(*) FROM records").fetchall()
    print("holding", flush=True)
    sys.stdin.readline()
    connection.execute("COMMIT")
    print("released", flush=True)
    sys.stdin.readline()
    """
)


async def _python(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _said(process: asyncio.subprocess.Process) -> bytes:
    assert process.stdout is not None
    return await process.stdout.readline()


@pytest.mark.parametrize("after_ms", [0, 1, 3])
async def test_a_kill_during_a_wal_checkpoint_loses_no_record_and_the_chain_checks(
    tmp_path: Path, after_ms: int
) -> None:
    """Every process on the journal is gone by SIGKILL while a checkpoint copies a long
    `-wal` into the database file, as when the engine is killed inside one (a reader in
    another process held the frames in the `-wal` while they were written, so the
    checkpoint has them all to do). The next open recovers: every record, the chain."""
    path = tmp_path / "journal.db"
    records, pad = 4000, "x" * 1500
    journal = await SqliteJournal.open(path)
    holder = await _python(HOLDER, str(path))
    assert holder.stdin is not None
    try:
        assert await _said(holder) == b"holding\n"
        for batch in range(records // 50):  # 50 streams at once: one group commit
            appends = [
                journal.append(f"s-{n}", [NewEvent(type="Observed", data={"b": batch, "p": pad})])
                for n in range(50)
            ]
            await asyncio.gather(*appends)
        await journal.close()  # not the last connection: no checkpoint at its close
        holder.stdin.write(b"release\n")
        assert await _said(holder) == b"released\n"
        wal = path.parent / (path.name + "-wal")
        assert wal.stat().st_size > 5_000_000, wal.stat().st_size  # the checkpoint's work
        checkpointer = await _python(CHECKPOINTER, str(path))
        assert await _said(checkpointer) == b"checkpointing\n"
        await asyncio.sleep(after_ms / 1000)
        checkpointer.kill()
        assert await checkpointer.wait() == -signal.SIGKILL
        assert await _said(checkpointer) == b"", "killed before the checkpoint finished"
    finally:
        holder.kill()  # killed too: no connection closes cleanly
        await holder.wait()

    assert check_journal(path).records == records  # R1, R2: every record, chain intact
    journal = await SqliteJournal.open(path)  # the writable open's page check passes
    try:
        assert await journal.stream_version("s-7") == records // 50
        assert await journal.append("s-7", [NewEvent(type="Observed")]) == (records + 1,)
    finally:
        await journal.close()
    assert check_journal(path).records == records + 1
