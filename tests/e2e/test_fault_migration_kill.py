"""A kill inside the migration from schema version 1 to 2 (C12, J8): `engine journal
migrate` SIGKILLed at `migration.before_commit`, the index built and the version row
updated but not committed, on SQLite and on PostgreSQL. The journal is left at version 1
with every record, reads and checks as it is, and the next open migrates it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from engine.journal.chain_check import check_journal
from engine.journal.postgres import PostgresJournal
from engine.journal.sqlite import SqliteJournal
from tests.fixtures.journals.make_golden import HERE
from tests.support.engine_forks import run_forked, warm_up
from tests.support.postgres import Schemas, postgres_schemas, postgres_server
from tests.support.schema_one import (
    exported_records,
    postgres_schema_one,
    postgres_version_and_indexes,
    sqlite_rows,
    sqlite_schema_one,
    sqlite_version_and_indexes,
)

__all__ = ["postgres_schemas", "postgres_server"]  # the fixtures, for the PostgreSQL case

pytestmark = [pytest.mark.e2e]

KILL = {"ENGINE_FAILPOINTS": "migration.before_commit=kill"}
GOLDEN = HERE / "spec_change.jsonl"


async def test_a_kill_inside_the_sqlite_migration_to_2_leaves_version_1_then_it_migrates(
    tmp_path: Path,
) -> None:
    warm_up()
    path = tmp_path / "journal.db"
    sqlite_schema_one(path, exported_records(GOLDEN))
    before = sqlite_rows(path)
    backup = tmp_path / "journal.db.schema-1.backup"
    log = tmp_path / "migrate.out"

    code = await run_forked(["journal", "migrate", str(path)], KILL, log)
    assert code == -signal.SIGKILL, log.read_text()
    assert sqlite_version_and_indexes(path) == (1, set())  # one transaction: none of it
    assert sqlite_rows(path) == before
    assert check_journal(path).records == len(before)
    assert sqlite_rows(backup) == before  # taken before the migration began

    journal = await SqliteJournal.open(path)  # what the next start does
    await journal.close()
    version, indexes = sqlite_version_and_indexes(path)
    assert (version, "records_at" in indexes) == (2, True)
    assert sqlite_rows(path) == before
    assert check_journal(path).records == len(before)
    assert sqlite_rows(backup) == before  # taken again, whole


async def test_a_kill_inside_the_postgresql_migration_to_2_leaves_version_1_then_it_migrates(
    tmp_path: Path, postgres_schemas: Schemas
) -> None:
    warm_up()
    url = postgres_schemas.new()
    records = exported_records(GOLDEN)
    postgres_schema_one(url, records)
    log = tmp_path / "migrate.out"

    code = await run_forked(["journal", "migrate", "--journal", url], KILL, log)
    assert code == -signal.SIGKILL, log.read_text()
    version, indexes = postgres_version_and_indexes(url)
    assert (version, "records_at" in indexes) == (1, False)
    reading = await PostgresJournal.open(url, readonly=True)  # version 1, read as it is
    try:
        assert await reading.verify() == len(records)
    finally:
        await reading.close()

    journal = await PostgresJournal.open(url)  # what the next start does
    try:
        assert await journal.verify() == len(records)
        assert [r.checksum async for r in journal.read_all()] == [r.checksum for r in records]
    finally:
        await journal.close()
    version, indexes = postgres_version_and_indexes(url)
    assert (version, "records_at" in indexes) == (2, True)
