"""The SQLite journal's commit failpoints act on the writer's thread: a failure before the
commit leaves nothing written, a failure after it leaves the records committed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.failpoint import FailpointTriggered, arm
from engine.journal import NewEvent
from engine.journal.sqlite import SqliteJournal


async def test_a_failure_before_the_commit_rolls_the_batch_back(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = await SqliteJournal.open(path)
    await journal.append("s", [NewEvent("A", idempotency_key="k1")])
    await journal.close()

    with arm(**{"journal.before_commit": "raise"}):  # the writer task inherits the context
        journal = await SqliteJournal.open(path)
    try:
        with pytest.raises(FailpointTriggered):
            await journal.append("s", [NewEvent("B", idempotency_key="k2")])
        assert await journal.find_by_key("k2") is None
        assert journal.head.position == 1
    finally:
        await journal.close()

    journal = await SqliteJournal.open(path)
    try:
        assert [record.type for record in await journal.read_stream("s")] == ["A"]
        assert await journal.append("s", [NewEvent("C", idempotency_key="k2")]) == (2,)
        assert await journal.verify() == 2
    finally:
        await journal.close()


async def test_a_failure_after_the_commit_leaves_the_records_committed(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with arm(**{"journal.after_commit": "raise"}):
        journal = await SqliteJournal.open(path)
    try:
        with pytest.raises(FailpointTriggered):
            await journal.append("s", [NewEvent("A", idempotency_key="k1")])
        assert journal.head.position == 1  # read back from the file after the failure
    finally:
        await journal.close()

    journal = await SqliteJournal.open(path)
    try:
        assert (await journal.find_by_key("k1")) is not None
        assert await journal.append("s", [NewEvent("A", idempotency_key="k1")]) == (1,)
        assert await journal.verify() == 1
    finally:
        await journal.close()
