"""Journals at schema version 1, as the engine before version 2 wrote them: the tables of
the schema-1 statements the code keeps (`MIGRATIONS[0]`), the version row at 1, and the
records of an export inserted with their positions and checksums."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import psycopg

from engine.journal import postgres_schema, schema
from engine.journal.codec import record_from_json, row_of
from engine.journal.record import Record


def exported_records(export: Path) -> list[Record]:
    """The records of a `engine journal export` file (the golden journals are such files)."""
    lines = export.read_text(encoding="utf-8").splitlines()
    return [record_from_json(json.loads(line)) for line in lines[1:] if line.strip()]


def sqlite_schema_one(path: Path, records: list[Record]) -> None:
    """A new SQLite journal file at `path`, schema version 1, holding `records`."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("BEGIN IMMEDIATE")
        for statement in schema.MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("UPDATE schema_version SET version = 1")
        connection.executemany(schema.INSERT_RECORD, [row_of(r) for r in records])
        connection.execute("COMMIT")
    finally:
        connection.close()
    path.chmod(0o600)


def postgres_schema_one(url: str, records: list[Record]) -> None:
    """A PostgreSQL journal in the empty schema of `url`, schema version 1, holding
    `records` (the chain head moved to the last one, as a commit does)."""
    with psycopg.connect(url) as connection, connection.transaction():
        for statement in postgres_schema.MIGRATIONS[0]:
            connection.execute(statement)  # type: ignore[arg-type]
        connection.execute(f"UPDATE {postgres_schema.META_TABLE} SET version = 1")
        with connection.cursor() as cursor:
            cursor.executemany(postgres_schema.INSERT_RECORD, [row_of(r) for r in records])
        if records:
            last = records[-1]
            connection.execute(postgres_schema.MOVE_HEAD, (last.position, last.checksum))


def sqlite_rows(path: Path) -> list[tuple[object, ...]]:
    """Every stored record row of the SQLite journal at `path`, in position order."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return connection.execute(
            f"SELECT {schema.COLUMNS} FROM records ORDER BY position"
        ).fetchall()
    finally:
        connection.close()


def sqlite_version_and_indexes(path: Path) -> tuple[int, set[str]]:
    """The stored schema version of the SQLite journal at `path` and the names of the
    indexes its schema creates (not those SQLite makes for UNIQUE constraints)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
        names = connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
        return int(version), {str(row[0]) for row in names}
    finally:
        connection.close()


def postgres_version_and_indexes(url: str) -> tuple[int, set[str]]:
    """The stored schema version of the PostgreSQL journal at `url` and its index names."""
    with psycopg.connect(url) as connection:
        row = connection.execute(f"SELECT version FROM {postgres_schema.META_TABLE}").fetchone()
        assert row is not None
        names = connection.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        ).fetchall()
    return int(row[0]), {str(name[0]) for name in names}
