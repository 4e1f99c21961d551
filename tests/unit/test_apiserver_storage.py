"""The API server's SQLite store: revisions, optimistic concurrency, the change log,
compaction, fan-out to subscribers, and durability across reopening."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.apiserver.store.storage import (
    CHECKPOINT_EVERY,
    Compacted,
    StaleWrite,
    Store,
    StoreClosed,
    Write,
)


def obj(name: str, value: str = "v") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "data": {"k": value}}


async def test_each_write_takes_the_next_revision_as_its_resource_version() -> None:
    store = await Store.open(":memory:")
    first = await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    second = await store.commit(
        [Write("/cm/ns/a", obj("a", "2"), 1), Write("/cm/ns/b", obj("b"), 0)]
    )
    assert [(c.rv, c.type) for c in first + second] == [(1, "ADDED"), (2, "MODIFIED"), (3, "ADDED")]
    assert store.get("/cm/ns/a")["metadata"]["resourceVersion"] == "2"  # type: ignore[index]
    assert store.revision == 3
    await store.close()


async def test_a_write_against_a_stale_revision_fails_and_writes_nothing() -> None:
    store = await Store.open(":memory:")
    await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    with pytest.raises(StaleWrite):
        await store.commit([Write("/cm/ns/b", obj("b"), 0), Write("/cm/ns/a", obj("a", "x"), 0)])
    assert store.get("/cm/ns/b") is None
    assert store.revision == 1
    await store.close()


async def test_delete_records_the_last_state_with_a_new_revision() -> None:
    store = await Store.open(":memory:")
    queue = store.subscribe()
    await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    await store.commit([Write("/cm/ns/a", None, 1, delete=True)])
    added, deleted = queue.get_nowait(), queue.get_nowait()
    assert (added.type, deleted.type) == ("ADDED", "DELETED")
    assert deleted.body["data"] == {"k": "v"}
    assert deleted.body["metadata"]["resourceVersion"] == "2"
    assert store.get("/cm/ns/a") is None
    await store.close()


async def test_changes_older_than_the_retention_window_are_compacted() -> None:
    store = await Store.open(":memory:", retention=3)
    await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    for rv in range(1, 10):
        await store.commit([Write("/cm/ns/a", obj("a", str(rv)), rv)])
    await store.compact()
    assert store.compacted == 7
    assert [c.rv for c in await store.changes_since(7)] == [8, 9, 10]
    with pytest.raises(Compacted):
        await store.changes_since(6)
    await store.close()


async def test_objects_and_the_change_log_survive_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "api.db")
    store = await Store.open(path)
    await store.commit([Write("/cm/ns/a", obj("a"), 0), Write("/cm/ns/b", obj("b"), 0)])
    await store.commit([Write("/cm/ns/b", None, 2, delete=True)])
    await store.close()
    reopened = await Store.open(path)
    assert reopened.revision == 3
    assert [k for k, _ in reopened.items("/cm/")] == ["/cm/ns/a"]
    assert [c.type for c in await reopened.changes_since(0)] == ["ADDED", "ADDED", "DELETED"]
    known, then = await reopened.state_at("/cm/ns/b", 2)
    assert known
    assert then is not None
    assert then["metadata"]["name"] == "b"
    await reopened.close()


async def test_concurrent_commits_share_a_transaction_and_a_stale_one_fails_alone(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "group.db")
    store = await Store.open(path)
    await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    queue = store.subscribe()
    outcomes = await asyncio.gather(
        store.commit([Write("/cm/ns/b", obj("b"), 0)]),
        store.commit([Write("/cm/ns/a", obj("a", "2"), 1)]),
        # stale: the write before it in the same batch already moved a to revision 3
        store.commit([Write("/cm/ns/c", obj("c"), 0), Write("/cm/ns/a", obj("a", "x"), 1)]),
        store.commit([Write("/cm/ns/b", obj("b", "2"), 2), Write("/cm/ns/d", obj("d"), 0)]),
        store.commit([Write("/cm/ns/d", None, 5, delete=True)]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[2], StaleWrite)
    answered = [
        [(c.rv, c.type, c.key) for c in changes]
        for changes in outcomes
        if isinstance(changes, list)
    ]
    assert answered == [
        [(2, "ADDED", "/cm/ns/b")],
        [(3, "MODIFIED", "/cm/ns/a")],
        [(4, "MODIFIED", "/cm/ns/b"), (5, "ADDED", "/cm/ns/d")],
        [(6, "DELETED", "/cm/ns/d")],
    ]
    fanned = [queue.get_nowait() for _ in range(5)]
    assert [change.rv for change in fanned] == [2, 3, 4, 5, 6]
    assert store.get("/cm/ns/c") is None
    await store.close()
    reopened = await Store.open(path)  # every answered commit is on disk, the stale one not
    assert reopened.revision == 6
    assert sorted(key for key, _ in reopened.all_objects()) == ["/cm/ns/a", "/cm/ns/b"]
    assert reopened.get("/cm/ns/a")["data"] == {"k": "2"}  # type: ignore[index]
    assert [c.rv for c in await reopened.changes_since(1)] == [2, 3, 4, 5, 6]
    await reopened.close()


async def test_the_wal_is_checkpointed_off_the_loop_and_commits_go_on_after(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "wal.db")
    store = await Store.open(path)
    count = CHECKPOINT_EVERY + 5
    await store.commit([Write(f"/cm/ns/o-{i}", obj(f"o-{i}"), 0) for i in range(count)])
    # the checkpoint ran after that transaction: the next commit and a read of the change
    # log (aiosqlite's thread) both work on the one connection
    await store.commit([Write("/cm/ns/late", obj("late"), 0)])
    assert [c.key for c in await store.changes_since(count)] == ["/cm/ns/late"]
    # the WAL was copied back and restarted: it holds the last commit's frames only
    with sqlite3.connect(path) as other:
        _, frames, _ = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert 0 < frames < 20
    await store.close()
    reopened = await Store.open(path)
    assert len(reopened.items("/cm/ns/")) == count + 1
    await reopened.close()


async def test_updates_deletes_and_a_recreate_leave_one_row_per_key_as_last_written(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "rows.db")
    store = await Store.open(path)
    await store.commit([Write("/cm/ns/a", obj("a"), 0), Write("/cm/ns/b", obj("b"), 0)])
    await store.commit([Write("/cm/ns/a", obj("a", "2"), 1)])  # an update, in place
    await store.commit(
        [Write("/cm/ns/b", None, 2, delete=True), Write("/cm/ns/a", obj("a", "3"), 3)]
    )
    recreated = {**obj("b", "again"), "metadata": {"name": "b", "uid": "uid-b2"}}
    await store.commit([Write("/cm/ns/b", recreated, 0)])
    await store.close()
    with sqlite3.connect(path) as raw:
        rows = raw.execute("SELECT key, rv, uid FROM objects ORDER BY key").fetchall()
    assert rows == [("/cm/ns/a", 5, "uid-a"), ("/cm/ns/b", 6, "uid-b2")]
    reopened = await Store.open(path)
    assert reopened.get("/cm/ns/a")["data"] == {"k": "3"}  # type: ignore[index]
    assert reopened.get("/cm/ns/b")["metadata"]["uid"] == "uid-b2"  # type: ignore[index]
    await reopened.close()


async def test_a_commit_after_close_fails_with_store_closed_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "closed.db")
    store = await Store.open(path)
    await store.commit([Write("/cm/ns/a", obj("a"), 0)])
    await store.close()
    with pytest.raises(StoreClosed):
        await store.commit([Write("/cm/ns/b", obj("b"), 0)])
    await store.close()  # a second close is harmless
    reopened = await Store.open(path)
    assert reopened.get("/cm/ns/b") is None
    assert reopened.revision == 1
    await reopened.close()


RACE = """
import asyncio, os, sys
from engine.apiserver.store.storage import Store, StoreClosed, Write

async def main(folder):
    for round in range(60):
        store = await Store.open(os.path.join(folder, f"{round}.db"))

        async def writer(key):
            while True:
                current = store.get(key)
                rv = int(current["metadata"]["resourceVersion"]) if current else 0
                try:
                    await store.commit([Write(key, {"metadata": {"name": "x"}}, rv)])
                except StoreClosed:
                    return "closed"
                await asyncio.sleep(0)

        writers = [asyncio.create_task(writer(f"/cm/ns/{k}")) for k in range(4)]
        await asyncio.sleep(0.005)
        await store.close()
        ended = await asyncio.wait_for(asyncio.gather(*writers), 5)
        assert ended == ["closed"] * 4, ended

asyncio.run(main(sys.argv[1]))
"""


def test_writers_racing_the_close_end_with_store_closed_and_never_crash_the_process(
    tmp_path: Path,
) -> None:
    # before the fix, a commit made while aiosqlite's thread closed the connection wrote
    # on it from the loop's thread and the process died of a segmentation fault
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", RACE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-3000:]
