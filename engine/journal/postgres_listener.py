"""Commit notifications of a PostgreSQL journal: LISTEN on a connection of its own.

Every commit runs `pg_notify(CHANNEL, current_schema())`, delivered when it commits; the
listener calls `on_commit` for each notification of its journal's schema, whichever
process committed. A lost connection is opened again after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import psycopg

from engine.journal import postgres_opening as opening
from engine.journal import postgres_schema as schema
from engine.journal.errors import JournalUnavailable

log = logging.getLogger(__name__)
RELISTEN_SECONDS = 1.0
"""Pause before a lost LISTEN connection is opened again."""


class CommitListener:
    """A task that LISTENs for the commits of the journal in `schema_name` at `dsn`."""

    def __init__(
        self, *, dsn: str, where: str, schema_name: str, on_commit: Callable[[], None]
    ) -> None:
        self._dsn = dsn
        self._where = where
        self._schema_name = schema_name
        self._on_commit = on_commit
        self._task = asyncio.create_task(self._run(), name="journal-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            connection = None
            try:
                connection = await opening.connect(self._dsn, where=self._where, role="listener")
                await connection.execute(f"LISTEN {schema.CHANNEL}")
                self._on_commit()  # what was committed while not listening is read now
                async for notice in connection.notifies():
                    if notice.payload == self._schema_name:
                        self._on_commit()
            except (psycopg.Error, JournalUnavailable) as lost:
                cause = (str(lost).strip().splitlines() or [type(lost).__name__])[0]
                log.warning("journal %s: LISTEN connection lost (%s); retrying", self._where, cause)
                await asyncio.sleep(RELISTEN_SECONDS)
            finally:
                if connection is not None:
                    await connection.close()
