"""A journal followed live: the picture of a file another process is writing, kept up
to date by re-reading from the last position seen (a read-only WAL reader sees each
commit; a read-only journal has no commit signal of its own, so it polls briefly)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.ui.page_data import DETAIL_LIMIT, deadlocks_json, lane_json, record_json
from engine.ui.picture import Picture
from engine.ui.summary import summarize, summary_svg, summary_text

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25


class LiveFeed:
    """The picture of the journal at `path`, following appends while started.

    `start()` opens the file read-only and reads it; `stop()` ends the following.
    Errors (from `start`): `JournalError` for a missing, foreign or corrupt file.
    """

    def __init__(self, path: Path, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.path = path
        self.picture = Picture()
        self.records: list[Record] | None = []
        self._poll = poll_seconds
        self._journal: SqliteJournal | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.closed = False

    async def start(self) -> None:
        self._journal = await SqliteJournal.open(self.path, readonly=True)
        await self._read_new()
        self._task = asyncio.create_task(self._follow(), name="timeline-feed")

    async def stop(self) -> None:
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._changed:
            self._changed.notify_all()
        if self._journal is not None:
            await self._journal.close()

    async def _read_new(self) -> int:
        assert self._journal is not None
        added = 0
        async for record in self._journal.read_all(self.picture.last_position + 1):
            self.picture.add(record)
            added += 1
            if self.records is not None:
                self.records.append(record)
                if len(self.records) > DETAIL_LIMIT:
                    self.records = None
        return added

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                added = await self._read_new()
            except Exception as failure:  # a bad record: report it, keep what was read
                log.warning("the timeline stopped following %s: %s", self.path, failure)
                return
            if added:
                async with self._changed:
                    self._changed.notify_all()

    async def wait_past(self, position: int, *, seconds: float) -> None:
        """Return once the picture holds a record after `position`, or after `seconds`."""
        if self.picture.last_position > position or self.closed:
            return
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(
                        lambda: self.closed or self.picture.last_position > position
                    ),
                    seconds,
                )

    def update_since(self, position: int) -> dict[str, Any]:
        """What changed after `position`: the lanes holding newer records (whole), the
        deadlocks, the summary, and the newer records (for the details panel)."""
        picture = self.picture
        lanes = [lane_json(lane) for lane in picture.ordered() if lane.last_position > position]
        details = {}
        if self.records is not None:
            details = {r.position: record_json(r) for r in self.records if r.position > position}
        summary = summarize(picture)
        origin = picture.origin.timestamp() * 1000 if picture.origin is not None else 0.0
        return {
            "lanes": lanes,
            "deadlocks": deadlocks_json(picture),
            "end": picture.end,
            "origin_ms": origin,
            "last_position": picture.last_position,
            "records": picture.records,
            "summary": summary_svg(summary),
            "summary_text": summary_text(summary),
            "details": details,
        }

    async def record(self, position: int) -> Record | None:
        """The record at `position`, read (and verified) from the file."""
        if self._journal is None or position < 1 or position > self.picture.last_position:
            return None
        async for record in self._journal.read_all(position, batch_size=1):
            return record
        return None
