"""A replay over worker processes (`engine replay --workers 2`, what a journal above
100,000 records gets by default) folds and renders chunks of streams in each: its JSON
and its tables are byte for byte those of one process, a window included, and a record
that cannot be folded is one clear line, exit code 2, as in one process."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine.bench.journal import write_raw
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.fsm import events as ev
from engine.journal.codec import GENESIS, encode_at, encode_event, make_row
from engine.journal.record import NewEvent
from engine.replay.chunked import ChunkPool, Rendering
from engine.replay.driver import StreamHistory, stream_timelines
from engine.replay.render_json import json_chunks, json_document
from engine.replay.render_table import table_chunks
from engine.replay.timeline import Window

RESOURCES = 60
RECORDS = 690  # 60 whole interleaved lifecycles, half of them with the status echo
CHUNK = 8  # several chunks of streams per worker


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay-workers") / "journal.db"
    asyncio.run(write_raw(path, lifecycle_rows(RECORDS, wave=RESOURCES), "NORMAL"))
    return path


def test_two_workers_write_the_bytes_one_process_writes(journal: Path) -> None:
    window = Window(since_position=200, until_position=500)
    with ChunkPool(journal, 2, chunk=CHUNK) as pool, StreamHistory(journal) as history:
        alone_json = "".join(json_chunks(stream_timelines(history, history.streams())))
        split_json = "".join(json_document(pool.texts(history.streams(), Rendering("json", 200))))
        alone_window = "".join(
            json_chunks(stream_timelines(history, history.streams(), window=window))
        )
        split_window = "".join(
            json_document(pool.texts(history.streams(), Rendering("json", 200, window)))
        )
        alone_table = "".join(table_chunks(stream_timelines(history, history.streams()), width=90))
        split_table = "".join(pool.texts(history.streams(), Rendering("table", 90)))
    assert split_json == alone_json
    assert split_window == alone_window != alone_json
    assert split_table == alone_table
    assert alone_json.count('"stream": ') == RESOURCES
    assert alone_json.count('"to": "Deleted"') == RESOURCES  # every lifecycle, whole


def test_chunks_pass_through_the_spool_or_without_it_through_the_pipe(journal: Path) -> None:
    with StreamHistory(journal) as history:
        alone = "".join(table_chunks(stream_timelines(history, history.streams()), width=90))
        with ChunkPool(journal, 2, chunk=CHUNK) as pool:
            spool = pool.spool
            assert spool.is_dir()
            assert "".join(pool.texts(history.streams(), Rendering("table", 90))) == alone
            assert not any(spool.iterdir())  # each chunk's file is removed once read
        assert not spool.exists()
        with ChunkPool(journal, 2, chunk=CHUNK) as pool:
            shutil.rmtree(pool.spool)  # a spool gone (or full): the workers send the text
            assert "".join(pool.texts(history.streams(), Rendering("table", 90))) == alone


def test_a_record_a_worker_cannot_fold_is_one_clear_line(tmp_path: Path) -> None:
    at = encode_at(datetime(2026, 1, 1, tzinfo=UTC))
    bad = NewEvent(
        type=ev.TRANSITION_TAKEN,
        data={
            "from": "Ready",
            "to": "Finalizing",
            "trigger": "deletion_requested",
            "generation": 1,
        },
    )
    rows, previous = [], GENESIS
    last = 20
    for position in range(1, last + 1):
        event = bad if position == last else NewEvent(type="Noted", data={"n": position})
        row = make_row(
            previous,
            position=position,
            stream=f"example.com/Site/default/s-{position:05d}#uid-{position}",
            stream_version=1,
            event=encode_event(event),
            at=at,
            term=1,
        )
        rows.append(row)
        previous = row.checksum
    path = tmp_path / "journal.db"
    asyncio.run(write_raw(path, rows, "NORMAL"))
    result = subprocess.run(
        [sys.executable, "-m", "engine", "replay", str(path), "--format", "json", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot fold the journal at position {last}" in result.stderr


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler of its own for `signum` (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(
        next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16
    )
    return bool(caught >> (signum - 1) & 1)


def test_workers_end_on_terminate_whatever_sigterm_handler_the_parent_has(journal: Path) -> None:
    # the CLI turns SIGTERM into SystemExit; a worker that inherited that handler could
    # miss the signal while blocking on the task queue's lock and never exit
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    before = signal.signal(signal.SIGTERM, stop)
    try:
        with ChunkPool(journal, 2, chunk=CHUNK) as pool, StreamHistory(journal) as history:
            assert "".join(pool.texts(history.streams(), Rendering("table", 90)))
            workers = multiprocessing.active_children()
            assert len(workers) == 2
            assert _catches(os.getpid(), signal.SIGTERM)
            assert not any(_catches(worker.pid, signal.SIGTERM) for worker in workers)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.fixture(scope="module")
def several_chunks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A journal of 300 whole lifecycles: more streams than one chunk of the command's."""
    path = tmp_path_factory.mktemp("replay-chunks") / "journal.db"
    asyncio.run(write_raw(path, lifecycle_rows(3_450, wave=300), "NORMAL"))
    return path


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_the_command_over_two_workers_writes_the_bytes_of_one_process(
    several_chunks: Path, fmt: str
) -> None:
    # the workers' UTF-8 pieces go to stdout as they are, joined (JSON) as bytes; one
    # process encodes its own text
    def replay(workers: str) -> bytes:
        command = [sys.executable, "-m", "engine", "replay", str(several_chunks), "--format", fmt]
        done = subprocess.run(
            [*command, "--workers", workers], capture_output=True, timeout=120, check=True
        )
        return done.stdout

    alone = replay("1")
    assert replay("2") == alone
    assert alone.count(b"Deleted") >= 300  # every lifecycle, to its end
