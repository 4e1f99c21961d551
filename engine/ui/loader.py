"""Reading a journal file into a picture: read-only (no lock, no writes, so beside a
live engine), every checksum verified, in position order."""

from __future__ import annotations

from pathlib import Path

from engine.journal.record import Record
from engine.journal.sqlite import SqliteJournal
from engine.ui.page_data import DETAIL_LIMIT
from engine.ui.picture import Picture

BATCH = 5_000


async def load_picture(path: Path) -> tuple[Picture, list[Record] | None]:
    """The picture of the journal at `path`, and its records when there are at most
    `DETAIL_LIMIT` of them (None above: the page then carries no tables).

    Errors: `JournalError` (a missing, foreign, corrupt or newer file), `FoldError`.
    """
    journal = await SqliteJournal.open(path, readonly=True)
    picture = Picture()
    kept: list[Record] | None = []
    try:
        async for record in journal.read_all(batch_size=BATCH):
            picture.add(record)
            if kept is not None:
                kept.append(record)
                if len(kept) > DETAIL_LIMIT:
                    kept = None  # too many to carry: stop holding them
    finally:
        await journal.close()
    return picture, kept
