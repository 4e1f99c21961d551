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
    keys = sorted(keys_of(appends))
    streams = sorted({append.stream for append in appends})
    shards = sorted(shards_of(appends))
    # pipeline mode: the look-ups go out together, and so do the writes and the COMMIT,
    # so a batch costs about three round trips and the commit's flush
    async with connection.pipeline() as pipeline, connection.transaction():
        locked = await connection.execute(schema.LOCK_HEAD)
        by_key = await connection.execute(schema.SELECT_KEYS, (keys,)) if keys else None
        by_stream = await connection.execute(schema.SELECT_VERSIONS, (streams,))
        by_shard = (
            await connection.execute(schema.SELECT_SHARD_TERMS, (shards,)) if shards else None
        )
        # a Sync, not only a flush: from the look-ups' answers until the writes arrive the
        # server counts the session idle in its transaction, so the writer's idle timeout
        # ends it if this process stalls here holding the chain head's lock
        await pipeline.sync()
        row = await locked.fetchone()
        assert row is not None, "the chain head row is created by the first migration"
        plan = plan_batch(
            appends,
            head=Head(int(row[0]), str(row[1])),
            versions=_found(await by_stream.fetchall()),
            existing_keys=_found(await by_key.fetchall()) if by_key is not None else {},
            at=at,
            term=term,
            shard_terms=dict(await by_shard.fetchall()) if by_shard is not None else {},
        )
        async with connection.cursor() as cursor:
            if plan.rows:
                await cursor.executemany(schema.INSERT_RECORD, plan.rows)
                await cursor.execute(schema.MOVE_HEAD, (plan.head.position, plan.head.checksum))
                await cursor.execute(schema.NOTIFY)  # delivered at commit, to every listener
            if plan.shard_terms:
                await cursor.executemany(schema.RAISE_SHARD_TERM, list(plan.shard_terms.items()))
        failpoint("journal.before_commit", (row.type for row in plan.rows))
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


def _found(rows: Sequence[tuple[Any, ...]]) -> dict[str, int]:
    """The look-up's rows as a dict, without the elements it found nothing for."""
    return {str(name): int(value) for name, value in rows if value is not None}


async def _locked_head(connection: psycopg.AsyncConnection[Any]) -> Head:
    cursor = await connection.execute(schema.LOCK_HEAD)
    row = await cursor.fetchone()
    assert row is not None, "the chain head row is created by the first migration"
    return Head(int(row[0]), str(row[1]))
