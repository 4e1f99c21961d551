"""`restore_database`: a backup of the API server's store written as a new database, its
revision bumped and everything below compacted; bad input refused with the thing named."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from engine.apiserver.store.restore import RestoreError, restore_database
from engine.apiserver.store.storage import SCHEMA, Compacted, Store, Write


def obj(name: str, value: str = "v") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "data": {"k": value}}


async def _backup(tmp_path: Path) -> tuple[Path, int]:
    """A store with two objects (one written twice) closed: (its file, its revision)."""
    path = tmp_path / "backup.db"
    store = await Store.open(str(path))
    await store.commit([Write("/cm/ns/a", obj("a"), 0), Write("/cm/ns/b", obj("b"), 0)])
    await store.commit([Write("/cm/ns/a", obj("a", "2"), 1)])
    revision = store.revision
    await store.close()
    return path, revision


async def test_the_restored_store_is_past_the_bump_and_compacted_below_it(tmp_path: Path) -> None:
    backup, revision = await _backup(tmp_path)
    restored = restore_database(backup, tmp_path / "api.db", bump=1000)
    assert (restored.backup_revision, restored.revision, restored.objects) == (
        revision,
        revision + 1000,
        2,
    )
    store = await Store.open(str(tmp_path / "api.db"))
    try:
        assert (store.revision, store.compacted) == (revision + 1000, revision + 1000)
        # the objects as the backup held them, their resourceVersions kept
        a = store.get("/cm/ns/a")
        assert a is not None
        assert (a["data"], a["metadata"]["resourceVersion"]) == ({"k": "2"}, str(revision))
        for old in (0, revision - 1, revision):
            with pytest.raises(Compacted):
                await store.changes_since(old)
        assert await store.changes_since(revision + 1000) == []
        (change,) = await store.commit([Write("/cm/ns/c", obj("c"), 0)])
        assert change.rv == revision + 1001
        assert [c.rv for c in await store.changes_since(revision + 1000)] == [revision + 1001]
    finally:
        await store.close()
    assert not (tmp_path / "api.db.restoring").exists()


def _empty_backup(path: Path) -> Path:
    """A new store's database (the server's schema, revision 0), without a server."""
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
    return path


def test_a_restore_never_writes_over_a_database(tmp_path: Path) -> None:
    backup = _empty_backup(tmp_path / "backup.db")
    target = tmp_path / "api.db"
    target.write_bytes(b"kept")
    with pytest.raises(RestoreError, match=r"api\.db exists; move it away first"):
        restore_database(backup, target)
    assert target.read_bytes() == b"kept"
    target.unlink()
    Path(f"{target}-wal").write_bytes(b"")
    with pytest.raises(RestoreError, match=r"api\.db-wal exists"):
        restore_database(backup, target)
    assert not target.exists()


def test_a_backup_that_is_not_a_server_database_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE journal (x)")
    with pytest.raises(RestoreError, match=r"not an API server database \(its tables: journal\)"):
        restore_database(other, tmp_path / "api.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(RestoreError, match="is not a usable SQLite database"):
        restore_database(junk, tmp_path / "api.db")
    with pytest.raises(RestoreError, match="no such file"):
        restore_database(tmp_path / "missing.db", tmp_path / "api.db")
    with pytest.raises(RestoreError, match="the directory does not exist"):
        restore_database(other, tmp_path / "no" / "api.db")
    with pytest.raises(RestoreError, match="give 1 or more"):
        restore_database(_empty_backup(tmp_path / "empty.db"), tmp_path / "api.db", bump=0)
    assert not (tmp_path / "api.db").exists()
