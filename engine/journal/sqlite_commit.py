"""One journal commit as one call on the writer's own thread (plain `sqlite3`).

Looks up the batch's used idempotency keys and unknown stream versions, plans the rows
(`plan_batch`), inserts them and commits, rolling back on any failure; the event loop
waits for one answer per commit instead of one per statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

from engine.failpoint import failpoint
from engine.journal import schema
from engine.journal.batch import BatchPlan, Head, PendingAppend, keys_of, plan_batch
from engine.journal.codec import Row

_CHUNK = 500
"""Values per `IN (...)` look-up, well under SQLite's parameter limit."""


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The batch's plan (committed when it has rows) and the stream versions read for it."""

    plan: BatchPlan
    versions_read: Mapping[str, int]


def commit_batch(
    connection: sqlite3.Connection,
    appends: Sequence[PendingAppend],
    *,
    head: Head,
    known_versions: Mapping[str, int],
    at: str,
    term: int,
) -> CommitResult:
    """Plan and commit `appends` in one transaction on `connection` (its own thread).

    `known_versions` holds the versions of streams already known; the others are read.
    Returns only after the commit (with the connection's synchronous setting); on any
    failure the transaction is rolled back and the error propagates.
    """
    existing = key_positions(connection, keys_of(appends))  # SELECTs begin no transaction
    read = stream_versions(connection, {a.stream for a in appends} - known_versions.keys())
    versions = {a.stream: read.get(a.stream) or known_versions.get(a.stream, 0) for a in appends}
    plan = plan_batch(
        appends, head=head, versions=versions, existing_keys=existing, at=at, term=term
    )
    if plan.rows:
        write_rows(connection, plan.rows)
    return CommitResult(plan, read)


def write_rows(connection: sqlite3.Connection, rows: Sequence[Row]) -> None:
    """Insert `rows` and commit in one transaction; roll back on any failure.

    The connection begins the transaction implicitly (isolation_level IMMEDIATE), and a
    trigger moves the chain head with each insert."""
    try:
        connection.executemany(schema.INSERT_RECORD, rows)
        failpoint("journal.before_commit", (row.type for row in rows))
        connection.commit()
    except BaseException:
        if connection.in_transaction:
            connection.rollback()
        raise


def key_positions(connection: sqlite3.Connection, keys: Set[str]) -> dict[str, int]:
    """The position of each of `keys` that is already committed."""
    found: dict[str, int] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = connection.execute(
            f"SELECT idempotency_key, position FROM records WHERE idempotency_key IN ({marks})",
            chunk,
        ).fetchall()
        found.update((key, position) for key, position in rows)
    return found


def stream_versions(connection: sqlite3.Connection, streams: Set[str]) -> dict[str, int]:
    """The last version of each of `streams` (0 for a stream with no records)."""
    versions = dict.fromkeys(streams, 0)
    ordered = sorted(streams)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = connection.execute(
            f"SELECT stream, MAX(stream_version) FROM records "
            f"WHERE stream IN ({marks}) GROUP BY stream",
            chunk,
        ).fetchall()
        versions.update((stream, version) for stream, version in rows)
    return versions
