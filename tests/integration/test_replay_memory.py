"""Replay streams the journal: its peak memory does not grow with the journal's size,
and `--resource` reads one stream through the stream index."""

from __future__ import annotations

import asyncio
import sqlite3
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from engine.bench.journal import write_raw
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal.offline_reader import SELECT_ONE_STREAM
from engine.replay.driver import StreamHistory, stream_timelines
from engine.replay.render_json import json_chunks
from engine.replay.render_table import table_chunks
from engine.replay.timeline import StreamTimeline

Render = Callable[[Iterable[StreamTimeline]], Iterator[str]]


def lifecycle_journal(path: Path, records: int) -> Path:
    asyncio.run(write_raw(path, lifecycle_rows(records), "NORMAL"))
    return path


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replay-memory")
    return lifecycle_journal(root / "small.db", 12_000), lifecycle_journal(
        root / "large.db", 60_000
    )


def replay_peak(path: Path, render: Render) -> tuple[int, int]:
    """Peak traced bytes of a whole replay as the CLI runs it, and the bytes written."""
    written = 0
    tracemalloc.start()
    try:
        with StreamHistory(path) as history:
            for chunk in render(stream_timelines(history, history.streams())):
                written += len(chunk)
        return tracemalloc.get_traced_memory()[1], written
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "render",
    [pytest.param(json_chunks, id="json"), pytest.param(table_chunks, id="table")],
)
def test_peak_memory_does_not_grow_with_the_journal(
    journals: tuple[Path, Path], render: Render
) -> None:
    small, large = journals
    small_peak, small_written = replay_peak(small, render)
    large_peak, large_written = replay_peak(large, render)
    assert large_written > 4.5 * small_written  # five times the records, all written out
    # holding the timelines, the peak would grow fivefold; streamed, it stays (the cyclic
    # collector's timing moves it by a few hundred kilobytes either way)
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
    assert large_peak < large_written / 20  # far less than the output it produced


def test_one_resource_is_read_through_the_stream_index(journals: tuple[Path, Path]) -> None:
    small, _large = journals
    connection = sqlite3.connect(small)
    try:
        plan = connection.execute("EXPLAIN QUERY PLAN " + SELECT_ONE_STREAM, ("x",)).fetchall()
    finally:
        connection.close()
    details = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH r USING INDEX" in details
    assert "(stream=?)" in details
    assert "SCAN r" not in details
    with StreamHistory(small) as history:
        (stream,) = history.streams("default/site-000123")
        (timeline,) = stream_timelines(history, [stream])
    assert timeline.resource.name == "site-000123"
    assert timeline.records == 11  # an odd-numbered site: its lifecycle without the echo
