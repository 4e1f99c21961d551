"""Opening a PostgreSQL journal: connect, recognise the schema, migrate it, read its head.

Also turns psycopg's errors into the journal's typed errors, each one line naming the
server (never the password) and what to do.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from engine.failpoint import failpoint
from engine.journal import postgres_schema as schema
from engine.journal.batch import Head
from engine.journal.codec import GENESIS
from engine.journal.errors import (
    CorruptJournal,
    JournalError,
    JournalUnavailable,
    NotAJournal,
    SchemaTooNew,
)

CONNECT_TIMEOUT_SECONDS = 5
"""Used when the URL sets no `connect_timeout`: an unreachable server fails fast."""


def describe(dsn: str) -> str:
    """The journal's name in messages: `postgresql://user@host:port/db[?options=…]`, no
    password.

    Errors: `JournalUnavailable` when `dsn` is not a PostgreSQL connection URL.
    """
    params = _params(dsn)
    user = params.get("user", "")
    host = params.get("host", "")
    port = params.get("port", "")
    name = f"postgresql://{user + '@' if user else ''}{host}{':' + port if port else ''}"
    options = params.get("options", "")
    return f"{name}/{params.get('dbname', '')}" + (f"?options={options}" if options else "")


def _params(dsn: str) -> dict[str, Any]:
    try:
        return conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as bad:
        raise JournalUnavailable(
            f"journal URL is not a valid PostgreSQL URL ({_first_line(bad)}): "
            "write it as postgresql://user:password@host:port/database"
        ) from None


WRITER_IDLE_TIMEOUT_MS = 1000
"""How long the server lets a writer sit idle inside a commit transaction before it
ends the session (rolling the transaction back, releasing the chain head's lock). A
commit sends its statements in two pipelined batches, milliseconds apart."""


async def connect(dsn: str, *, where: str, role: str = "admin") -> psycopg.AsyncConnection[Any]:
    """An autocommit connection to `dsn`, named `engine-journal-<role>` on the server
    unless the URL names it. Errors: `JournalUnavailable` naming `where`."""
    params = _params(dsn)
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    params.setdefault("application_name", f"engine-journal-{role}")
    try:
        connection = await psycopg.AsyncConnection.connect(
            conninfo.make_conninfo(**params), autocommit=True
        )
        if role == "writer":
            # a commit holds the chain head's row lock from its first statement on: a
            # writer process stalled inside one (SIGSTOP, a long pause) must not hold
            # every other process's commits with it, so the server ends its session
            await connection.execute(
                f"SET idle_in_transaction_session_timeout = {WRITER_IDLE_TIMEOUT_MS}"
            )
        return connection
    except psycopg.Error as failure:
        raise translate_error(where, failure) from None


def translate_error(where: str, error: psycopg.Error) -> JournalError:
    """The journal error for a psycopg error met while using the journal at `where`."""
    message = _first_line(error)
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return JournalUnavailable(
            f"PostgreSQL refused the login to journal {where} ({message}): "
            "check the user and password in the journal URL"
        )
    if "does not exist" in lowered and "database" in lowered:
        return JournalUnavailable(
            f"journal {where}: {message}; create the database first (createdb) or fix the URL"
        )
    if isinstance(error, psycopg.OperationalError):
        return JournalUnavailable(
            f"cannot reach the PostgreSQL journal {where} ({message}): "
            "start the server or fix the host and port in the journal URL"
        )
    return JournalUnavailable(f"journal {where}: PostgreSQL error {message!r}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # libpq puts the cause after "connection to server ... failed:" on the same line
    return lines[0] if lines else type(error).__name__


async def _tables(connection: psycopg.AsyncConnection[Any]) -> tuple[str | None, set[str]]:
    cursor = await connection.execute(
        "SELECT current_schema(), (SELECT array_agg(table_name::text) FROM "
        "information_schema.tables WHERE table_schema = current_schema())"
    )
    row = await cursor.fetchone()
    assert row is not None
    return row[0], set(row[1] or ())


async def identify(connection: psycopg.AsyncConnection[Any], where: str, *, writable: bool) -> int:
    """The journal's schema version (0 for an empty schema a writer may initialise).

    Errors: `NotAJournal` for tables of another program; `SchemaTooNew` for a newer
    schema; `JournalUnavailable` when the search path names no existing schema.
    """
    current, tables = await _tables(connection)
    if current is None:
        raise JournalUnavailable(
            f"journal {where}: the search_path names no existing schema; "
            "create the schema or fix the options of the journal URL"
        )
    if not tables:
        if writable:
            return 0
        raise NotAJournal(
            f"{where} (schema {current}) is empty, not a journal: "
            "pass the URL of a journal written by `engine`"
        )
    if schema.META_TABLE not in tables:
        shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
        raise NotAJournal(
            f"{where} (schema {current}) holds tables of another program ({shown}), "
            "not a journal: point the journal URL at an empty database or schema"
        )
    cursor = await connection.execute(f"SELECT application, version FROM {schema.META_TABLE}")
    row = await cursor.fetchone()
    if row is None or row[0] != schema.APPLICATION:
        raise NotAJournal(
            f"{where} (schema {current}) has an {schema.META_TABLE} table that is not an "
            "engine journal's: point the journal URL at an empty database or schema"
        )
    version = int(row[1])
    if version > schema.SCHEMA_VERSION:
        raise SchemaTooNew(
            f"journal {where} has schema version {version}, newer than this engine's "
            f"{schema.SCHEMA_VERSION}: open it with a newer engine (it is left untouched)"
        )
    if version < schema.READABLE_FROM and not writable:
        raise JournalUnavailable(
            f"journal {where} has the older schema version {version}: migrate it with "
            "`engine journal migrate --journal URL` (or start one engine on it)"
        )
    return version


async def migrate(connection: psycopg.AsyncConnection[Any], where: str) -> None:
    """Recognise the schema and bring it to `SCHEMA_VERSION`.

    Each migration runs in one transaction with its version update, under an advisory
    lock, so two engines opening a new journal at once migrate it once.
    """
    while True:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()))")
            version = await identify(connection, where, writable=True)
            if version >= schema.SCHEMA_VERSION:
                return
            for statement in schema.MIGRATIONS[version]:
                await connection.execute(statement)
            await connection.execute(f"UPDATE {schema.META_TABLE} SET version = %s", (version + 1,))
            failpoint("migration.before_commit")


async def load_head(connection: psycopg.AsyncConnection[Any], where: str) -> tuple[Head, int]:
    """The chain head and the last record's term, read in one statement.

    Errors: `CorruptJournal` when the stored head and the last record disagree.
    """
    cursor = await connection.execute(schema.SELECT_HEAD)
    row = await cursor.fetchone()
    if row is None:
        raise CorruptJournal(where, "the chain head row is missing")
    head_position, head_checksum, last_position, last_checksum, last_term = row
    last = Head(last_position or 0, last_checksum or GENESIS)
    if (head_position, head_checksum) != (last.position, last.checksum):
        raise CorruptJournal(
            where,
            f"the chain head is position {head_position} but the last record is "
            f"{last.position} (records lost from the tail)",
            last.position + 1,
        )
    return last, int(last_term or 0)
