"""The PostgreSQL journal beyond the shared contract: several writers on one database,
rollbacks without gaps, LISTEN/NOTIFY across connections, schema checks, bad URLs and
shard fencing, all against the real server the test session runs."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from engine.failpoint import FailpointTriggered, arm
from engine.journal import (
    ConcurrencyError,
    CorruptJournal,
    JournalUnavailable,
    NewEvent,
    NotAJournal,
    SchemaTooNew,
)
from engine.journal.batch import Fence
from engine.journal.errors import FencedOut
from engine.journal.postgres import PostgresJournal
from engine.journal.postgres_schema import SCHEMA_VERSION
from tests.support.postgres import Schemas, postgres_schemas, postgres_server, postgres_url

__all__ = ["postgres_schemas", "postgres_server", "postgres_url"]


def ev(n: int = 0, key: str | None = None) -> NewEvent:
    return NewEvent(type="Observed", data={"n": n}, idempotency_key=key)


def sql(url: str, statement: str) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(statement)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


async def test_two_journals_on_one_database_interleave_gap_free(postgres_url: str) -> None:
    first = await PostgresJournal.open(postgres_url)
    second = await PostgresJournal.open(postgres_url)
    try:
        results = await asyncio.gather(
            *((first if n % 2 else second).append(f"s{n % 3}", [ev(n), ev(n)]) for n in range(60))
        )
        positions = sorted(p for result in results for p in result)
        assert positions == list(range(1, 121))
        for stream in ("s0", "s1", "s2"):
            versions = [r.stream_version for r in await first.read_stream(stream)]
            assert versions == list(range(1, 41))
        assert await second.verify() == 120
    finally:
        await first.close()
        await second.close()


async def test_expected_version_sees_the_other_writers_commits(postgres_url: str) -> None:
    first = await PostgresJournal.open(postgres_url)
    second = await PostgresJournal.open(postgres_url)
    try:
        await first.append("s", [ev()], expected_version=0)
        with pytest.raises(ConcurrencyError) as raised:
            await second.append("s", [ev()], expected_version=0)
        assert raised.value.actual == 1
        assert await second.append("s", [ev(key="k")], expected_version=1) == (2,)
        assert await first.append("t", [ev(key="k")]) == (2,)  # the other's key is used
    finally:
        await first.close()
        await second.close()


async def test_a_rolled_back_commit_leaves_no_gap(postgres_url: str) -> None:
    journal = await PostgresJournal.open(postgres_url)
    await journal.append("s", [ev(1)])
    await journal.close()
    with arm(**{"journal.before_commit": "raise"}):  # the writer task inherits the context
        journal = await PostgresJournal.open(postgres_url)
    try:
        with pytest.raises(FailpointTriggered):
            await journal.append("s", [ev(2, key="k2")])
        assert await journal.find_by_key("k2") is None
        assert journal.head.position == 1
    finally:
        await journal.close()
    journal = await PostgresJournal.open(postgres_url)
    try:
        assert await journal.append("s", [ev(3, key="k2")]) == (2,)
        assert await journal.verify() == 2
    finally:
        await journal.close()


async def test_subscribe_wakes_on_another_processes_commit(postgres_url: str) -> None:
    follower_journal = await PostgresJournal.open(postgres_url)
    writer = await PostgresJournal.open(postgres_url)
    seen: list[int] = []

    async def follow() -> None:
        async for record in follower_journal.subscribe():
            seen.append(record.data["n"])
            if len(seen) == 2:
                return

    try:
        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.2)  # the follower has read to the end and waits
        await writer.append("s", [ev(1)])
        await writer.append("s", [ev(2)])
        await asyncio.wait_for(follower, 10)
        assert seen == [1, 2]
    finally:
        await writer.close()
        await follower_journal.close()


async def test_a_newer_schema_is_refused_and_left_untouched(postgres_url: str) -> None:
    journal = await PostgresJournal.open(postgres_url)
    await journal.append("s", [ev()])
    await journal.close()
    sql(postgres_url, "UPDATE engine_journal SET version = 99")
    for readonly in (False, True):
        with pytest.raises(SchemaTooNew, match=r"schema version 99.*newer engine"):
            await PostgresJournal.open(postgres_url, readonly=readonly)
    assert sql(postgres_url, "SELECT count(*) FROM records") == [(1,)]


async def test_tables_of_another_program_are_not_a_journal(postgres_url: str) -> None:
    sql(postgres_url, "CREATE TABLE invoices (id int); CREATE TABLE customers (id int)")
    with pytest.raises(NotAJournal) as raised:
        await PostgresJournal.open(postgres_url)
    message = str(raised.value)
    assert "another program (customers, invoices)" in message
    assert "\n" not in message
    assert sql(postgres_url, "SELECT count(*) FROM information_schema.tables "
               "WHERE table_schema = current_schema()") == [(2,)]  # fmt: skip


async def test_an_empty_database_opened_read_only_is_not_a_journal(postgres_url: str) -> None:
    with pytest.raises(NotAJournal, match="empty, not a journal"):
        await PostgresJournal.open(postgres_url, readonly=True)


async def test_a_read_only_journal_refuses_writes(postgres_url: str) -> None:
    await (await PostgresJournal.open(postgres_url)).close()
    journal = await PostgresJournal.open(postgres_url, readonly=True)
    try:
        with pytest.raises(JournalUnavailable, match="read-only"):
            await journal.append("s", [ev()])
    finally:
        await journal.close()


async def test_two_engines_creating_one_journal_at_once_both_open_it(postgres_url: str) -> None:
    journals = await asyncio.gather(*(PostgresJournal.open(postgres_url) for _ in range(3)))
    try:
        assert sql(postgres_url, "SELECT version FROM engine_journal") == [(SCHEMA_VERSION,)]
        assert [await j.append("s", [ev()]) for j in journals] == [(1,), (2,), (3,)]
    finally:
        for journal in journals:
            await journal.close()


async def test_a_changed_record_fails_the_check_at_its_position(postgres_url: str) -> None:
    journal = await PostgresJournal.open(postgres_url)
    await journal.append("s", [ev(1), ev(2), ev(3)])
    await journal.close()
    sql(postgres_url, "UPDATE records SET data = '{\"n\":9}' WHERE position = 2")
    journal = await PostgresJournal.open(postgres_url, readonly=True)
    try:
        with pytest.raises(CorruptJournal, match="position 2"):
            await journal.verify()
    finally:
        await journal.close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda url: _port(url, 1),
            "cannot reach the PostgreSQL journal",
            id="unreachable",
        ),
        pytest.param(
            lambda url: _password(url, "wrong-password"),
            "refused the login",
            id="wrong-password",
        ),
        pytest.param(
            lambda url: url.replace("/postgres?", "/no_such_db?"),
            'database "no_such_db" does not exist',
            id="missing-database",
        ),
    ],
)
async def test_a_bad_url_is_one_line_without_the_password(
    postgres_url: str, change: Any, expected: str
) -> None:
    bad = change(postgres_url)
    with pytest.raises(JournalUnavailable) as raised:
        await PostgresJournal.open(bad)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert _secret(bad) not in message


def _secret(url: str) -> str:
    return url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]


def _password(url: str, password: str) -> str:
    return url.replace(f":{_secret(url)}@", f":{password}@")


def _port(url: str, port: int) -> str:
    head, tail = url.rsplit("@", 1)
    host_port, rest = tail.split("/", 1)
    return f"{head}@{host_port.split(':')[0]}:{port}/{rest}"


async def test_a_fence_below_the_recorded_term_is_refused(postgres_url: str) -> None:
    old = await PostgresJournal.open(postgres_url)
    new = await PostgresJournal.open(postgres_url)
    try:
        assert await old.append("s", [ev(1)], fence=Fence("shard-0", 1)) == (1,)
        assert await new.append("s", [ev(2)], fence=Fence("shard-0", 2)) == (2,)
        with pytest.raises(FencedOut, match="shard 'shard-0' has term 2 recorded"):
            await old.append("s", [ev(3)], fence=Fence("shard-0", 1))
        assert await old.append("t", [ev(4)], fence=Fence("shard-1", 1)) == (3,)
        assert await old.append("s", [ev(5)], fence=Fence("shard-0", 2)) == (4,)
        assert await old.shard_term("shard-0") == 2
        assert [r.data["n"] for r in await new.read_stream("s")] == [1, 2, 5]
    finally:
        await old.close()
        await new.close()


async def test_a_fenced_out_append_does_not_fail_its_batch(postgres_url: str) -> None:
    journal = await PostgresJournal.open(postgres_url)
    try:
        await journal.append("s", [ev()], fence=Fence("a", 5))
        results = await asyncio.gather(
            journal.append("x", [ev()]),
            journal.append("s", [ev()], fence=Fence("a", 4)),
            journal.append("y", [ev()], fence=Fence("b", 1)),
            return_exceptions=True,
        )
        assert isinstance(results[1], FencedOut)
        assert sorted(p for r in (results[0], results[2]) for p in r) == [2, 3]
    finally:
        await journal.close()
    reopened = await PostgresJournal.open(postgres_url, readonly=True)
    try:
        assert (await reopened.shard_term("a"), await reopened.shard_term("b")) == (5, 1)
    finally:
        await reopened.close()


async def test_a_fence_that_fails_its_version_check_records_no_term(postgres_url: str) -> None:
    journal = await PostgresJournal.open(postgres_url)
    try:
        await journal.append("s", [ev()])
        with pytest.raises(ConcurrencyError):
            await journal.append("s", [ev()], expected_version=0, fence=Fence("a", 7))
        assert await journal.shard_term("a") == 0
    finally:
        await journal.close()


async def test_journals_in_two_schemas_of_one_database_stay_apart(
    postgres_schemas: Schemas,
) -> None:
    first = await PostgresJournal.open(postgres_schemas.new())
    second = await PostgresJournal.open(postgres_schemas.new())
    try:
        await first.append("s", [ev(key="k")])
        assert await second.append("s", [ev(key="k")]) == (1,)
        assert [r.position async for r in second.read_all()] == [1]
    finally:
        await first.close()
        await second.close()


async def test_connections_the_server_dropped_are_opened_again(postgres_url: str) -> None:
    url = f"{postgres_url}&application_name=dropped_{id(postgres_url)}"
    journal = await PostgresJournal.open(url)
    other = await PostgresJournal.open(postgres_url)
    try:
        await journal.append("s", [ev(1)])
        sql(postgres_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = 'dropped_{id(postgres_url)}'")  # fmt: skip
        with pytest.raises(JournalUnavailable, match="PostgreSQL"):
            await journal.append("s", [ev(2)])  # the commit under way fails
        assert await journal.append("s", [ev(3)]) == (2,)  # on a new connection
        assert [r.data["n"] for r in await journal.read_stream("s")] == [1, 3]

        async def follow() -> list[int]:
            seen = []
            async for record in journal.subscribe(3):
                seen.append(record.data["n"])
                return seen
            return seen

        follower = asyncio.create_task(follow())
        await asyncio.sleep(1.5)  # the listener is back after its pause
        await other.append("s", [ev(4)])
        assert await asyncio.wait_for(follower, 10) == [4]
    finally:
        await journal.close()
        await other.close()


@pytest.mark.parametrize("statement", ["SELECT_KEYS", "SELECT_VERSIONS"])
async def test_the_commit_look_ups_use_the_indexes_in_a_plan_made_on_a_small_table(
    postgres_url: str, statement: str
) -> None:
    """The writer's look-ups are prepared statements; a generic plan made while the
    journal is small must still probe the indexes, or every commit reads the whole table
    once the journal has grown (until the next ANALYZE)."""
    from engine.journal import postgres_schema as schema

    journal = await PostgresJournal.open(postgres_url)
    try:
        for n in range(30):
            await journal.append(f"s-{n % 3}", [ev(n, key=f"k-{n}")])
    finally:
        await journal.close()
    text = getattr(schema, statement).replace("%s", "$1")
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("SET plan_cache_mode = force_generic_plan")
        connection.execute(f"PREPARE look_up(text[]) AS {text}")  # type: ignore[arg-type]
        plan = [row[0] for row in connection.execute("EXPLAIN EXECUTE look_up(ARRAY['s-1'])")]
        found = [row for row in connection.execute("EXECUTE look_up(ARRAY['s-1', 'k-4', 'x'])")]
    assert not any("Seq Scan on records" in line for line in plan), "\n".join(plan)
    assert any("Index" in line for line in plan), "\n".join(plan)
    expected = {"SELECT_KEYS": {("k-4", 5)}, "SELECT_VERSIONS": {("s-1", 10)}}[statement]
    assert {row for row in found if row[1] is not None} == expected
