"""Opening a SQLite journal: recognise the file, migrate its schema, read its chain head.

Also turns SQLite's errors into the journal's typed errors, each naming the path and
what to do. The connection is anything with aiosqlite's `execute`/`execute_fetchall`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from engine.failpoint import failpoint
from engine.journal import schema
from engine.journal.batch import Head
from engine.journal.codec import GENESIS
from engine.journal.errors import (
    CorruptJournal,
    JournalError,
    JournalUnavailable,
    NotAJournal,
    SchemaTooNew,
)
from engine.journal.files import FILE_MODE, sync_directory

log = logging.getLogger(__name__)


class SqlConnection(Protocol):
    """The part of an aiosqlite connection that opening needs."""

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> Any: ...

    async def execute_fetchall(
        self, sql: str, parameters: Iterable[Any] | None = None
    ) -> Iterable[Any]: ...


def translate_error(path: Path, error: sqlite3.Error) -> JournalError:
    """The journal error for a SQLite error met while using the file at `path`."""
    message = str(error)
    lowered = message.lower()
    if "file is not a database" in lowered:
        return NotAJournal(
            f"{path} is not a journal (not an SQLite database): "
            "pass a journal file written by `engine`"
        )
    if "malformed" in lowered or "disk image" in lowered or "corrupt" in lowered:
        return CorruptJournal(str(path), f"SQLite reports {message!r}")
    if "readonly" in lowered or "read-only" in lowered:
        return JournalUnavailable(
            f"journal {path} is read-only ({message}): make it and its directory writable"
        )
    if "unable to open" in lowered:
        return JournalUnavailable(
            f"cannot open journal {path} ({message}): check the path and its permissions"
        )
    if "full" in lowered:
        return JournalUnavailable(f"journal {path}: {message}; free disk space and retry")
    return JournalUnavailable(f"journal {path}: SQLite error {message!r}")


async def _one(connection: SqlConnection, sql: str) -> Any:
    rows = list(await connection.execute_fetchall(sql))
    return rows[0][0] if rows else None


async def identify(connection: SqlConnection, path: Path, *, writable: bool) -> int:
    """The journal's schema version (0 for a new, empty file a writer may initialise).

    Errors: `NotAJournal` for a foreign file; `SchemaTooNew` for a newer schema.
    """
    application_id = await _one(connection, "PRAGMA application_id")
    tables = {
        row[0]
        for row in await connection.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    if not tables and application_id == 0:
        if writable:
            return 0
        raise NotAJournal(
            f"{path} is an empty SQLite database, not a journal: "
            "pass a journal file written by `engine`"
        )
    if application_id != schema.APPLICATION_ID or "schema_version" not in tables:
        raise NotAJournal(
            f"{path} is an SQLite database of another program, not a journal: "
            "pass a journal file written by `engine`"
        )
    version = int(await _one(connection, "SELECT version FROM schema_version"))
    if version > schema.SCHEMA_VERSION:
        raise SchemaTooNew(
            f"journal {path} has schema version {version}, newer than this engine's "
            f"{schema.SCHEMA_VERSION}: open it with a newer engine (it is left untouched)"
        )
    if version < schema.READABLE_FROM and not writable:
        raise JournalUnavailable(
            f"journal {path} has the older schema version {version}: migrate it with "
            f"`engine journal migrate {path}` (the engine stopped; it keeps a copy of the "
            "old file beside it)"
        )
    return version


async def prepare_writer(connection: SqlConnection, path: Path, *, synchronous: str) -> int:
    """Recognise the file, switch it to WAL, set `synchronous`, and migrate its schema;
    return the schema version it had (0 for a new file).

    A journal below `SCHEMA_VERSION` is first copied beside itself (`backup`). Each
    migration runs in one transaction with its `schema_version` update, so a crash
    leaves either the old schema or the new one (and the next open migrates again).
    """
    version = await identify(connection, path, writable=True)
    mode = await _one(connection, "PRAGMA journal_mode = WAL")
    if str(mode).lower() != "wal":
        raise JournalUnavailable(f"journal {path} cannot use WAL mode (got {mode!r})")
    await connection.execute(f"PRAGMA synchronous = {synchronous}")
    if 0 < version < schema.SCHEMA_VERSION:
        copy = await backup(connection, path, version)
        log.warning(
            "journal %s: migrating schema version %d to %d; the file as it was is kept at %s",
            path,
            version,
            schema.SCHEMA_VERSION,
            copy,
        )
    for step in range(version, schema.SCHEMA_VERSION):
        await connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in schema.MIGRATIONS[step]:
                await connection.execute(statement)
            await connection.execute("UPDATE schema_version SET version = ?", (step + 1,))
            failpoint("migration.before_commit")
            await connection.execute("COMMIT")
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
    return version


async def backup(connection: SqlConnection, path: Path, version: int) -> Path:
    """Copy the journal (its committed records, the `-wal`'s included) to
    `schema.backup_name` beside it with `VACUUM INTO`, 0600 and fsynced; return its path.

    Written under a temporary name and renamed, so the file of that name is always a
    whole copy; a copy left by an earlier, interrupted migration is replaced (the
    journal is still at `version`, and may have had records appended since).
    """
    target = path.with_name(schema.backup_name(path.name, version))
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)  # whatever the umask: it holds every record
    os.close(descriptor)
    try:
        await connection.execute("VACUUM INTO ?", (str(partial),))
        descriptor = os.open(partial, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)
    return target


async def check_pages(connection: SqlConnection, path: Path) -> None:
    """SQLite's quick_check of every page of the file: what a writer runs before it
    appends, since a cut tail or a zeroed page may lie where none of its own reads go
    until much later (its cost grows with the file: about 0.2 s for 100 MiB cached).

    Errors: `CorruptJournal` with the first findings (a page SQLite cannot even read
    raises `sqlite3.DatabaseError`, which the caller translates).
    """
    problems = [str(row[0]) for row in await connection.execute_fetchall("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise CorruptJournal(str(path), "SQLite quick_check: " + "; ".join(problems[:3]))


async def load_head(connection: SqlConnection, path: Path) -> tuple[Head, int]:
    """The chain head and the last record's term, read in one statement.

    Errors: `CorruptJournal` when the stored head and the last record disagree (records
    lost from the tail, or a `-wal` file removed after a crash).
    """
    rows = list(await connection.execute_fetchall(schema.SELECT_HEAD))
    if not rows:
        raise CorruptJournal(str(path), "the chain head row is missing")
    head_position, head_checksum, last_position, last_checksum, last_term = rows[0]
    last = Head(last_position or 0, last_checksum or GENESIS)
    if (head_position, head_checksum) != (last.position, last.checksum):
        raise CorruptJournal(
            str(path),
            f"the chain head is position {head_position} but the last record is "
            f"{last.position} (records lost from the tail, or the -wal file was removed)",
            last.position + 1,
        )
    return last, int(last_term or 0)
