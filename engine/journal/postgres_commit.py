"""One PostgreSQL journal commit: lock the chain head, plan the batch, write it, notify.

The chain head row is locked `FOR UPDATE` first, so appends of every process sharing the
database queue there and take positions one transaction after another: the head moves
only in a committed transaction, which leaves no gap (a sequence would, on rollback).
Versions, used keys and shard terms are read under that lock, so they are current.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from engine.failpoint import failpoint
from engine.journal import postgres_schema as schema
from engine.journal.batch import (
    BatchPlan,
    Head,
    PendingAppend,
    chain_for_import,
    keys_of,
    plan_batch,
    shards_of,
)
from engine.journal.record import Record


async def commit_batch(
    connection: psycopg.AsyncConnection[Any],
    appends: Sequence[PendingAppend],
    *,
    at: str,
    term: int,
) -> BatchPlan:
    """Plan and commit `appends` in one transaction on `connection`; return the plan.

    Returns only after the commit; on any failure the transaction is rolled back and the
    error propagates (psycopg's, for the caller to translate).
    """
    async with connection.transaction():
        head = await _locked_head(connection)
        keys = keys_of(appends)
        existing = dict(await _pairs(connection, schema.SELECT_KEYS, keys)) if keys else {}
        streams = sorted({append.stream for append in appends})
        versions = dict(await _pairs(connection, schema.SELECT_VERSIONS, streams))
        shards = shards_of(appends)
        terms = dict(await _pairs(connection, schema.SELECT_SHARD_TERMS, shards)) if shards else {}
        plan = plan_batch(
            appends,
            head=head,
            versions=versions,
            existing_keys=existing,
            at=at,
            term=term,
            shard_terms=terms,
        )
        if plan.rows:
            async with connection.cursor() as cursor:
                await cursor.executemany(schema.INSERT_RECORD, plan.rows)
                await cursor.execute(schema.MOVE_HEAD, (plan.head.position, plan.head.checksum))
                await cursor.execute(schema.NOTIFY)  # delivered at commit, to every listener
        if plan.shard_terms:
            async with connection.cursor() as cursor:
                await cursor.executemany(schema.RAISE_SHARD_TERM, list(plan.shard_terms.items()))
        failpoint("journal.before_commit")
    return plan


async def import_rows(
    connection: psycopg.AsyncConnection[Any], records: Sequence[Record], *, where: str
) -> Head | None:
    """Write exported `records` into the empty journal in one transaction; return the new
    head, or None when the journal has records (nothing is written then).

    Errors: `CorruptJournal` when the records do not chain unbroken from position 1.
    """
    rows, head = chain_for_import(records, where=where)
    async with connection.transaction():
        current = await _locked_head(connection)
        if current.position != 0:
            return None
        async with connection.cursor() as cursor:
            async with cursor.copy(f"COPY records ({schema.COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)
            await cursor.execute(schema.MOVE_HEAD, (head.position, head.checksum))
            await cursor.execute(schema.NOTIFY)
    return head


async def _locked_head(connection: psycopg.AsyncConnection[Any]) -> Head:
    cursor = await connection.execute(schema.LOCK_HEAD)
    row = await cursor.fetchone()
    assert row is not None, "the chain head row is created by the first migration"
    return Head(int(row[0]), str(row[1]))


async def _pairs(
    connection: psycopg.AsyncConnection[Any], sql: str, values: Sequence[str] | set[str]
) -> list[tuple[Any, Any]]:
    cursor = await connection.execute(sql, (list(values),))
    return await cursor.fetchall()
