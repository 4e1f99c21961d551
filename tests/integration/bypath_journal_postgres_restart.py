"""PostgreSQL stopped and started again under a running journal (a cluster of the test's
own): appends fail while it is down and succeed when retried; every effect's call comes
after its `EffectStarted` is committed, and every effect succeeds exactly once; the
chain verifies and nothing is lost; a subscription goes on after the restart.

One journal (reader, writer and listener connections, as each engine replica has) and
the effect runner on it, 8 tasks each running effects under their own keys, with the
server stopped (fast shutdown: every connection cut) while they run.

Run it by path (the suite does not collect it: it takes 15-18 s on the loaded 2-core
machine, most of it `initdb`, past the suite's budget for it):

    .venv/bin/pytest -q -p no:cacheprovider tests/integration/bypath_journal_postgres_restart.py
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest

from engine.clock import SystemClock
from engine.effects.backoff import BackoffPolicy
from engine.effects.runner import EffectRunner, RunnerDeps
from engine.fsm import events as ev
from engine.journal.errors import JournalError
from engine.journal.postgres import PostgresJournal
from engine.journal.record import NewEvent
from tests.support.throwaway_postgres import Cluster, throwaway_cluster

pytestmark = [pytest.mark.timeout(120)]

TASKS, EFFECTS = 8, 4


def committed_types(url: str, stream: str) -> list[str]:
    """The types of `stream`'s records as another connection sees them (committed)."""
    with psycopg.connect(url, connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT type FROM records WHERE stream = %s ORDER BY stream_version", (stream,)
        ).fetchall()
    return [row[0] for row in rows]


async def test_a_server_restart_mid_run_loses_nothing_and_runs_no_effect_without_intent() -> None:
    with throwaway_cluster() as cluster:
        journal = await PostgresJournal.open(cluster.url)
        runner = EffectRunner(
            RunnerDeps(
                journal=journal,
                clock=SystemClock(),
                backoff=BackoffPolicy(base=0.01, cap=0.2, max_attempts=50),
                timeout=10.0,
            )
        )
        calls: list[tuple[str, list[str]]] = []
        failures: Counter[str] = Counter()
        down = asyncio.Event()

        async def effects(task: int) -> None:
            stream = f"test.dev/Thing/default/t-{task}#uid-{task}"
            for n in range(EFFECTS):
                key = f"uid-{task}:1:step-{n}"

                async def call(idempotency_key: str, stream: str = stream) -> Any:
                    intent = await asyncio.to_thread(committed_types, cluster.url, stream)
                    calls.append((idempotency_key, intent))
                    return {"n": idempotency_key}

                while True:
                    try:
                        await runner.run(stream, key, f"step-{n}", call)
                        break
                    except JournalError as failed:  # the server is away: the turn is retried
                        failures[type(failed).__name__] += 1
                        await asyncio.sleep(0.1)
                if task == 0 and n == 1:
                    down.set()

        async def restart(server: Cluster) -> None:
            await down.wait()
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)  # appends and reads fail meanwhile
            await asyncio.to_thread(server.start)

        subscription = journal.subscribe()
        try:
            await asyncio.gather(restart(cluster), *(effects(task) for task in range(TASKS)))
            assert failures, "the restart was felt by the appends"
            records = [record async for record in journal.read_all()]
            assert [r.position for r in records] == list(range(1, len(records) + 1))
            assert await journal.verify() == len(records)
            succeeded = Counter(
                str(r.data["key"]) for r in records if r.type == ev.EFFECT_SUCCEEDED
            )
            expected = {f"uid-{t}:1:step-{n}" for t in range(TASKS) for n in range(EFFECTS)}
            assert set(succeeded) == expected
            assert max(succeeded.values()) == 1, "no effect succeeded twice"
            for key, intent in calls:
                assert intent.count(ev.EFFECT_STARTED) > intent.count(ev.EFFECT_SUCCEEDED), key
            seen = [await anext(subscription) for _ in range(len(records))]
            await journal.append("test.dev/Thing/default/late#uid-late", [NewEvent(type="Late")])
            assert [r.position for r in seen] == [r.position for r in records]
            late = await asyncio.wait_for(anext(subscription), 15)
            assert late.type == "Late", "the subscription goes on after the restart"
        finally:
            await subscription.aclose()
            await journal.close()
