"""`engine bench journal`: the journal against plain aiosqlite on the same machine, one run.

Each figure has its ceiling measured beside it (raw executemany for appends, raw SELECT
plus json.loads for replay), so the ratios say what the journal's own work costs:
encoding, checksums, the group-commit writer task and waking the callers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from engine.bench.journal_replay import RESOURCE_RUNS, measure_replay
from engine.bench.lifecycle_rows import lifecycle_rows
from engine.journal import NewEvent
from engine.journal.codec import EncodedEvent, Row, encode_at, encode_event, make_row
from engine.journal.schema import INSERT_RECORD, SELECT_FROM
from engine.journal.sqlite import SqliteJournal, Synchronous

RAW_ROWS = 50_000
APPENDS = {1: 2_000, 16: 20_000, 256: 50_000}
BATCH = 1_000


@dataclass(frozen=True, slots=True)
class JournalFigures:
    """One run's figures: the keys of `engine bench journal --json`. The `replay_*` and
    `check_s` figures are over a realistic lifecycle journal of `--events` records
    (`engine.bench.journal_replay`)."""

    raw_insert_eps: float
    append_eps_c1: float
    append_eps_c16: float
    append_eps_c256: float
    append_p50_ms_c1: float
    append_p99_ms_c1: float
    raw_read_eps: float
    replay_eps: float
    replay_fold_eps: float
    ratio_append: float
    ratio_replay: float
    replay_json_s: float
    replay_table_s: float
    replay_peak_rss_mb: float
    replay_resource_s: float
    check_s: float

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def observed_event(n: int) -> NewEvent:
    """An event shaped like a real `Observed` (about 300 bytes of JSON)."""
    return NewEvent(
        type="Observed",
        data={
            "event": "MODIFIED",
            "resourceVersion": str(100_000 + n),
            "generation": 1 + n % 7,
            "specDigest": f"sha256:{n:064x}",
            "spec": {
                "replicas": 3,
                "image": "registry.example.com/team/app:1.24.3",
                "storage": {"size": "10Gi", "class": "fast"},
                "tier": "gold",
            },
        },
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
    )


def chained_rows(count: int, *, streams: int = 1000) -> Iterator[Row]:
    """`count` valid, chained journal rows of `observed_event`s over `streams` streams."""
    at = encode_at(datetime.now(UTC))
    previous = "0" * 64
    versions = [0] * streams
    for n in range(count):
        event: EncodedEvent = encode_event(observed_event(n))
        stream = n % streams
        versions[stream] += 1
        row = make_row(
            previous,
            position=n + 1,
            stream=f"example.com/Database/default/db-{stream}#uid-{stream}",
            stream_version=versions[stream],
            event=event,
            at=at,
            term=1,
        )
        previous = row.checksum
        yield row


async def _empty_journal(path: Path) -> None:
    journal = await SqliteJournal.open(path)
    await journal.close()


async def _raw_connection(path: Path, synchronous: Synchronous) -> aiosqlite.Connection:
    connection = await aiosqlite.connect(path, isolation_level=None)
    await connection.execute("PRAGMA journal_mode = WAL")
    await connection.execute(f"PRAGMA synchronous = {synchronous}")
    return connection


async def write_raw(path: Path, rows: Iterable[Row], synchronous: Synchronous) -> float:
    """Insert `rows` with plain executemany, 1,000 per transaction; return rows/s.

    The rows go into a fresh journal's own table (same columns, indexes and chain-head
    trigger), so the file is a valid journal afterwards.
    """
    await _empty_journal(path)
    connection = await _raw_connection(path, synchronous)
    source = iter(rows)
    count = 0
    try:
        started = time.perf_counter()
        while chunk := list(itertools.islice(source, BATCH)):
            await connection.execute("BEGIN IMMEDIATE")
            await connection.executemany(INSERT_RECORD, chunk)  # a trigger moves the head
            await connection.execute("COMMIT")
            count += len(chunk)
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


async def measure_appends(
    path: Path, *, concurrency: int, total: int, synchronous: Synchronous
) -> tuple[float, list[float]]:
    """Appends/s with `concurrency` tasks each awaiting one event at a time, and latencies."""
    journal = await SqliteJournal.open(path, synchronous=synchronous)
    latencies: list[float] = []
    per_task = total // concurrency

    async def appender(task: int) -> None:
        stream = f"example.com/Database/default/db-{task}#uid-{task}"
        for n in range(per_task):
            event = observed_event(task * per_task + n)
            began = time.perf_counter()
            await journal.append(stream, [event])
            latencies.append(time.perf_counter() - began)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(appender(task) for task in range(concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await journal.close()
    return per_task * concurrency / elapsed, latencies


async def read_raw(path: Path) -> float:
    """Rows/s of plain sequential SELECT + json.loads, in batches like `read_all`."""
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        started = time.perf_counter()
        position, count = 1, 0
        while True:
            rows = list(await connection.execute_fetchall(SELECT_FROM, (position, BATCH)))
            if not rows:
                break
            for row in rows:
                json.loads(row[6])
            count += len(rows)
            position = rows[-1][0] + 1
        return count / (time.perf_counter() - started)
    finally:
        await connection.close()


async def replay(path: Path) -> float:
    """Records/s of `read_all` with every checksum verified."""
    journal = await SqliteJournal.open(path, readonly=True)
    try:
        started = time.perf_counter()
        count = 0
        async for _record in journal.read_all(batch_size=BATCH):
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        await journal.close()


async def run_bench(
    *, events: int = 1_000_000, synchronous: Synchronous = "FULL"
) -> JournalFigures:
    """Measure everything in a temporary directory and return the figures.

    `events` sets the replay size; below the default part sizes it also caps the raw
    insert and append counts, so a test can run the whole bench quickly.
    """
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as directory:
        root = Path(directory)
        # a small --events run (for tests) shrinks every part, never below one row per task
        raw_rows = min(RAW_ROWS, max(events, 256))
        raw_insert = await write_raw(root / "raw.db", list(chained_rows(raw_rows)), synchronous)
        append_eps: dict[int, float] = {}
        latencies: list[float] = []
        for concurrency, total in APPENDS.items():
            eps, measured = await measure_appends(
                root / f"c{concurrency}.db",
                concurrency=concurrency,
                total=min(total, max(events, concurrency)),
                synchronous=synchronous,
            )
            append_eps[concurrency] = eps
            if concurrency == 1:
                latencies = measured
        replay_path = root / "replay.db"
        await write_raw(replay_path, chained_rows(events), "NORMAL")
        raw_read = await read_raw(replay_path)
        replay_eps = await replay(replay_path)
        lifecycles = root / "lifecycles.db"
        await write_raw(lifecycles, lifecycle_rows(events), "NORMAL")
        replayed = measure_replay(
            lifecycles,
            resource=f"default/site-{min(123, max(events - 1, 0)):06d}",
            resource_runs=RESOURCE_RUNS if events >= RAW_ROWS else 1,  # a test's tiny run: one
        )
    cuts = statistics.quantiles(latencies, n=100)
    return JournalFigures(
        raw_insert_eps=round(raw_insert),
        append_eps_c1=round(append_eps[1]),
        append_eps_c16=round(append_eps[16]),
        append_eps_c256=round(append_eps[256]),
        append_p50_ms_c1=round(cuts[49] * 1000, 3),
        append_p99_ms_c1=round(cuts[98] * 1000, 3),
        raw_read_eps=round(raw_read),
        replay_eps=round(replay_eps),
        replay_fold_eps=replayed.replay_fold_eps,
        ratio_append=round(append_eps[256] / raw_insert, 3),
        ratio_replay=round(replay_eps / raw_read, 3),
        replay_json_s=replayed.replay_json_s,
        replay_table_s=replayed.replay_table_s,
        replay_peak_rss_mb=replayed.replay_peak_rss_mb,
        replay_resource_s=replayed.replay_resource_s,
        check_s=replayed.check_s,
    )


def describe(figures: JournalFigures) -> str:
    """The figures as aligned lines for a terminal."""
    return "\n".join(f"{name:<18} {value}" for name, value in asdict(figures).items())
