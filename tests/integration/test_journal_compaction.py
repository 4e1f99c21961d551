"""`engine journal compact`: closed history moves to an archive segment; every live
stream folds to the same state, `journal check` verifies the chain across the cut, and
`engine replay --archive` shows the whole history again, byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.bench.journal import write_raw
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.cli.main import cli
from engine.fsm import events as ev
from engine.fsm.fold import fold
from engine.fsm.observation import Observation
from engine.fsm.state import ResourceState, to_snapshot
from engine.journal import NewEvent
from engine.journal.sqlite import SqliteJournal
from engine.replay.driver import StreamHistory
from engine.replay.retention import HistorySize, history_size
from engine.replay.timeline import ResourceId, stream_timeline

LONG = "example.com/Site/default/long-lived#uid-long"
GENERATIONS = 40


def generation_events(generation: int) -> list[NewEvent]:
    """One provisioning round of `generation` (a spec change after the first)."""
    key = f"uid-long:{generation}:provision"
    observed = Observation(
        uid="uid-long",
        generation=generation,
        resource_version=str(1000 + generation),
        spec_digest=f"{generation:064x}",
        has_finalizer=True,
    )
    source, trigger = ("Pending", "observed_live") if generation == 1 else ("Ready", "spec_changed")
    return [
        ev.observed(observed, watch_event="MODIFIED", spec={"domain": f"g{generation}.example"}),
        ev.transition_taken(
            source=source, dest="Provisioning", trigger=trigger, generation=generation
        ),
        ev.effect_started(key=key, name="provision", attempt=1, term=1),
        ev.effect_succeeded(key=key, name="provision", attempt=1, result=None, seconds=0.01),
        ev.transition_taken(
            source="Provisioning", dest="Ready", trigger="provisioned", generation=generation
        ),
    ]


async def add_long_lived_stream(path: Path) -> None:
    journal = await SqliteJournal.open(path)
    try:
        for generation in range(1, GENERATIONS + 1):
            await journal.append(LONG, generation_events(generation))
        records = await journal.read_stream(LONG)
        await journal.save_snapshot(LONG, len(records) - 5, to_snapshot(fold(records[:-5])))
    finally:
        await journal.close()


async def runtime_states(path: Path) -> dict[str, ResourceState]:
    """Every live stream folded as the engine folds it on a restart (snapshot + tail)."""
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        states = {}
        for stream in await journal.streams():
            snapshot = await journal.load_snapshot(stream)
            states[stream] = fold(await journal.read_stream(stream), snapshot=snapshot)
        return states
    finally:
        await journal.close()


def replay_states(path: Path) -> dict[str, ResourceState]:
    """Every live stream folded as `engine replay` folds it (from the cut's state)."""
    with StreamHistory(path) as history:
        states = {}
        for stream in history.streams():
            records, start = history.records(stream)
            timeline = stream_timeline(records, resource=ResourceId.of(stream), start=start)
            assert timeline is not None
            states[stream] = timeline.state
        return states


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / "journal.db"
    asyncio.run(write_raw(path, lifecycle_rows(6_000), "NORMAL"))  # 500 whole lifecycles, 250 begun
    asyncio.run(add_long_lived_stream(path))
    return path


def segment_of(path: Path) -> Path:
    (segment,) = path.parent.glob("journal.db.archive-*.jsonl.gz")
    return segment


def test_compaction_keeps_every_live_state_and_replay_with_the_archive_shows_it_all(
    journal_file: Path,
) -> None:
    before_runtime = asyncio.run(runtime_states(journal_file))
    before_replay = replay_states(journal_file)
    code, before_json = run("replay", str(journal_file), "--format", "json")
    assert code == 0

    code, output = run(
        "journal", "compact", str(journal_file), "--retention", "0s", "--min-history", "50"
    )
    assert code == 0, output
    assert "archived" in output
    segment = segment_of(journal_file)

    after_runtime = asyncio.run(runtime_states(journal_file))
    # the Deleted lifecycles are archived whole; the cut-off ones and the long one stay
    assert set(after_runtime) < set(before_runtime)
    assert LONG in after_runtime
    for stream, state in after_runtime.items():
        assert state == before_runtime[stream], stream
    for stream, state in replay_states(journal_file).items():
        assert state == before_replay[stream], stream
    live = (
        sqlite3.connect(journal_file)
        .execute("SELECT COUNT(*) FROM records WHERE stream = ?", (LONG,))
        .fetchone()[0]
    )
    assert live < GENERATIONS * 5  # the superseded generations went to the archive

    code, output = run("journal", "check", str(journal_file))
    assert code == 0, output
    assert "verified across the cut" in output

    code, with_archive = run(
        "replay", str(journal_file), "--format", "json", "--archive", str(segment)
    )
    assert code == 0, with_archive
    assert with_archive == before_json
    code, without = run("replay", str(journal_file), "--format", "json")
    assert code == 0
    assert len(json.loads(without)["resources"]) == len(after_runtime)


def test_dry_run_changes_nothing(journal_file: Path) -> None:
    content = journal_file.read_bytes()
    code, output = run("journal", "compact", str(journal_file), "--retention", "0s", "--dry-run")
    assert code == 0, output
    assert "would archive" in output
    assert journal_file.read_bytes() == content
    assert not list(journal_file.parent.glob("*.jsonl.gz"))


def test_retention_keeps_recently_deleted_streams(journal_file: Path) -> None:
    code, output = run(
        "journal", "compact", str(journal_file), "--retention", "36500d", "--min-history", "100000"
    )
    assert code == 0, output
    assert "nothing to archive" in output


def rewrite_segment(segment: Path, change: dict[str, object]) -> None:
    lines = gzip.decompress(segment.read_bytes()).decode().splitlines()
    record = json.loads(lines[5])
    record["data"] = {**record["data"], **change}
    lines[5] = json.dumps(record)
    segment.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_check_fails_on_a_changed_or_missing_archive(journal_file: Path) -> None:
    code, _ = run("journal", "compact", str(journal_file), "--retention", "0s")
    assert code == 0
    segment = segment_of(journal_file)
    kept = segment.read_bytes()
    rewrite_segment(segment, {"generation": 99})
    code, output = run("journal", "check", str(journal_file))
    assert code == 2
    assert "checksum does not match" in output
    segment.unlink()
    code, output = run("journal", "check", str(journal_file))
    assert code == 2
    assert "missing" in output
    assert "Traceback" not in output
    segment.write_bytes(kept)
    assert run("journal", "check", str(journal_file))[0] == 0


def test_compaction_refuses_while_an_engine_holds_the_journal(journal_file: Path) -> None:
    async def compact_while_open() -> tuple[int, str]:
        journal = await SqliteJournal.open(journal_file)
        try:
            return run("journal", "compact", str(journal_file), "--retention", "0s")
        finally:
            await journal.close()

    code, output = asyncio.run(compact_while_open())
    assert code == 2
    assert "open for writing by another process" in output


def test_a_bad_retention_is_one_line_and_exit_2(journal_file: Path) -> None:
    code, output = run("journal", "compact", str(journal_file), "--retention", "soon")
    assert code == 2
    assert "--retention 'soon' is not a duration" in output


def test_why_answers_the_same_after_the_cut(journal_file: Path) -> None:
    code, before = run("why", "default/long-lived", str(journal_file))
    assert code == 0, before
    assert (
        run("journal", "compact", str(journal_file), "--retention", "0s", "--min-history", "50")[0]
        == 0
    )
    code, after = run("why", "default/long-lived", str(journal_file))
    assert code == 0, after
    assert after == before
    assert "Ready" in after


def test_history_size_counts_what_a_restart_folds(journal_file: Path) -> None:
    async def size() -> HistorySize:
        journal = await SqliteJournal.open(journal_file, readonly=True)
        try:
            return await history_size(journal, LONG)
        finally:
            await journal.close()

    measured = asyncio.run(size())
    assert measured == HistorySize(LONG, records=GENERATIONS * 5, since_snapshot=5)
    assert measured.exceeds(4)
    assert not measured.exceeds(5)
