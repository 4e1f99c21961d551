"""Group commit: one writer task batches the appends of many tasks into one transaction.

Callers `submit` an append and await its outcome; the writer task drains everything
pending, hands the batch to the store's `commit` function, and only then answers each
caller. A failed transaction fails every caller of that batch, and only that batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from engine.journal.batch import PendingAppend
from engine.journal.errors import JournalError

Outcome = tuple[int, ...] | JournalError
CommitBatch = Callable[[Sequence[PendingAppend]], Awaitable[Sequence[Outcome]]]
OnFailure = Callable[[BaseException], Awaitable[BaseException]]


class GroupCommit:
    """The writer task and its queue of waiting appends.

    `commit` writes one batch in one transaction and returns one outcome per append;
    `on_failure` turns a failure of `commit` into the error the callers see (and may
    reset the store's cached state).
    """

    def __init__(self, commit: CommitBatch, on_failure: OnFailure) -> None:
        self._commit = commit
        self._on_failure = on_failure
        self._pending: list[tuple[PendingAppend, asyncio.Future[tuple[int, ...]]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="journal-writer")

    @property
    def idle(self) -> bool:
        """Whether no append is waiting for the next commit."""
        return not self._pending

    async def submit(self, pending: PendingAppend) -> tuple[int, ...]:
        """Queue `pending`; return its positions once its batch has committed."""
        future: asyncio.Future[tuple[int, ...]] = asyncio.get_running_loop().create_future()
        self._pending.append((pending, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Commit everything already submitted, then stop the writer task."""
        self._closing = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._pending = self._pending, []
            try:
                outcomes = await self._commit([pending for pending, _future in batch])
            except Exception as failure:
                error = await self._on_failure(failure)
                for _pending, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_pending, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue  # the caller was cancelled; its record may still be committed
                if isinstance(outcome, JournalError):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
