"""The API server's SQLite store: revisions, optimistic concurrency, the change log,
compaction, fan-out to subscribers, and durability across reopening."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.apiserver.store.storage import Compacted, StaleWrite, Store, Write


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
