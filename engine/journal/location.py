"""Where a journal lives: a SQLite file or a PostgreSQL database, named by one string.

`postgresql://…` (or `postgres://…`) is a PostgreSQL journal; `sqlite:///path` or a
plain path is a SQLite file (`sqlite:////abs/path` for an absolute one, as SQLAlchemy
writes it). Opening picks the backend; every other journal call is the same.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Union

from engine.clock import Clock
from engine.journal.errors import JournalUnavailable
from engine.journal.sqlite import SqliteJournal, Synchronous

if TYPE_CHECKING:
    from engine.journal.postgres import PostgresJournal

DurableJournal = Union[SqliteJournal, "PostgresJournal"]
"""A journal that outlives the process: what `open_journal` returns."""

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_SQLITE_SCHEME = "sqlite:///"


def is_postgres(location: str | os.PathLike[str]) -> bool:
    """Whether `location` names a PostgreSQL journal."""
    return isinstance(location, str) and location.startswith(_POSTGRES_SCHEMES)


def sqlite_path(location: str | os.PathLike[str]) -> Path:
    """The file a SQLite `location` names (`sqlite:///path` or a plain path).

    Errors: `JournalUnavailable` for another URL scheme, naming the accepted forms.
    """
    text = os.fspath(location)
    if text.startswith(_SQLITE_SCHEME):
        return Path(text[len(_SQLITE_SCHEME) :])
    if "://" in text:
        raise JournalUnavailable(
            f"journal location {text.split('://')[0]}://… is neither postgresql:// nor "
            "sqlite:///: pass postgresql://user:password@host/db, sqlite:///path or a path"
        )
    return Path(text)


def describe(location: str | os.PathLike[str]) -> str:
    """`location` as it may be shown: a PostgreSQL URL without its password."""
    if is_postgres(location):
        from engine.journal.postgres_opening import describe as describe_dsn

        return describe_dsn(os.fspath(location))
    return os.fspath(location)


async def open_journal(
    location: str | os.PathLike[str],
    *,
    clock: Clock | None = None,
    synchronous: Synchronous = "FULL",
    redact: tuple[str, ...] = (),
    readonly: bool = False,
) -> DurableJournal:
    """Open the journal at `location` with the backend it names.

    `synchronous` applies to SQLite only (PostgreSQL commits are as durable as the
    server's `synchronous_commit`). Errors: those of `SqliteJournal.open` or
    `PostgresJournal.open`, one line each; `JournalUnavailable` for an unknown scheme.
    """
    if is_postgres(location):
        # imported here: psycopg is loaded only by engines that use PostgreSQL
        from engine.journal.postgres import PostgresJournal

        return await PostgresJournal.open(
            os.fspath(location), clock=clock, redact=redact, readonly=readonly
        )
    return await SqliteJournal.open(
        sqlite_path(location),
        clock=clock,
        synchronous=synchronous,
        redact=redact,
        readonly=readonly,
    )
