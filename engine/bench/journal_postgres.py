"""`engine bench journal --postgres-url …`: the PostgreSQL journal's figures beside SQLite's.

Appends/s at 1, 16 and 256 concurrent tasks (each awaiting one event at a time), p50
and p99 append latency at 1 task, and replay/s of `read_all` with every checksum
verified. Each part runs in a fresh schema of the given database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

from engine.bench.journal import APPENDS, BATCH, chained_rows, observed_event
from engine.journal.postgres import PostgresJournal
from engine.journal.postgres_opening import connect, describe
from engine.journal.postgres_schema import COLUMNS

REPLAY_EVENTS = 200_000
"""Records the replay figure reads at most (loading them is most of the bench's time)."""


@dataclass(frozen=True, slots=True)
class PostgresFigures:
    """One run's PostgreSQL figures (the `postgres` object of `--json`)."""

    append_eps_c1: float
    append_eps_c16: float
    append_eps_c256: float
    append_p50_ms_c1: float
    append_p99_ms_c1: float
    replay_eps: float
    replay_events: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """The URL of a new, empty schema in the database at `url`, dropped on exit."""
    name = f"engine_bench_{uuid.uuid4().hex[:10]}"
    admin = await connect(url, where=describe(url))
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{name}"
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await admin.close()


async def measure_appends(url: str, *, concurrency: int, total: int) -> tuple[float, list[float]]:
    """Appends/s with `concurrency` tasks each awaiting one event at a time, and latencies."""
    journal = await PostgresJournal.open(url)
    latencies: list[float] = []
    per_task = max(total // concurrency, 1)

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


async def load_rows(url: str, count: int) -> None:
    """Fill the empty journal at `url` with `count` chained rows (COPY, then the head)."""
    await (await PostgresJournal.open(url)).close()  # creates the tables
    connection = await connect(url, where=describe(url))
    source = chained_rows(count)
    last = None
    try:
        async with connection.transaction(), connection.cursor() as cursor:
            async with cursor.copy(f"COPY records ({COLUMNS}) FROM STDIN") as copy:
                while chunk := list(itertools.islice(source, BATCH)):
                    for row in chunk:
                        await copy.write_row(row)
                    last = chunk[-1]
            if last is not None:
                await cursor.execute(
                    "UPDATE chain_head SET position = %s, checksum = %s WHERE id = 1",
                    (last.position, last.checksum),
                )
    finally:
        await connection.close()


async def replay(url: str) -> tuple[float, int]:
    """Records/s of `read_all` with every checksum verified, and the record count."""
    journal = await PostgresJournal.open(url, readonly=True)
    try:
        started = time.perf_counter()
        count = 0
        async for _record in journal.read_all(batch_size=BATCH):
            count += 1
        return count / (time.perf_counter() - started), count
    finally:
        await journal.close()


async def run_bench(url: str, *, events: int) -> PostgresFigures:
    """Measure the PostgreSQL journal at `url` (each part in its own schema).

    `events` caps the replay size (at most `REPLAY_EVENTS`) and, when small, the append
    counts, as in the SQLite bench. Errors: the journal's `JournalUnavailable` for a bad
    URL or an unreachable server.
    """
    append_eps: dict[int, float] = {}
    latencies: list[float] = []
    for concurrency, total in APPENDS.items():
        async with fresh_schema(url) as schema_url:
            eps, measured = await measure_appends(
                schema_url, concurrency=concurrency, total=min(total, max(events, concurrency))
            )
        append_eps[concurrency] = eps
        if concurrency == 1:
            latencies = measured
    async with fresh_schema(url) as schema_url:
        await load_rows(schema_url, min(events, REPLAY_EVENTS))
        replay_eps, replayed = await replay(schema_url)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return PostgresFigures(
        append_eps_c1=round(append_eps[1]),
        append_eps_c16=round(append_eps[16]),
        append_eps_c256=round(append_eps[256]),
        append_p50_ms_c1=round(cuts[49] * 1000, 3),
        append_p99_ms_c1=round(cuts[98] * 1000, 3),
        replay_eps=round(replay_eps),
        replay_events=replayed,
    )


def describe_figures(figures: PostgresFigures) -> str:
    """The figures as aligned lines for a terminal, each name prefixed `postgres_`."""
    return "\n".join(f"{'postgres_' + k:<27} {v}" for k, v in asdict(figures).items())


def with_postgres(sqlite_json: str, figures: PostgresFigures) -> str:
    """The SQLite bench's JSON object with a `postgres` object of these figures added."""
    combined = json.loads(sqlite_json)
    combined["postgres"] = figures.as_dict()
    return json.dumps(combined)
